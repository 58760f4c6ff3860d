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
import math
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from imports.column_mapping import MappingError, column_mapping_parse
from imports.models import Execution, ExecutionError
from imports.readers import (
    FileError,
    FileFormat,
    ImportRecord,
    Reader,
    ReaderOptions,
    open_reader,
)
from profiles.commands import LineError
from profiles.engine import batch_prepare, batch_write, with_retries
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
    )


# --------------------------------------------------------------------------- error rows


def _clean_text(text: str, limit: int | None = None) -> str:
    """Text a database column accepts: no NUL, no lone surrogate."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if not text.isascii():
        text = text.encode("utf-8", errors="replace").decode("utf-8")
    return text if limit is None else text[:limit]


def storable_raw(value: Any, encoding: str = "utf-8") -> Any:
    """The source record as JSON a database takes: undecodable bytes are decoded with
    replacement characters, NUL and lone surrogates replaced (the line was refused for
    them anyway, and the failed-lines file stays writable)."""
    if isinstance(value, bytes):
        return _clean_text(value.decode(encoding, errors="replace"))
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, dict):
        return {_clean_text(str(key)): storable_raw(item, encoding) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable_raw(item, encoding) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return _clean_text(str(value))


def _error_rows(execution_id: int, errors: list[LineError], encoding: str) -> list[ExecutionError]:
    return [
        ExecutionError(
            execution_id=execution_id,
            line=error.line,
            identifier=_clean_text(error.identifier, 600),
            error_code=_clean_text(error.code, 64),
            message=_clean_text(error.message),
            field=_clean_text(error.field, 300),
            raw=storable_raw(error.raw, encoding),
        )
        for error in errors
    ]


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


def _default_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _locked_row(run: _Run) -> dict[str, Any]:
    row = (
        Execution.objects.select_for_update()
        .filter(pk=run.execution.pk)
        .values("claim", "status", "cancel_requested", "checkpoint_line", "processed")
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
        fresh = execution.heartbeat_ts is not None and now - execution.heartbeat_ts < timedelta(
            seconds=settings.IMPORT_STALE_SECONDS
        )
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
    # The history names who uploaded the file: a staff user or an API token.
    source = ChangeSource(
        kind=ProfileChange.Source.IMPORT,
        user_id=execution.created_by_id,
        api_token_id=None if execution.created_by_id else execution.api_token_id,
        execution_id=execution.pk,
    )
    prepared = batch_prepare(
        datamart=run.datamart or execution.datamart, records=records, default_mode=default_mode
    )

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
            result = batch_write(prepared, source=source, record_history=run.record_history)
            if result.errors:
                ExecutionError.objects.bulk_create(
                    _error_rows(execution.pk, result.errors, execution.encoding)
                )
            counters = {name: F(name) + count for name, count in result.counts.items() if count}
            if result.failed:
                counters["failed"] = F("failed") + result.failed
            Execution.objects.filter(pk=execution.pk).update(
                processed=F("processed") + result.lines,
                checkpoint_line=records[-1].line,
                checkpoint_offset=position or 0,
                attempts=0,
                heartbeat_ts=timezone.now(),
                **counters,
            )
            run.processed = row["processed"] + result.lines
            return True

    return with_retries(apply)


def _finish(run: _Run, status: str, *, error_code: str = "", error_message: str = "") -> None:
    with transaction.atomic():
        _locked_row(run)
        if status == Execution.Status.SUCCEEDED:
            Execution.objects.filter(pk=run.execution.pk).update(total_lines=F("processed"))
        run.execution.transition(status, error_code=error_code, error_message=error_message)


def _records_after(reader: Reader, execution: Execution) -> Iterator[ImportRecord]:
    if not execution.checkpoint_line:
        return reader.iterate()
    if reader.format is FileFormat.XLSX or not execution.checkpoint_offset:
        return reader.iterate(after_line=execution.checkpoint_line)
    return reader.iterate(
        after_line=execution.checkpoint_line, at_offset=execution.checkpoint_offset
    )


def execution_run(
    *,
    execution_id: int,
    worker: str = "",
    progress: Callable[[int, int | None], None] | None = None,
    record_history: bool = True,
) -> None:
    """Apply an execution's file from its checkpoint to the end (or to a cancel, or a failure).

    Safe to call for any execution at any time: a finished one, or one running elsewhere, is
    left alone. `progress(processed, total)` is called after each committed chunk.
    `record_history=False` skips the ProfileChange rows: for the benchmark only.
    """
    run = _claim(execution_id, worker or _default_worker())
    if run is None:
        return
    run.progress = progress
    run.record_history = record_history
    try:
        _run(run)
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


def _run(run: _Run) -> None:
    execution = run.execution
    execution.refresh_from_db()
    run.datamart = execution.datamart
    default_mode = execution_merge_mode(execution)
    try:
        options = execution_reader_options(execution)
        if not execution.file.name:
            raise FileError("UNREADABLE_FILE", "the execution has no file")
        reader = open_reader(execution.file.path, FileFormat(execution.file_format), options)
    except FileError as problem:
        _finish(
            run, Execution.Status.FAILED, error_code=problem.code, error_message=problem.message
        )
        return
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
    run.total = described.get("total_lines", execution.total_lines)
    run.processed = execution.processed

    records = _records_after(reader, execution)
    chunk: list[ImportRecord] = []
    file_error: FileError | None = None
    try:
        while True:
            try:
                record = next(records)
            except StopIteration:
                break
            except FileError as problem:
                file_error = problem
                break
            chunk.append(record)
            if len(chunk) >= run.chunk_size:
                if not _commit_chunk(run, chunk, reader.position, default_mode):
                    return
                chunk = []
                if run.progress:
                    run.progress(run.processed, run.total)
        # The lines read before a file-level error are applied: they were valid.
        if chunk:
            if not _commit_chunk(run, chunk, reader.position, default_mode):
                return
            if run.progress:
                run.progress(run.processed, run.total)
    finally:
        close = getattr(records, "close", None)
        if close:
            close()
    if file_error is not None:
        _finish(
            run,
            Execution.Status.FAILED,
            error_code=file_error.code,
            error_message=file_error.message,
        )
    else:
        _finish(run, Execution.Status.SUCCEEDED)
