"""One file applied by several workers at once (IMPORT_PARALLELISM=2, a real worker with two
pool processes), and by `import_profiles --parallel 2`: the same database as one clean run."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command

from imports.models import DocumentImport, Execution, ExecutionError, ExecutionPartition
from imports.services import execution_cancel, execution_start
from profiles.models import ProfileChange, UserProfile
from profiles.services import compartment_create
from tests.imports.helpers import (
    CRM,
    account,
    errors_of,
    mixed_import,
    ndjson,
    run,
    snapshot,
    upload,
    wait_finished,
    wait_for,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PARALLEL = {"IMPORT_PARALLELISM": "2", "IMPORT_CHUNK_SIZE": "1000"}


def _clean(other_datamart, content: bytes) -> Execution:
    compartment_create(datamart=other_datamart, compartment_id=CRM, name="CRM")
    return run(
        upload(DocumentImport.objects.create(datamart=other_datamart, name="clean"), content)
    )


def _same_as_clean(execution: Execution, clean: Execution) -> None:
    assert execution.status == Execution.Status.SUCCEEDED, execution.error_message
    assert clean.status == Execution.Status.SUCCEEDED
    assert execution.counters() == clean.counters()
    assert snapshot(execution.datamart_id) == snapshot(clean.datamart_id)
    assert errors_of(execution) == errors_of(clean)  # none twice, none lost
    assert ProfileChange.objects.filter(execution_id=execution.pk).count() == (
        ProfileChange.objects.filter(execution_id=clean.pk).count()
    )


def _split_import_started(celery_worker, datamart, content: bytes):
    """The file uploaded to a worker of two pool processes (IMPORT_PARALLELISM=2)."""
    celery_worker.stop()
    celery_worker.start(env=PARALLEL, concurrency=2)
    return execution_start(
        document_import=DocumentImport.objects.create(datamart=datamart, name="CRM"),
        upload=ContentFile(content, name="big.ndjson"),
        file_name="big.ndjson",
    )


def _split_import_running(celery_worker, datamart, content: bytes, *, past_line: int):
    """The file uploaded as `_split_import_started`, returned once both parts have committed
    chunks past `past_line`."""
    execution = _split_import_started(celery_worker, datamart, content)

    def both_parts_committed():
        checkpoints = ExecutionPartition.objects.filter(execution=execution).values_list(
            "checkpoint_line", flat=True
        )
        return len(checkpoints) == 2 and min(checkpoints) >= past_line

    wait_for(both_parts_committed, timeout=120, interval=0.05, message="chunks of both parts")
    return execution


def test_two_workers_apply_one_file_in_two_parts_like_one_clean_run(
    celery_worker, datamart, crm_compartment, other_datamart, settings
):
    settings.IMPORT_CHUNK_SIZE = 1000
    content = mixed_import(20_000)
    execution = _split_import_started(celery_worker, datamart, content)
    clean = _clean(other_datamart, content)
    wait_finished(execution, timeout=180)
    _same_as_clean(execution, clean)
    parts = ExecutionPartition.objects.filter(execution=execution)
    assert [(part.number, part.finished) for part in parts] == [(0, True), (1, True)]
    assert sum(part.processed for part in parts) == 20_000
    assert all(part.worker == celery_worker.node_name for part in parts)


def test_a_worker_killed_while_both_parts_run_resumes_them_on_restart(
    celery_worker, datamart, crm_compartment, other_datamart, settings
):
    settings.IMPORT_CHUNK_SIZE = 1000
    content = mixed_import(60_000)
    execution = _split_import_running(celery_worker, datamart, content, past_line=4000)
    celery_worker.kill()
    execution.refresh_from_db()
    assert execution.status == Execution.Status.RUNNING
    assert 4000 <= execution.processed < 60_000
    parts = ExecutionPartition.objects.filter(execution=execution)
    assert execution.processed == sum(part.processed for part in parts)  # commit together

    celery_worker.start(env=PARALLEL, concurrency=2)  # resumes both parts (same node)
    clean = _clean(other_datamart, content)
    wait_finished(execution, timeout=240)
    _same_as_clean(execution, clean)
    assert ExecutionError.objects.filter(execution=execution).count() == 120


def test_a_worker_stopped_with_sigterm_hands_both_parts_over_and_the_next_one_finishes(
    celery_worker, datamart, crm_compartment, other_datamart, settings
):
    """A deploy: SIGTERM to the worker's process group while both parts run. Each pool process
    finishes its chunk and gives its part up (no worker, no heartbeat); the next worker goes
    on from the parts' checkpoints."""
    settings.IMPORT_CHUNK_SIZE = 1000
    content = mixed_import(60_000)
    execution = _split_import_running(celery_worker, datamart, content, past_line=2000)
    celery_worker.stop()
    execution.refresh_from_db()
    assert execution.status == Execution.Status.RUNNING
    parts = ExecutionPartition.objects.filter(execution=execution)
    unfinished = [part for part in parts if not part.finished]
    assert unfinished and all((part.worker, part.claim) == ("", "") for part in unfinished)
    assert execution.processed == sum(part.processed for part in parts)

    celery_worker.start(env=PARALLEL, concurrency=2)
    clean = _clean(other_datamart, content)
    wait_finished(execution, timeout=240)
    _same_as_clean(execution, clean)


def test_cancel_stops_both_parts(celery_worker, document_import):
    celery_worker.stop()
    celery_worker.start(env=PARALLEL, concurrency=2)
    execution = execution_start(
        document_import=document_import,
        upload=ContentFile(
            ndjson(*(account(f"c{i}", {"n": i}) for i in range(60_000))), name="p.ndjson"
        ),
        file_name="p.ndjson",
    )

    def started():
        execution.refresh_from_db()
        return execution.processed >= 4000

    wait_for(started, timeout=60, interval=0.05, message="the first chunks")
    execution_cancel(execution=execution)
    wait_finished(execution)
    assert execution.status == Execution.Status.CANCELED
    assert "lines were applied or reported by the 2 parts" in execution.error_message
    wait_for(lambda: not celery_worker_busy(execution), timeout=30, message="the parts to stop")
    execution.refresh_from_db()
    assert execution.processed < 60_000
    assert UserProfile.objects.count() == execution.processed


def celery_worker_busy(execution: Execution) -> bool:
    """A part still between its claim and its next chunk would change the count: wait a
    moment after the cancel for every part to meet it."""
    before = UserProfile.objects.count()
    import time

    time.sleep(0.5)
    return UserProfile.objects.count() != before


def test_import_profiles_parallel_runs_the_parts_in_local_processes(
    datamart, crm_compartment, other_datamart, tmp_path, settings
):
    settings.IMPORT_CHUNK_SIZE = 500
    content = mixed_import(6000)
    path = tmp_path / "big.ndjson"
    path.write_bytes(content)
    out = StringIO()
    call_command(
        "import_profiles",
        "--datamart",
        str(datamart.pk),
        str(path),
        "--parallel",
        "2",
        "--no-progress",
        stdout=out,
        stderr=StringIO(),
    )
    execution = Execution.objects.get(datamart=datamart)
    assert re.search(
        r"^SUCCEEDED · 12 of 6,000 lines failed: total 6000, processed 6000", out.getvalue(), re.M
    )
    _same_as_clean(execution, _clean(other_datamart, content))
    workers = set(
        ExecutionPartition.objects.filter(execution=execution).values_list("worker", flat=True)
    )
    assert len(workers) == 2  # one process each
