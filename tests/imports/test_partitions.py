"""An execution split into parts (imports.partitions), its parts run in this process one
after the other or interleaved chunk by chunk: the same database as an unsplit run."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from imports import partitions
from imports.models import DocumentImport, Execution, ExecutionPartition
from imports.services import execution_cancel
from profiles.commands import LineError, Operation, ProfileCommand
from profiles.compartments import DatamartCompartments
from profiles.identifiers import AccountIdentifier, EmailIdentifier
from profiles.models import ProfileChange, UserPoint, UserProfile
from tests.imports.helpers import (
    CRM,
    account,
    delete,
    errors_of,
    import_file,
    ndjson,
    properties_of,
    snapshot,
    upload,
)


def _file(lines: int) -> bytes:
    """New accounts, later updates and deletes of them, e-mail lines, bad lines."""
    out: list[dict | str] = []
    for i in range(lines):
        kind = i % 10
        if kind < 5:
            out.append(account(f"c{i}", {"n": i, "tags": [i % 5], "nl": {"on": i % 2 == 0}}))
        elif kind < 7 and i >= 20:
            out.append(account(f"c{i - 15}", {"tags": [i % 7], "nl": {"p": i}}))
        elif kind == 7 and i >= 30:
            out.append(delete(f"c{i - 27}"))
        elif kind == 8 and i % 40 == 8:
            out.append('{"operation": "UPSERT", ')
        else:
            out.append(
                {"operation": "UPSERT", "email_hash": f"e{i % 13}", "user_profile": {"i": i}}
            )
    return ndjson(*out)


def _split(execution: Execution, count: int) -> list[int]:
    parts = partitions.execution_split(execution_id=execution.pk, worker="splitter", count=count)
    assert parts == list(range(count))
    return parts


def _run_parts(execution: Execution, parts: list[int], **options) -> Execution:
    for number in parts:
        partitions.partition_run(
            execution_id=execution.pk, number=number, worker=f"w{number}", **options
        )
    execution.refresh_from_db()
    return execution


def _clean_run(document_import: DocumentImport, content: bytes, **options) -> tuple:
    clean = import_file(document_import, content, **options)
    expected = (snapshot(document_import.datamart_id), errors_of(clean), clean.counters())
    changes = ProfileChange.objects.filter(execution_id=clean.pk).count()
    UserProfile.objects.all().delete()
    UserPoint.objects.all().delete()
    return expected, changes


@pytest.mark.parametrize("count", [2, 3])
def test_a_split_execution_ends_like_an_unsplit_one(document_import, settings, count):
    settings.IMPORT_CHUNK_SIZE = 7
    content = _file(300)
    expected, changes = _clean_run(document_import, content)

    execution = upload(document_import, content)
    execution = _run_parts(execution, _split(execution, count))
    assert execution.status == Execution.Status.SUCCEEDED, execution.error_message
    assert (snapshot(document_import.datamart_id), errors_of(execution), execution.counters()) == (
        expected
    )
    assert ProfileChange.objects.filter(execution_id=execution.pk).count() == changes
    processed = ExecutionPartition.objects.filter(execution=execution).values_list(
        "processed", flat=True
    )
    assert sum(processed) == 300 and all(processed)  # every part had lines
    # The pace chart has a point per chunk of every part, its counts rising to the totals.
    series = execution.progress_series
    assert len(series) == sum(-(-lines // 7) for lines in processed)
    assert [point[1] for point in series] == sorted(point[1] for point in series)
    assert series[-1][1:] == [300, execution.failed]


def test_a_csv_file_split_in_two_ends_like_an_unsplit_one(csv_import, settings):
    settings.IMPORT_CHUNK_SIZE = 5
    rows = ["operation,compartment_id,user_account_id,$compartment_id,$user_account_id,n:int"]
    for i in range(60):
        rows.append(f"UPSERT,{CRM},c{i % 17},{CRM},c{i % 17},{i}")
        if i % 9 == 0:
            rows.append(f"DELETE,{CRM},c{i % 17},,,")
        if i % 11 == 0:
            rows.append(f"UPSERT,{CRM},bad{i},{CRM},bad{i},not-a-number")
    content = ("\n".join(rows) + "\n").encode()
    expected, _ = _clean_run(csv_import, content, name="p.csv")
    execution = upload(csv_import, content, name="p.csv")
    execution = _run_parts(execution, _split(execution, 2))
    assert execution.status == Execution.Status.SUCCEEDED, execution.error_message
    assert (snapshot(csv_import.datamart_id), errors_of(execution), execution.counters()) == (
        expected
    )
    assert execution.headers is not None  # for the failed-lines file


def test_lines_of_one_identifier_keep_their_file_order_within_their_part(document_import, settings):
    settings.IMPORT_CHUNK_SIZE = 2
    content = ndjson(
        *(account("c1", {"n": i}) for i in range(9)),
        *(account(f"x{i}", {"n": i}) for i in range(20)),
        delete("c1"),
        account("c1", {"last": True}),
    )
    execution = upload(document_import, content)
    execution = _run_parts(execution, list(reversed(_split(execution, 2))))
    assert execution.status == Execution.Status.SUCCEEDED
    assert properties_of("c1") == {"last": True}
    assert execution.counters()["deleted"] == 1


class _WorkerKilled(BaseException):
    """Stands for SIGKILL inside this process: not an Exception, so nothing catches it."""


def test_a_part_killed_between_chunks_resumes_at_its_checkpoint(document_import, settings):
    settings.IMPORT_CHUNK_SIZE = 4
    content = _file(200)
    expected, changes = _clean_run(document_import, content)
    execution = upload(document_import, content)
    parts = _split(execution, 2)

    def die():
        raise _WorkerKilled

    with pytest.raises(_WorkerKilled):
        partitions.partition_run(execution_id=execution.pk, number=0, worker="w0", progress=die)
    part = ExecutionPartition.objects.get(execution=execution, number=0)
    assert part.processed == 4 and part.checkpoint_line > 0 and not part.finished
    # Another worker leaves a live part alone; the same one, restarted, takes it over.
    partitions.partition_run(execution_id=execution.pk, number=0, worker="other")
    assert ExecutionPartition.objects.get(pk=part.pk).processed == 4
    execution = _run_parts(execution, parts)
    assert execution.status == Execution.Status.SUCCEEDED, execution.error_message
    assert (snapshot(document_import.datamart_id), errors_of(execution), execution.counters()) == (
        expected
    )
    assert ProfileChange.objects.filter(execution_id=execution.pk).count() == changes


def test_a_stopping_worker_hands_its_part_over_after_the_chunk_and_another_takes_it_at_once(
    document_import, settings
):
    """SIGTERM (a deploy) sets `shutdown_requested`: the part's run commits its chunk, gives the
    part up, and says so (the task then queues the part again)."""
    from imports.runner import shutdown_requested

    settings.IMPORT_CHUNK_SIZE = 4
    content = _file(200)
    expected, changes = _clean_run(document_import, content)
    execution = upload(document_import, content)
    parts = _split(execution, 2)
    try:
        handed_over = partitions.partition_run(
            execution_id=execution.pk, number=0, worker="w0", progress=shutdown_requested.set
        )
    finally:
        shutdown_requested.clear()
    part = ExecutionPartition.objects.get(execution=execution, number=0)
    assert handed_over is True
    assert (part.processed, part.worker, part.claim, part.heartbeat_ts) == (4, "", "", None)
    # No wait for the part to go stale: another worker goes on from its checkpoint.
    assert partitions.partition_run(execution_id=execution.pk, number=0, worker="other") is False
    assert ExecutionPartition.objects.get(pk=part.pk).finished
    execution = _run_parts(execution, parts)
    assert execution.status == Execution.Status.SUCCEEDED, execution.error_message
    assert (snapshot(document_import.datamart_id), errors_of(execution), execution.counters()) == (
        expected
    )
    assert ProfileChange.objects.filter(execution_id=execution.pk).count() == changes


def test_a_part_that_keeps_failing_fails_the_execution(document_import, settings):
    settings.IMPORT_CHUNK_SIZE = 2
    settings.IMPORT_MAX_ATTEMPTS = 2
    execution = upload(document_import, ndjson(*(account(f"c{i}", {"n": i}) for i in range(20))))
    _split(execution, 2)

    def die():
        raise _WorkerKilled

    for _ in range(2):
        with pytest.raises(_WorkerKilled):
            partitions.partition_run(execution_id=execution.pk, number=1, worker="w", progress=die)
    # Each run committed one chunk, so the attempts started over: kill it before any commit.
    ExecutionPartition.objects.filter(execution=execution, number=1).update(attempts=2)
    partitions.partition_run(execution_id=execution.pk, number=1, worker="w")
    execution.refresh_from_db()
    assert execution.status == Execution.Status.FAILED
    assert execution.error_code == "CHUNK_KEEPS_FAILING"
    assert "part 2 of 2" in execution.error_message
    partitions.partition_run(execution_id=execution.pk, number=0, worker="w")  # stays FAILED
    execution.refresh_from_db()
    assert execution.status == Execution.Status.FAILED


def test_cancel_stops_every_part_between_chunks(document_import, settings):
    settings.IMPORT_CHUNK_SIZE = 3
    execution = upload(document_import, ndjson(*(account(f"c{i}", {"a": i}) for i in range(40))))
    parts = _split(execution, 2)

    def cancel():
        execution_cancel(execution=Execution.objects.get(pk=execution.pk))

    partitions.partition_run(execution_id=execution.pk, number=0, worker="w0", progress=cancel)
    execution = _run_parts(execution, parts)
    assert execution.status == Execution.Status.CANCELED
    assert execution.processed == 3 and UserProfile.objects.count() == 3
    assert "3 lines were applied or reported" in execution.error_message


def test_a_file_level_error_fails_the_execution_after_every_part_applied_its_lines_before_it(
    csv_import, settings
):
    settings.IMPORT_CHUNK_SIZE = 2
    rows = ["operation,compartment_id,user_account_id,$compartment_id,$user_account_id,n:int"]
    rows += [f"UPSERT,{CRM},c{i},{CRM},c{i},{i}" for i in range(11)]
    # An unclosed quote whose record runs past the line limit: the rest cannot be read.
    unclosed = 'UPSERT,1606,u,1606,u,"' + ("a" * 999 + "\n") * 1_100
    content = ("\n".join(rows) + "\n" + unclosed).encode()
    expected, _ = _clean_run(csv_import, content, name="p.csv")
    execution = upload(csv_import, content, name="p.csv")
    execution = _run_parts(execution, _split(execution, 2))
    clean = Execution.objects.exclude(pk=execution.pk).get(document_import=csv_import)
    assert clean.status == execution.status == Execution.Status.FAILED
    assert clean.error_code == execution.error_code == "LINE_TOO_LONG"
    assert execution.error_message == clean.error_message
    assert (snapshot(csv_import.datamart_id), errors_of(execution), execution.counters()) == (
        expected
    )
    assert execution.processed == 11


def test_the_task_splits_with_parallelism_and_runs_unsplit_without(document_import, settings):
    execution = upload(document_import, ndjson(account("c1", {"a": 1})))
    settings.IMPORT_PARALLELISM = 1
    assert partitions.execution_dispatch(execution_id=execution.pk, worker="w") == []
    execution.refresh_from_db()
    assert execution.status == Execution.Status.SUCCEEDED
    assert not ExecutionPartition.objects.exists()

    settings.IMPORT_PARALLELISM = 2
    second = upload(document_import, ndjson(account("c2", {"a": 2})))
    assert partitions.execution_dispatch(execution_id=second.pk, worker="w") == [0, 1]
    # Queued twice (a redelivered message): the same parts, never a second split.
    assert partitions.execution_dispatch(execution_id=second.pk, worker="w") == [0, 1]
    _run_parts(second, [0, 1])
    assert second.status == Execution.Status.SUCCEEDED and properties_of("c2") == {"a": 2}
    assert partitions.execution_dispatch(execution_id=second.pk, worker="w") == []


def test_an_execution_started_unsplit_is_never_split_afterwards(document_import, settings):
    settings.IMPORT_CHUNK_SIZE = 2
    execution = upload(document_import, ndjson(*(account(f"c{i}", {"a": i}) for i in range(6))))
    from imports import runner

    assert runner._claim(execution.pk, "w1") is not None  # RUNNING unsplit
    assert partitions.execution_split(execution_id=execution.pk, worker="w", count=2) is None


# --------------------------------------------------------------------------- the rule

_accounts = st.text(min_size=1, max_size=20)


@hypothesis_settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(account_id=_accounts, count=st.integers(1, 16), line=st.integers(1, 10**9))
def test_partition_of_depends_on_the_identifier_only_and_is_in_range(
    account_id, count, line, datamart
):
    compartments = DatamartCompartments(datamart)
    default = compartments.default.compartment_id

    def part(identifier, at: int) -> int:
        command = ProfileCommand(
            line=at, operation=Operation.UPSERT, identifier=identifier, user_profile={}
        )
        return partitions.partition_of(record=command, count=count, compartments=compartments)

    named = part(AccountIdentifier(account_id, default), line)
    assert 0 <= named < count
    assert part(AccountIdentifier(account_id), line + 1) == named  # the default compartment
    assert part(AccountIdentifier(account_id, default), 1) == named
    email = part(EmailIdentifier(account_id), line)
    assert part(EmailIdentifier(account_id), line * 2) == email
    refused = LineError(line=line, code="BAD_JSON", message="x")
    assert (
        0 <= partitions.partition_of(record=refused, count=count, compartments=compartments) < count
    )


def test_identifiers_spread_over_the_parts(datamart, crm_compartment):
    compartments = DatamartCompartments(datamart)
    seen = [
        partitions.partition_of(
            record=ProfileCommand(
                line=1,
                operation=Operation.UPSERT,
                identifier=AccountIdentifier(f"c{i}", CRM),
                user_profile={},
            ),
            count=4,
            compartments=compartments,
        )
        for i in range(4000)
    ]
    assert all(800 < seen.count(part) < 1200 for part in range(4))
