"""Reverting an execution (docs/rules.md#revert): a preview, the start, and the run.

A revert is an execution of its own (`Execution.reverts` names the one it undoes), run by the
workers like an import: claimed, chunk by chunk, each chunk one transaction with its
checkpoint, counters and line errors (`imports.runner.chunk_commit`), so it can be followed,
canceled, resumed after a killed worker, and reverted in its turn. Its "lines" are the
reverted execution's history rows, walked in id order; the domain work of a chunk is
`profiles.revert.changes_revert`.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import IntegrityError, transaction

from imports.models import REVERT_HOLDING_STATUSES, Execution
from imports.runner import _finish, _Run, chunk_commit, execution_run, execution_source
from imports.services import ImportRefused
from imports.tasks import run_execution
from profiles.models import ProfileChange
from profiles.revert import RevertPreview, changes_revert, chunk_rows, revert_preview

FINISHED = (Execution.Status.SUCCEEDED, Execution.Status.FAILED, Execution.Status.CANCELED)


def execution_is_revert(execution_id: int) -> bool:
    return Execution.objects.filter(pk=execution_id, reverts__isnull=False).exists()


def reverted_scope(execution: Execution) -> frozenset[int]:
    """The executions whose history rows a revert of `execution` undoes without calling them
    conflicts: itself and its earlier reverts that stopped (FAILED, CANCELED) half-way."""
    stopped = execution.reverted_by.filter(
        status__in=(Execution.Status.FAILED, Execution.Status.CANCELED)
    ).values_list("pk", flat=True)
    return frozenset({execution.pk, *stopped})


def execution_revert_check(*, execution: Execution) -> None:
    """Only a finished execution, not reverted already (a revert pending, running or done)."""
    if execution.status not in FINISHED:
        raise ImportRefused(
            "EXECUTION_NOT_FINISHED",
            f"execution {execution.pk} is {execution.status}: only a SUCCEEDED, FAILED or "
            "CANCELED execution can be reverted",
        )
    holding = execution.reverted_by.filter(status__in=REVERT_HOLDING_STATUSES).first()
    if holding is not None:
        raise ImportRefused(
            "ALREADY_REVERTED",
            f"execution {execution.pk} is reverted by execution {holding.pk} ({holding.status}); "
            f"revert execution {holding.pk} to undo that revert",
        )


def execution_revert_preview(*, execution: Execution) -> RevertPreview:
    """What a revert would do now: profiles to delete, restore, recreate, and conflicts."""
    return revert_preview(execution_id=execution.pk, reverted_ids=reverted_scope(execution))


def execution_revert(
    *,
    execution: Execution,
    force: bool = False,
    created_by=None,
    api_token=None,
    enqueue: bool = True,
) -> Execution:
    """A PENDING revert of `execution`, queued for a worker once committed; `force` puts back
    the profiles changed since too. Raises ImportRefused (EXECUTION_NOT_FINISHED,
    ALREADY_REVERTED)."""
    execution_revert_check(execution=execution)
    revert = Execution(
        datamart_id=execution.datamart_id,
        document_import_id=execution.document_import_id,
        file_name=f"revert of execution {execution.pk}",
        reverts=execution,
        revert_force=force,
        created_by=created_by,
        api_token=api_token,
        total_lines=ProfileChange.objects.filter(execution_id=execution.pk).count(),
    )
    try:
        with transaction.atomic():
            revert.save()
            if enqueue:
                run_execution.delay_on_commit(revert.pk)
    except IntegrityError:  # a second revert started at the same moment won the constraint
        execution_revert_check(execution=execution)
        raise
    return revert


def revert_run(
    *,
    execution_id: int,
    worker: str = "",
    progress: Callable[[int, int | None], None] | None = None,
) -> None:
    """Run a revert execution from its checkpoint to the end (what a worker calls)."""
    execution_run(execution_id=execution_id, worker=worker, progress=progress, apply=_apply)


def _apply(run: _Run) -> None:
    execution = run.execution
    execution.refresh_from_db()
    run.datamart = execution.datamart
    reverted = execution.reverts
    if reverted is None:
        _finish(
            run,
            Execution.Status.FAILED,
            error_code="NOTHING_TO_REVERT",
            error_message="the reverted execution was deleted",
        )
        return
    scope = reverted_scope(reverted) | {execution.pk}
    rows = ProfileChange.objects.filter(execution_id=reverted.pk).order_by("id")
    since_id = rows.values_list("id", flat=True).first()
    if execution.total_lines is None:
        execution.total_lines = rows.count()
        Execution.objects.filter(pk=execution.pk).update(total_lines=execution.total_lines)
    run.total, run.processed = execution.total_lines, execution.processed
    # The checkpoint of a revert: the rows walked, and the id of the last one.
    walked, last_id = execution.checkpoint_line, execution.checkpoint_offset
    source = execution_source(execution)
    while since_id is not None:
        chunk = chunk_rows(rows.filter(id__gt=last_id)[: run.chunk_size])
        if not chunk:
            break
        first_line = walked + 1

        def write(chunk=chunk, first_line=first_line):
            return changes_revert(
                datamart=run.datamart,
                chunk=chunk,
                first_line=first_line,
                reverted_ids=scope,
                since_id=since_id,
                force=execution.revert_force,
                source=source,
            )

        walked, last_id = walked + len(chunk), chunk[-1][0]
        if not chunk_commit(
            run, write=write, lines=len(chunk), checkpoint_line=walked, checkpoint_offset=last_id
        ):
            return
        if run.progress:
            run.progress(run.processed, run.total)
    _finish(run, Execution.Status.SUCCEEDED)
