"""Several workers on one execution: its lines split by a hash of their identifier.

With `IMPORT_PARALLELISM` = N > 1, the task of a PENDING execution splits it into N parts
(`ExecutionPartition` rows, created with the execution's move to RUNNING) and queues one task
per part; `manage.py import_profiles --parallel N` runs the parts in N local processes.

Part k holds the lines whose identifier hashes to k (`partition_of`): lines that name the same
identifier are in one part and keep their file order. Every part reads the whole file and
applies only its own lines, chunk by chunk through the write engine, as the unsplit runner
does: each chunk is one transaction with the part's checkpoint (its last line and the byte
offset after it), the execution's counters and the line errors, so a killed part resumes
after its last committed chunk and no line is applied twice. A part is owned by a run (a
token, a worker name, a heartbeat) like an unsplit execution; `attempts` counts the runs
started at a part's checkpoint.

Lock order, the same in every transaction here: the part's row, then the profiles (the
engine locks them in id order), then the execution's row, written last (counters), so parts
writing different profiles queue on the execution's row for the time of one UPDATE and never
wait on each other in a cycle; a deadlock or a unique violation met anyway (two identifiers
of one user point in two parts) rolls the chunk back and applies it again (`with_retries`).

The execution ends when its last part ends: SUCCEEDED, or FAILED with the file-level error
the parts met (every part reads the same file, so each meets it at the same line and the lines
before it are applied, as unsplit). A cancel, an internal error or a part that keeps failing
ends the execution at once; the other parts then lose their claim at their next chunk.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from imports.error_rows import error_rows
from imports.models import Execution, ExecutionError, ExecutionPartition
from imports.readers import FileError, ImportRecord
from imports.runner import (
    RecordChunks,
    _LostClaim,
    applied_lines_note,
    counter_updates,
    execution_describe,
    execution_merge_mode,
    execution_reader,
    execution_run,
    execution_source,
    heartbeat_fresh,
    records_after,
    series_after_chunk,
    shutdown_requested,
)
from profiles.commands import LineError
from profiles.compartments import DatamartCompartments
from profiles.engine import batch_prepare, batch_write, with_retries
from profiles.errors import ProfileError
from profiles.identifiers import identifier_label
from profiles.merge import MergeMode
from profiles.points import identifier_key

logger = logging.getLogger(__name__)


def partition_of(*, record: ImportRecord, count: int, compartments: DatamartCompartments) -> int:
    """The part (0 to count - 1) a line belongs to: a stable hash (CRC-32) of its identifier's
    lookup key, the account's compartment resolved (an account named with and without its
    default compartment is one identifier). A line refused by the reader, or whose identifier
    names an unknown compartment, hashes its line number or its identifier as written: it
    touches no profile."""
    if count <= 1:
        return 0
    if isinstance(record, LineError):
        key = f"line {record.line}"
    else:
        try:
            key = repr(identifier_key(record.identifier, compartments))
        except ProfileError:
            key = identifier_label(record.identifier)
    return zlib.crc32(key.encode("utf-8", errors="surrogatepass")) % count


# --------------------------------------------------------------------------- splitting


def _unfinished_parts(execution_id: int) -> list[int] | None:
    """The numbers of the parts still to apply; None when the execution is not split."""
    parts = list(
        ExecutionPartition.objects.filter(execution_id=execution_id).values_list(
            "number", "finished"
        )
    )
    if not parts:
        return None
    if Execution.objects.filter(pk=execution_id, status=Execution.Status.RUNNING).exists():
        return [number for number, finished in parts if not finished]
    return []


def execution_split(*, execution_id: int, worker: str, count: int) -> list[int] | None:
    """Split a PENDING execution into `count` parts and move it to RUNNING; returns the part
    numbers to run. An execution split before gives its unfinished parts. None: not split
    (already run unsplit, or its file cannot be opened): the unsplit runner takes it, and
    reports a file problem as it always does."""
    parts = _unfinished_parts(execution_id)
    if parts is not None:
        return parts
    execution = Execution.objects.filter(pk=execution_id).first()
    if execution is None or execution.status != Execution.Status.PENDING:
        return None
    try:
        reader = execution_reader(execution)
    except FileError:
        return None
    execution_describe(execution=execution, reader=reader)
    with transaction.atomic():
        execution = Execution.objects.select_for_update().filter(pk=execution_id).first()
        if execution is None or execution.status != Execution.Status.PENDING:
            return _unfinished_parts(execution_id)
        if execution.cancel_requested:
            return None  # the unsplit runner reports the cancel
        if not execution.transition(Execution.Status.RUNNING):
            return None
        now = timezone.now()
        # A new claim: an unsplit run of the same execution, if any, can commit nothing more.
        Execution.objects.filter(pk=execution_id).update(
            worker=worker, claim=uuid.uuid4().hex, heartbeat_ts=now, attempts=0
        )
        ExecutionPartition.objects.bulk_create(
            ExecutionPartition(execution_id=execution_id, number=number, count=count)
            for number in range(count)
        )
    logger.info("execution %s split into %s parts", execution_id, count)
    return list(range(count))


def execution_dispatch(*, execution_id: int, worker: str) -> list[int] | None:
    """What the task of a queued execution does: with `IMPORT_PARALLELISM` above 1 split it
    (or find the parts a killed worker left) and return the part numbers to queue; else run
    it unsplit here and return [], or None when that run stopped for a worker shutdown and
    handed the execution over (the task queues it again)."""
    parts = _unfinished_parts(execution_id)
    if parts is not None:
        return parts
    if settings.IMPORT_PARALLELISM > 1:
        parts = execution_split(
            execution_id=execution_id, worker=worker, count=settings.IMPORT_PARALLELISM
        )
        if parts is not None:
            return parts
    if execution_run(execution_id=execution_id, worker=worker):
        return None
    return []


# --------------------------------------------------------------------------- one part


@dataclass
class _PartRun:
    execution: Execution
    part: ExecutionPartition
    claim: str
    chunk_size: int
    record_history: bool = True
    handed_over: bool = False


def _canceled_message(processed: int, count: int) -> str:
    if not processed:
        return "canceled before any line was applied"
    return (
        f"canceled: {processed} lines were applied or reported by the {count} parts the file "
        "was split into, each stopped after its current chunk; the other lines were not applied"
    )


def _claim_part(execution_id: int, number: int, worker: str) -> _PartRun | None:
    with transaction.atomic():
        part = (
            ExecutionPartition.objects.select_for_update()
            .filter(execution_id=execution_id, number=number)
            .first()
        )
        if part is None or part.finished:
            return None
        execution = Execution.objects.select_for_update().filter(pk=execution_id).first()
        if execution is None or execution.status != Execution.Status.RUNNING:
            return None
        if execution.cancel_requested:
            execution.transition(
                Execution.Status.CANCELED,
                error_code="CANCELED",
                error_message=_canceled_message(execution.processed, part.count),
            )
            return None
        now = timezone.now()
        if part.worker and part.worker != worker and heartbeat_fresh(part.heartbeat_ts, now=now):
            logger.info("%s is running on %s: not taken over", part, part.worker)
            return None
        attempts = part.attempts + 1
        if attempts > settings.IMPORT_MAX_ATTEMPTS:
            execution.transition(
                Execution.Status.FAILED,
                error_code="CHUNK_KEEPS_FAILING",
                error_message=(
                    f"{part.attempts} runs stopped (worker killed or lost) while applying part "
                    f"{number + 1} of {part.count} after line {part.checkpoint_line}: the "
                    f"execution stops there; {execution.processed} lines were applied or "
                    "reported before it"
                ),
            )
            return None
        claim = uuid.uuid4().hex
        ExecutionPartition.objects.filter(pk=part.pk).update(
            attempts=attempts, worker=worker, claim=claim, heartbeat_ts=now
        )
    return _PartRun(
        execution=execution,
        part=part,
        claim=claim,
        chunk_size=max(1, settings.IMPORT_CHUNK_SIZE),
    )


def _commit_part_chunk(
    run: _PartRun, records: list[ImportRecord], position: int | None, default_mode: MergeMode
) -> bool:
    """Apply one chunk of the part and move its checkpoint; False when a cancel stopped it."""
    execution, part = run.execution, run.part
    source = execution_source(execution)

    def apply() -> bool:
        # Prepared again on each try, as the unsplit runner does: a retried chunk reads afresh.
        prepared = batch_prepare(
            datamart=execution.datamart, records=records, default_mode=default_mode
        )
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:  # as the unsplit runner: see there
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
            owned = (
                ExecutionPartition.objects.select_for_update()
                .filter(pk=part.pk, claim=run.claim, finished=False)
                .exists()
            )
            row = Execution.objects.filter(pk=execution.pk).values(
                "status", "cancel_requested", "processed"
            )
            state = row.first()
            if not owned or state is None or state["status"] != Execution.Status.RUNNING:
                raise _LostClaim()
            if state["cancel_requested"]:
                execution.transition(
                    Execution.Status.CANCELED,
                    error_code="CANCELED",
                    error_message=_canceled_message(state["processed"], part.count),
                )
                return False
            result = batch_write(prepared, source=source, record_history=run.record_history)
            if result.errors:
                ExecutionError.objects.bulk_create(
                    error_rows(execution.pk, result.errors, execution.encoding)
                )
            now = timezone.now()
            ExecutionPartition.objects.filter(pk=part.pk).update(
                processed=F("processed") + result.lines,
                checkpoint_line=records[-1].line,
                checkpoint_offset=position or 0,
                attempts=0,
                heartbeat_ts=now,
            )
            # Last: the execution's row stays locked only until this transaction commits (the
            # lock the update would take, taken a statement earlier to read the pace series).
            totals = (
                Execution.objects.select_for_update()
                .filter(pk=execution.pk, status=Execution.Status.RUNNING)
                .values("processed", "failed", "progress_series")
                .first()
            )
            if totals is None:
                raise _LostClaim()
            Execution.objects.filter(pk=execution.pk).update(
                processed=F("processed") + result.lines,
                heartbeat_ts=now,
                progress_series=series_after_chunk(
                    totals["progress_series"],
                    start_ts=execution.start_ts,
                    now=now,
                    processed=totals["processed"] + result.lines,
                    failed=totals["failed"] + result.failed,
                ),
                **counter_updates(result),
            )
            return True

    return with_retries(apply)


def _finish_part(run: _PartRun, *, error: FileError | None = None) -> None:
    """The part is applied (or met a file-level error); the last part ends the execution."""
    with transaction.atomic():
        marked = ExecutionPartition.objects.filter(
            pk=run.part.pk, claim=run.claim, finished=False
        ).update(
            finished=True,
            error_code=error.code if error else "",
            error_message=error.message if error else "",
        )
        if not marked:
            raise _LostClaim()
        execution = Execution.objects.select_for_update().get(pk=run.execution.pk)
        if execution.status != Execution.Status.RUNNING:
            return
        parts = ExecutionPartition.objects.filter(execution_id=execution.pk)
        if parts.filter(finished=False).exists():
            return
        failed = parts.exclude(error_code="").order_by("number").first()
        if failed is not None:
            # Every part applied its lines before the error: up to the last line any part kept.
            applied_up_to = max(part.checkpoint_line for part in parts)
            message = failed.error_message
            if applied_up_to:
                message = f"{message}; {applied_lines_note(applied_up_to)}"
            execution.transition(
                Execution.Status.FAILED, error_code=failed.error_code, error_message=message
            )
        else:
            Execution.objects.filter(pk=execution.pk).update(total_lines=F("processed"))
            execution.transition(Execution.Status.SUCCEEDED)


def _apply_part(run: _PartRun, progress: Callable[[], None] | None) -> None:
    execution, part = run.execution, run.part
    default_mode = execution_merge_mode(execution)
    try:
        reader = execution_reader(execution)
    except FileError as problem:
        _finish_part(run, error=problem)
        return
    compartments = DatamartCompartments(execution.datamart)
    chunks = RecordChunks(
        records_after(reader, line=part.checkpoint_line, offset=part.checkpoint_offset),
        size=run.chunk_size,
        keep=lambda record: (
            partition_of(record=record, count=part.count, compartments=compartments) == part.number
        ),
    )
    try:
        for chunk in chunks:
            if not _commit_part_chunk(run, chunk, reader.position, default_mode):
                return
            if progress:
                progress()
            if shutdown_requested.is_set():
                _hand_over_part(run)
                return
    finally:
        chunks.close()
    _finish_part(run, error=chunks.file_error)


def _hand_over_part(run: _PartRun) -> None:
    """Give the part up after a committed chunk (its worker is stopping): no worker, no
    heartbeat, so the next run of the part (any worker) takes it at once."""
    ExecutionPartition.objects.filter(pk=run.part.pk, claim=run.claim).update(
        worker="", claim="", heartbeat_ts=None
    )
    run.handed_over = True
    logger.info("%s handed over after its last committed chunk: its worker stops", run.part)


def partition_run(
    *,
    execution_id: int,
    number: int,
    worker: str,
    progress: Callable[[], None] | None = None,
    record_history: bool = True,
) -> bool:
    """Apply one part of a split execution from its checkpoint to its end (or to a cancel).
    True when the run handed the part over (its worker is stopping): queue it again.

    Safe to call at any time: a finished part, or one another worker runs, is left alone.
    `record_history=False` skips the ProfileChange rows: for the benchmark only.
    """
    run = _claim_part(execution_id, number, worker)
    if run is None:
        return False
    run.record_history = record_history
    try:
        _apply_part(run, progress)
    except _LostClaim:
        logger.info("%s was taken over or its execution ended: this run stops", run.part)
    except Exception as problem:
        logger.exception("%s failed", run.part)
        with contextlib.suppress(_LostClaim), transaction.atomic():
            Execution.objects.select_for_update().filter(pk=execution_id).first()
            run.execution.transition(
                Execution.Status.FAILED,
                error_code="INTERNAL_ERROR",
                error_message=f"the import stopped on an unexpected error: {problem!r}"[:2000],
            )
    return run.handed_over
