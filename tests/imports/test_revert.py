"""Reverting an execution, in this process: what comes back, conflicts, force, chunks, scope."""

from __future__ import annotations

import pytest

from imports.models import Execution
from imports.revert import execution_revert, execution_revert_preview, revert_run
from imports.services import ImportRefused
from profiles.history import ChangeSource
from profiles.models import ProfileChange, UserPoint, UserProfile
from profiles.services import user_point_erase
from tests.imports.helpers import (
    account,
    counters,
    delete,
    errors_of,
    import_file,
    ndjson,
    properties_of,
    snapshot,
)
from tests.imports.test_runner import _die_after, _WorkerKilled


def profiles_now(document_import) -> dict:
    """The datamart's profiles by address; the user points an import created stay (rules.md)."""
    return snapshot(document_import.datamart_id)["profiles"]


def revert(execution: Execution, **options) -> Execution:
    reverting = execution_revert(execution=execution, enqueue=False, **options)
    revert_run(execution_id=reverting.pk)
    reverting.refresh_from_db()
    return reverting


@pytest.fixture
def seeded(document_import) -> dict:
    """a, b, d exist before the import under test."""
    import_file(
        document_import,
        ndjson(
            account("a", {"x": 1, "y": {"z": [1, 2]}}),
            account("b", {"keep": True}),
            account("d", {"n": 0}),
        ),
    )
    return profiles_now(document_import)


def _the_import(document_import) -> Execution:
    """Creates c, updates a several times (a key added, one removed, one changed), deletes b,
    creates then deletes e, leaves d as it is."""
    return import_file(
        document_import,
        ndjson(
            account("c", {"new": 1}),
            account("a", {"x": 2, "w": "added"}),
            delete("b"),
            account("a", {"y": None}, strategy="PARTIAL_DELETE"),
            account("e", {"short": "lived"}),
            delete("e"),
            account("d", {"n": 0}),
            account("a", {"x": 3}),
        ),
    )


@pytest.mark.parametrize("chunk_size", [1, 2, 1000])
def test_a_revert_deletes_what_was_created_restores_updates_and_brings_deleted_back(
    document_import, seeded, settings, chunk_size
):
    settings.IMPORT_CHUNK_SIZE = chunk_size
    execution = _the_import(document_import)
    assert properties_of("a") == {"x": 3, "w": "added"}
    undone = revert(execution)
    assert undone.status == Execution.Status.SUCCEEDED, undone.error_message
    assert profiles_now(document_import) == seeded
    # One count per profile: c deleted, a restored, b recreated, e already gone.
    assert counters(undone) == {
        "total": 7,
        "processed": 7,
        "deleted": 1,
        "updated": 1,
        "created": 1,
        "unchanged": 1,
    }
    rows = ProfileChange.objects.filter(execution_id=undone.pk)
    assert sorted(rows.values_list("user_account_id", "action")) == [
        ("a", "updated"),
        ("b", "created"),
        ("c", "deleted"),
    ]
    assert undone.reverts_id == execution.pk
    assert undone.as_api_object()["reverts"] == execution.pk


def test_a_revert_of_the_revert_gives_the_import_back(document_import, seeded):
    execution = _the_import(document_import)
    imported = profiles_now(document_import)
    undone = revert(execution)
    redone = revert(undone)
    assert redone.status == Execution.Status.SUCCEEDED, redone.error_message
    assert profiles_now(document_import) == imported
    assert counters(redone)["created"] == 1 and counters(redone)["deleted"] == 1


def test_a_profile_changed_since_is_a_conflict_left_alone_unless_forced(document_import, seeded):
    execution = _the_import(document_import)
    later = import_file(document_import, ndjson(account("a", {"later": True}), account("c", {})))
    assert counters(later)["updated"] == 1
    undone = revert(execution)
    assert undone.status == Execution.Status.SUCCEEDED
    assert properties_of("a") == {"x": 3, "w": "added", "later": True}  # untouched
    assert properties_of("b") == {"keep": True}  # the rest is reverted
    assert errors_of(undone) == [(2, "REVERT_CONFLICT")]  # a's first row is the 2nd
    error = undone.errors.get()
    assert f"execution {later.pk}" in error.message and "force=true" in error.message
    assert "user_account_id=a" in error.identifier
    # A line that changed nothing wrote no history row: no conflict, c is reverted.
    assert properties_of("c") is None
    # The revert holds the execution (SUCCEEDED with a conflict): a forced one is refused.
    with pytest.raises(ImportRefused) as refused:
        execution_revert(execution=execution, enqueue=False)
    assert refused.value.code == "ALREADY_REVERTED"


