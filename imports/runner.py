"""The import runner: an execution's file read as a stream and applied in chunks (SPEC §2, §4).

`execution_run` claims an execution, reads its file with the streaming readers and applies it
`IMPORT_CHUNK_SIZE` lines at a time through the write engine (`profiles.engine`). Each chunk is
one transaction together with its checkpoint (the last line applied and the byte offset after
it), its counters and its line errors, so a worker killed at any moment resumes after the last
committed chunk and ends with the database a clean run gives.

Who runs an execution: a run *claims* it (a fresh token, the worker's node name, a heartbeat
stamped at each chunk). Every chunk transaction locks the execution row and checks the token,
so when a second run takes over (a redelivered task, a restarted worker) the first one cannot
commit anything more: no line is applied twice. A run does not take over from another worker
whose heartbeat is fresh. `attempts` counts the runs started at the same checkpoint; past
`IMPORT_MAX_ATTEMPTS` the execution fails instead of killing workers forever.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from imports.column_mapping import MappingError, column_mapping_parse
from imports.error_rows import error_rows
from imports.models import Execution, ExecutionError
from imports.pace import series_append
from imports.readers import (
    FileError,
    FileFormat,
    ImportRecord,
    Reader,
    ReaderOptions,
    open_reader,
)
from profiles.engine import BatchResult, batch_prepare, batch_write, with_retries
from profiles.history import ChangeSource
from profiles.merge import MergeMode, choose_merge_mode
from profiles.models import Datamart, ProfileChange
from profiles.wording import count_noun

logger = logging.getLogger(__name__)


def execution_merge_mode(execution: Execution) -> MergeMode:
    """The import's default mode, for lines that choose none."""
    return choose_merge_mode(
        update_strategy=execution.default_update_strategy,
        merge_objects=execution.default_merge_objects,
    )


def execution_reader_options(execution: Execution) -> ReaderOptions:
    """How an execution's file is read: its encoding, delimiter and column mapping (the one
    the document import had at upload, so a resumed run or a retry reads it the same way)."""
    try:
        mapping = column_mapping_parse(execution.column_mapping)
    except MappingError as problem:  # stored through the same check: only a hand-edited row
        raise FileError("INVALID_COLUMN_MAPPING", problem.message) from None
    return ReaderOptions(
        encoding=execution.encoding or "utf-8",
        delimiter=execution.delimiter or None,
        column_mapping=mapping,
        empty_cell_is_empty_string=execution.empty_cell_is_empty_string,
    )


# --------------------------------------------------------------------------- running


class _LostClaim(Exception):
    """Another run took the execution over: this one stops without writing."""


@dataclass
class _Run:
    execution: Execution
    claim: str
    chunk_size: int
    record_history: bool
    datamart: Datamart | None = None
    progress: Callable[[int, int | None], None] | None = None
    processed: int = 0
    total: int | None = None
    checkpoint_line: int = 0
    handed_over: bool = False


# Set when the worker process is asked to stop (SIGTERM, a deploy): the run stops after the chunk
# it is applying and hands the execution over (imports.tasks queues it again).
shutdown_requested = threading.Event()


def _hand_over(run: _Run) -> None:
    """Give the execution up after a committed chunk: no worker, no heartbeat, so the next run
    (any worker) takes it at once instead of waiting for it to go stale."""
    with transaction.atomic():
        _locked_row(run)
        Execution.objects.filter(pk=run.execution.pk).update(worker="", claim="", heartbeat_ts=None)
    run.handed_over = True
    logger.info(
        "execution %s handed over at line %s: its worker stops", run.execution.pk, run.processed
    )


def _default_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _locked_row(run: _Run) -> dict[str, Any]:
    row = (
        Execution.objects.select_for_update()
        .filter(pk=run.execution.pk)
        .values(
            "claim",
            "status",
            "cancel_requested",
            "checkpoint_line",
            "processed",
            "failed",
            "progress_series",
        )
        .first()
    )
    if row is None or row["claim"] != run.claim or row["status"] != Execution.Status.RUNNING:
        raise _LostClaim()
    return row


def _canceled_message(checkpoint_line: int, processed: int) -> str:
    if not processed:
        return "canceled before any line was applied"
    return (
        f"canceled after line {checkpoint_line}: {count_noun(processed, 'line')} applied or "
        "reported, "
        "the lines after it were not applied"
    )


def heartbeat_fresh(heartbeat_ts: datetime | None, *, now: datetime) -> bool:
    """Whether a run's last heartbeat is recent enough that its worker is taken to be alive."""
    return heartbeat_ts is not None and now - heartbeat_ts < timedelta(
        seconds=settings.IMPORT_STALE_SECONDS
    )


def _claim(execution_id: int, worker: str) -> _Run | None:
    """Take the execution for this run, or None when there is nothing to do here."""
    with transaction.atomic():
        execution = Execution.objects.select_for_update().filter(pk=execution_id).first()
        if execution is None or execution.is_finished:
            return None
        if execution.cancel_requested:
            execution.transition(
                Execution.Status.CANCELED,
                error_code="CANCELED",
                error_message=_canceled_message(execution.checkpoint_line, execution.processed),
            )
            return None
        now = timezone.now()
        fresh = heartbeat_fresh(execution.heartbeat_ts, now=now)
        if execution.status == Execution.Status.RUNNING and execution.worker != worker and fresh:
            logger.info("execution %s is running on %s: not taken over", execution_id, worker)
            return None
        attempts = execution.attempts + 1
        chunk_size = max(1, settings.IMPORT_CHUNK_SIZE)
        if attempts > settings.IMPORT_MAX_ATTEMPTS:
            first = execution.checkpoint_line + 1
            execution.transition(
                Execution.Status.FAILED,
                error_code="CHUNK_KEEPS_FAILING",
                error_message=(
                    f"{execution.attempts} runs stopped (worker killed or lost) while applying "
                    f"the chunk that starts after line {execution.checkpoint_line} (line {first} "
                    f"on): the execution stops there; {count_noun(execution.processed, 'line')} "
                    "applied or reported before it"
                ),
            )
            return None
        claim = uuid.uuid4().hex
        execution.transition(Execution.Status.RUNNING)
        Execution.objects.filter(pk=execution_id).update(
            attempts=attempts, worker=worker, claim=claim, heartbeat_ts=now
        )
        execution.attempts, execution.worker, execution.claim = attempts, worker, claim
        execution.heartbeat_ts = now
    return _Run(execution=execution, claim=claim, chunk_size=chunk_size, record_history=True)


def _commit_chunk(
    run: _Run, records: list[ImportRecord], position: int | None, default_mode: MergeMode
) -> bool:
    """Apply one chunk and move the checkpoint past it; False when a cancel stopped the run."""
    execution = run.execution

    def write() -> BatchResult:
        # Prepared again on each try: a retried chunk (deadlock, lost connection) reads afresh.
        prepared = batch_prepare(
            datamart=run.datamart or execution.datamart, records=records, default_mode=default_mode
        )
        return batch_write(
            prepared, source=execution_source(execution), record_history=run.record_history
        )

    return chunk_commit(
        run,
        write=write,
        lines=len(records),
        checkpoint_line=records[-1].line,
        checkpoint_offset=position or 0,
    )


def execution_source(execution: Execution) -> ChangeSource:
    """Who the history rows of an execution name: the staff user or API token that started it."""
    return ChangeSource(
        kind=ProfileChange.Source.IMPORT,
        user_id=execution.created_by_id,
        api_token_id=None if execution.created_by_id else execution.api_token_id,
        execution_id=execution.pk,
    )


def counter_updates(result: BatchResult) -> dict[str, F]:
    """The execution's counters a written chunk moves, as updates of their columns."""
    counters = {name: F(name) + count for name, count in result.counts.items() if count}
    if result.failed:
        counters["failed"] = F("failed") + result.failed
    return counters