def test_force_puts_a_profile_changed_since_back_too(document_import, seeded):
    execution = _the_import(document_import)
    import_file(document_import, ndjson(account("a", {"later": True}), delete("c")))
    undone = revert(execution, force=True)
    assert undone.status == Execution.Status.SUCCEEDED
    assert undone.failed == 0
    assert profiles_now(document_import) == seeded


def test_a_revert_that_stopped_can_be_run_again_and_finishes_the_work(
    document_import, seeded, settings
):
    settings.IMPORT_CHUNK_SIZE = 2
    execution = _the_import(document_import)
    first = execution_revert(execution=execution, enqueue=False)
    calls = []

    def cancel_after_first_chunk(processed, total):
        calls.append(processed)
        Execution.objects.filter(pk=first.pk).update(cancel_requested=True)

    revert_run(execution_id=first.pk, progress=cancel_after_first_chunk)
    first.refresh_from_db()
    assert first.status == Execution.Status.CANCELED and calls == [2]
    assert profiles_now(document_import) != seeded
    second = revert(execution)  # the canceled revert's rows are no conflict
    assert second.status == Execution.Status.SUCCEEDED and second.failed == 0
    assert profiles_now(document_import) == seeded


def test_only_a_finished_execution_not_yet_reverted_can_be_reverted(document_import, seeded):
    execution = _the_import(document_import)
    running = Execution.objects.create(
        datamart_id=execution.datamart_id,
        document_import=document_import,
        status=Execution.Status.RUNNING,
    )
    with pytest.raises(ImportRefused) as refused:
        execution_revert(execution=running, enqueue=False)
    assert refused.value.code == "EXECUTION_NOT_FINISHED"
    revert(execution)
    with pytest.raises(ImportRefused) as refused:
        execution_revert(execution=execution, enqueue=False)
    assert refused.value.code == "ALREADY_REVERTED"


def test_the_preview_counts_by_profile_and_names_conflicts(document_import, seeded):
    execution = _the_import(document_import)
    before = execution_revert_preview(execution=execution)
    assert (before.rows, before.delete, before.restore, before.recreate, before.unchanged) == (
        7,
        1,
        1,
        1,
        1,
    )
    assert before.conflicts == 0
    import_file(document_import, ndjson(account("a", {"later": True})))
    assert execution_revert_preview(execution=execution).conflicts == 1


def test_an_erased_person_never_comes_back(document_import, seeded, datamart):
    execution = _the_import(document_import)
    point = UserPoint.objects.get(accounts__user_account_id="b")
    user_point_erase(datamart=datamart, user_point=point, source=ChangeSource())
    undone = revert(execution, force=True)
    assert undone.status == Execution.Status.SUCCEEDED
    assert errors_of(undone) == [(3, "USER_POINT_NOT_FOUND")]
    assert "=b" not in undone.errors.get().message
    assert not UserProfile.objects.filter(user_account_id="b").exists()


def test_an_execution_that_changed_nothing_reverts_to_nothing(document_import, seeded):
    nothing = import_file(document_import, ndjson(delete("zz"), account("d", {"n": 0})))
    undone = revert(nothing)
    assert undone.status == Execution.Status.SUCCEEDED
    assert undone.progress == 1.0
    assert counters(undone) == {}
    assert profiles_now(document_import) == seeded


def test_a_revert_killed_between_chunks_resumes_at_its_checkpoint_and_ends_like_a_clean_one(
    document_import, seeded, settings
):
    settings.IMPORT_CHUNK_SIZE = 2
    execution = _the_import(document_import)
    reverting = execution_revert(execution=execution, enqueue=False)
    with pytest.raises(_WorkerKilled):
        revert_run(execution_id=reverting.pk, worker="w1", progress=_die_after(2))
    reverting.refresh_from_db()
    assert reverting.status == Execution.Status.RUNNING
    assert (reverting.processed, reverting.checkpoint_line) == (4, 4)
    assert reverting.checkpoint_offset == (
        ProfileChange.objects.filter(execution_id=execution.pk).order_by("id")[3].id
    )
    revert_run(execution_id=reverting.pk, worker="w1")  # the same worker, started again
    reverting.refresh_from_db()
    assert reverting.status == Execution.Status.SUCCEEDED, reverting.error_message
    assert profiles_now(document_import) == seeded
    assert counters(reverting) == {
        "total": 7,
        "processed": 7,
        "deleted": 1,
        "updated": 1,
        "created": 1,
        "unchanged": 1,
    }
    # Each profile written once: no history row twice.
    assert ProfileChange.objects.filter(execution_id=reverting.pk).count() == 3