def chunk_commit(
    run: _Run,
    *,
    write: Callable[[], BatchResult],
    lines: int,
    checkpoint_line: int,
    checkpoint_offset: int,
) -> bool:
    """One transaction: `write` the chunk, its line errors, counters and checkpoint, if the run
    still owns the execution; False when a cancel stopped the run (nothing written)."""
    execution = run.execution

    def apply() -> bool:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # The checkpoint commits with the chunk, so a commit lost in a database crash
                # only means that chunk is applied again: no need to wait for the WAL flush.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
            row = _locked_row(run)
            if row["cancel_requested"]:
                execution.transition(
                    Execution.Status.CANCELED,
                    error_code="CANCELED",
                    error_message=_canceled_message(row["checkpoint_line"], row["processed"]),
                )
                return False
            result = write()
            if result.errors:
                ExecutionError.objects.bulk_create(
                    error_rows(execution.pk, result.errors, execution.encoding)
                )
            counters = counter_updates(result)
            now = timezone.now()
            processed = row["processed"] + lines
            Execution.objects.filter(pk=execution.pk).update(
                processed=processed,
                checkpoint_line=checkpoint_line,
                checkpoint_offset=checkpoint_offset,
                attempts=0,
                heartbeat_ts=now,
                progress_series=series_after_chunk(
                    row["progress_series"],
                    start_ts=run.execution.start_ts,
                    now=now,
                    processed=processed,
                    failed=row["failed"] + result.failed,
                ),
                **counters,
            )
            run.processed = processed
            run.checkpoint_line = checkpoint_line
            return True

    return with_retries(apply)


def applied_lines_note(checkpoint_line: int) -> str:
    """What a file-level failure found mid-file leaves applied: the lines up to the last
    committed one (each applied or reported as a line error), none after."""
    if not checkpoint_line:
        return "no line was applied"
    return (
        f"the lines up to line {checkpoint_line} were applied or reported as line errors, "
        "none after it"
    )


def series_after_chunk(
    series: list | None, *, start_ts: datetime | None, now: datetime, processed: int, failed: int
) -> list:
    """The pace chart's series with this chunk's point; the caller holds the execution's row
    locked, so no point is lost to a concurrent chunk (another part of the same file)."""
    seconds = round((now - (start_ts or now)).total_seconds(), 1)
    return series_append(series or [], [seconds, processed, failed])


def _finish(run: _Run, status: str, *, error_code: str = "", error_message: str = "") -> None:
    with transaction.atomic():
        _locked_row(run)
        if status == Execution.Status.SUCCEEDED:
            Execution.objects.filter(pk=run.execution.pk).update(total_lines=F("processed"))
        run.execution.transition(status, error_code=error_code, error_message=error_message)


class RecordChunks:
    """Records in chunks of `size` (the last one shorter), only those `keep` accepts. Each
    chunk comes out right after its last record is read, so the reader's position then is the
    chunk's checkpoint offset. A file-level error ends the chunks: the records read before it
    come out (they were valid) and the error is kept in `file_error`."""

    def __init__(
        self,
        records: Iterator[ImportRecord],
        *,
        size: int,
        keep: Callable[[ImportRecord], bool] | None = None,
    ) -> None:
        self.records, self.size, self.keep = records, size, keep
        self.file_error: FileError | None = None

    def __iter__(self) -> Iterator[list[ImportRecord]]:
        chunk: list[ImportRecord] = []
        while True:
            try:
                record = next(self.records)
            except StopIteration:
                break
            except FileError as problem:
                self.file_error = problem
                break
            if self.keep is None or self.keep(record):
                chunk.append(record)
                if len(chunk) >= self.size:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk

    def close(self) -> None:
        """Close the reader's iteration (its file) at once, whether or not it was read to the end."""
        close = getattr(self.records, "close", None)
        if close:
            close()


def records_after(reader: Reader, *, line: int, offset: int) -> Iterator[ImportRecord]:
    """The records after a checkpoint (the last line applied, the byte offset after it)."""
    if not line:
        return reader.iterate()
    if reader.format is FileFormat.XLSX or not offset:
        return reader.iterate(after_line=line)
    return reader.iterate(after_line=line, at_offset=offset)


def execution_reader(execution: Execution) -> Reader:
    """The execution's file opened with its options; raises FileError."""
    options = execution_reader_options(execution)
    if not execution.file.name:
        raise FileError("UNREADABLE_FILE", "the execution has no file")
    return open_reader(execution.file.path, FileFormat(execution.file_format), options)


def execution_describe(*, execution: Execution, reader: Reader) -> int | None:
    """Store what the reader found out about the file (delimiter, headers, number of
    records) where the execution does not know it yet; returns the total number of lines."""
    described: dict[str, Any] = {}
    if reader.delimiter and execution.delimiter != reader.delimiter:
        described["delimiter"] = reader.delimiter
    if reader.headers is not None and execution.headers is None:
        described["headers"] = reader.headers
    if execution.total_lines is None:
        total = reader.count_records()
        if total is not None:
            described["total_lines"] = total
    if described:
        Execution.objects.filter(pk=execution.pk).update(**described)
    return described.get("total_lines", execution.total_lines)


def execution_run(
    *,
    execution_id: int,
    worker: str = "",
    progress: Callable[[int, int | None], None] | None = None,
    record_history: bool = True,
    apply: Callable[[_Run], None] | None = None,
) -> bool:
    """Apply an execution's file from its checkpoint to the end (or to a cancel, or a failure).

    Safe to call for any execution at any time: a finished one, or one running elsewhere, is
    left alone. `progress(processed, total)` is called after each committed chunk.
    `record_history=False` skips the ProfileChange rows: for the benchmark only. `apply`
    replaces the reading of the file (a revert walks history rows: `imports.revert`). True when
    the run stopped for a worker shutdown and handed the execution over: the caller queues it
    again.
    """
    run = _claim(execution_id, worker or _default_worker())
    if run is None:
        return False
    run.progress = progress
    run.record_history = record_history
    try:
        (apply or _run)(run)
    except _LostClaim:
        logger.info("execution %s was taken over by another run: this one stops", execution_id)
    except Exception as problem:
        logger.exception("execution %s failed", execution_id)
        with contextlib.suppress(_LostClaim):
            _finish(
                run,
                Execution.Status.FAILED,
                error_code="INTERNAL_ERROR",
                error_message=f"the import stopped on an unexpected error: {problem!r}"[:2000],
            )
    return run.handed_over


def _run(run: _Run) -> None:
    execution = run.execution
    execution.refresh_from_db()
    run.datamart = execution.datamart
    default_mode = execution_merge_mode(execution)
    try:
        reader = execution_reader(execution)
    except FileError as problem:
        _finish(
            run, Execution.Status.FAILED, error_code=problem.code, error_message=problem.message
        )
        return
    run.total = execution_describe(execution=execution, reader=reader)
    run.processed = execution.processed
    run.checkpoint_line = execution.checkpoint_line

    records = records_after(
        reader, line=execution.checkpoint_line, offset=execution.checkpoint_offset
    )
    chunks = RecordChunks(records, size=run.chunk_size)
    try:
        for chunk in chunks:
            if not _commit_chunk(run, chunk, reader.position, default_mode):
                return
            if run.progress:
                run.progress(run.processed, run.total)
            if shutdown_requested.is_set():
                _hand_over(run)
                return
    finally:
        chunks.close()
    file_error = chunks.file_error
    if file_error is not None:
        _finish(
            run,
            Execution.Status.FAILED,
            error_code=file_error.code,
            error_message=f"{file_error.message}; {applied_lines_note(run.checkpoint_line)}",
        )
    else:
        _finish(run, Execution.Status.SUCCEEDED)
