"""Starting, cancelling, retrying and previewing imports: what the API, the admin and the CLI call.

Writes happen here; the file itself is applied by `imports.runner` in a Celery worker, queued
on commit (never from `save()` or a signal), so a rolled-back request queues nothing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, Literal

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from imports.column_mapping import MappingError, column_mapping_parse
from imports.formats import FileFormat, format_of_document_mime_type, format_spec
from imports.models import DocumentImport, Execution
from imports.tasks import run_execution
from imports.writers import write_failed_lines
from profiles.commands import LineError
from profiles.errors import ProfileError
from profiles.merge import choose_merge_mode
from profiles.models import Datamart


class ImportRefused(ProfileError):
    """A request about an import that cannot be honoured (bad option, nothing to retry)."""


def empty_file_refused() -> ImportRefused:
    """An empty upload: refused alike by the API (400), the admin and `import_profiles`."""
    return ImportRefused("EMPTY_FILE", "the file is empty: send the file to import")


# --- document imports -----------------------------------------------------------------------


def column_mapping_checked(*, mime_type: str, column_mapping: object) -> dict | None:
    """The mapping to store (its canonical JSON), or ImportRefused naming the header at fault
    (`field` = `column_mapping.<header>`). Only flat files have headers to map."""
    try:
        mapping = column_mapping_parse(column_mapping)
    except MappingError as problem:
        where = f"column_mapping.{problem.header}" if problem.header else "column_mapping"
        named = f"header {problem.header!r}: " if problem.header else ""
        raise ImportRefused(problem.code, f"{named}{problem.message}", field=where) from None
    if mapping is None:
        return None
    fmt = format_of_document_mime_type(mime_type)
    if fmt is None or not fmt.is_flat:
        raise ImportRefused(
            "COLUMN_MAPPING_NOT_APPLICABLE",
            "a column mapping maps the headers of CSV and XLSX files; JSON and NDJSON commands "
            "name their fields already",
            field="column_mapping",
        )
    return mapping.as_json()


def document_import_create(
    *,
    datamart: Datamart,
    name: str,
    document_type: str,
    mime_type: str,
    encoding: str,
    column_mapping: object = None,
) -> DocumentImport:
    return DocumentImport.objects.create(
        datamart=datamart,
        name=name,
        document_type=document_type,
        mime_type=mime_type,
        encoding=encoding,
        column_mapping=column_mapping_checked(mime_type=mime_type, column_mapping=column_mapping),
    )


def document_import_update(
    *,
    document_import: DocumentImport,
    name: str,
    document_type: str,
    mime_type: str,
    encoding: str,
    column_mapping: object = None,
) -> DocumentImport:
    """Its datamart stays: its executions keep theirs. Running executions keep the mapping they
    started with."""
    mapping = column_mapping_checked(mime_type=mime_type, column_mapping=column_mapping)
    document_import.name, document_import.document_type = name, document_type
    document_import.mime_type, document_import.encoding = mime_type, encoding
    document_import.column_mapping = mapping
    document_import.save(
        update_fields=["name", "document_type", "mime_type", "encoding", "column_mapping"]
    )
    return document_import


def document_import_column_mapping_save(
    *, document_import: DocumentImport, column_mapping: object
) -> DocumentImport:
    """The mapping staff chose in the admin's mapping step, kept for the next file."""
    document_import.column_mapping = column_mapping_checked(
        mime_type=document_import.mime_type, column_mapping=column_mapping
    )
    document_import.save(update_fields=["column_mapping"])
    return document_import


def document_import_delete(*, document_import: DocumentImport) -> None:
    """Deletes its executions with it (cascade); their history rows keep the execution id."""
    document_import.delete()


# --- executions -----------------------------------------------------------------------------


def execution_start(
    *,
    document_import: DocumentImport,
    upload: File,
    file_name: str,
    created_by=None,
    api_token=None,
    default_update_strategy: str = "PARTIAL_UPDATE",
    default_merge_objects: bool = True,
    file_format: str | None = None,
    encoding: str | None = None,
    column_mapping: dict | None | Literal["document_import"] = "document_import",
    empty_cell_is_empty_string: bool = False,
    enqueue: bool = True,
) -> Execution:
    """Store the upload and create its PENDING execution, queued for a worker once committed.

    A file over `IMPORT_MAX_FILE_BYTES` is not stored: its execution is FAILED with
    FILE_TOO_LARGE at once. An empty file is refused (ImportRefused EMPTY_FILE): no execution.
    `file_format` and `encoding` default to the document import's;
    `column_mapping` is the document import's unless the caller read the file otherwise (the
    admin's upload reads a SPEC §3 file as it is, and a CRM file through the mapping chosen);
    `empty_cell_is_empty_string` tells a flat file's reader that an empty cell is "" (SPEC §3:
    absent unless the import is told otherwise);
    `enqueue=False` leaves the run to the caller (the `import_profiles` command runs it in-process).
    """
    fmt = (
        FileFormat(file_format)
        if file_format
        else format_of_document_mime_type(document_import.mime_type)
    )
    if fmt is None:
        raise ImportRefused(
            "UNSUPPORTED_FORMAT", f"no reader for {document_import.mime_type}", field="mime_type"
        )
    mode = choose_merge_mode(
        update_strategy=default_update_strategy, merge_objects=default_merge_objects
    )
    name = execution_file_name(file_name, fmt)
    mapping = (
        document_import.column_mapping if column_mapping == "document_import" else column_mapping
    )
    execution = Execution(
        datamart_id=document_import.datamart_id,
        document_import=document_import,
        file_name=name[:255],
        file_format=fmt.value,
        encoding=encoding or document_import.encoding,
        default_update_strategy=mode.strategy.value,
        default_merge_objects=mode.merge_objects,
        created_by=created_by,
        api_token=api_token,
        # Flat files only (an admin upload may send JSON through a CSV definition).
        column_mapping=mapping if fmt.is_flat else None,
        empty_cell_is_empty_string=empty_cell_is_empty_string and fmt.is_flat,
    )
    cap = settings.IMPORT_MAX_FILE_BYTES
    size = _size_of(upload)
    if size == 0:
        raise empty_file_refused()
    if size is not None and size > cap:
        return _failed_too_large(execution, size, cap)
    # Stored before the transaction: copying a large file must not hold the database's locks.
    execution.file.save(name[-120:], upload, save=False)
    stored_size = execution.file.storage.size(execution.file.name)
    if stored_size == 0:
        execution.file.delete(save=False)
        raise empty_file_refused()
    if stored_size > cap:
        execution.file.delete(save=False)
        return _failed_too_large(execution, stored_size, cap)
    execution.file_size = stored_size
    try:
        with transaction.atomic():
            execution.save()
            if enqueue:
                _enqueue(execution)
    except BaseException:
        execution.file.delete(save=False)
        raise
    return execution


def _size_of(upload: File) -> int | None:
    try:
        return upload.size
    except (AttributeError, OSError, TypeError):
        return None


def upload_file_name(file_name: str | None) -> str:
    """The name an upload is kept under: its base name, without any folder (Windows ones
    included: some browsers send them), and without the characters `str.isprintable` refuses
    (control and format characters, lone surrogates, line separators), which a database
    column or a header cannot hold, as Django's multipart parser does for admin uploads.
    `.` and `..` are no name: "" then.
    """
    printable = "".join(character for character in file_name or "" if character.isprintable())
    base = os.path.basename(printable.replace("\\", "/")).strip()
    return "" if base in {".", ".."} else base


def execution_file_name(file_name: str | None, file_format: FileFormat) -> str:
    """The name an execution keeps its upload under (`Execution.file_name` holds its first 255
    characters, the stored file its last 120)."""
    return upload_file_name(file_name) or f"upload.{file_format.value.lower()}"


def _failed_too_large(execution: Execution, size: int, cap: int) -> Execution:
    execution.file_size = size
    with transaction.atomic():
        execution.save()
        execution.transition(
            Execution.Status.FAILED,
            error_code="FILE_TOO_LARGE",
            error_message=f"the file takes {size} bytes, over the limit of {cap} bytes",
        )
    return execution


def _enqueue(execution: Execution) -> None:
    run_execution.delay_on_commit(execution.pk)


def execution_cancel(*, execution: Execution) -> Execution:
    """PENDING: CANCELED at once. RUNNING: the worker stops after its current chunk.

    A finished execution is returned as it is.
    """
    if execution.status == Execution.Status.PENDING and execution.transition(
        Execution.Status.CANCELED,
        error_code="CANCELED",
        error_message="canceled before it started: no line was applied",
    ):
        return execution
    Execution.objects.filter(
        pk=execution.pk, status__in=[Execution.Status.PENDING, Execution.Status.RUNNING]
    ).update(cancel_requested=True)
    # A worker holds it: it stops between chunks and says how far it got.
    execution.refresh_from_db()
    return execution


def execution_retry(*, execution: Execution) -> Execution:
    """A FAILED or CANCELED execution -> a new PENDING execution of the same file and options."""
    if execution.status not in (Execution.Status.FAILED, Execution.Status.CANCELED):
        raise ImportRefused(
            "NOT_RETRYABLE",
            f"only a FAILED or CANCELED execution can be retried, this one is {execution.status}",
        )
    if not execution.file.name or not execution.file.storage.exists(execution.file.name):
        raise ImportRefused(
            "NOT_RETRYABLE", "the file of this execution was not kept: upload it again"
        )
    retry = Execution(
        datamart_id=execution.datamart_id,
        document_import_id=execution.document_import_id,
        # The same stored file: a retry never copies it.
        file=execution.file.name,
        file_name=execution.file_name,
        file_size=execution.file_size,
        file_format=execution.file_format,
        encoding=execution.encoding,
        default_update_strategy=execution.default_update_strategy,
        default_merge_objects=execution.default_merge_objects,
        column_mapping=execution.column_mapping,
        empty_cell_is_empty_string=execution.empty_cell_is_empty_string,
        created_by_id=execution.created_by_id,
        api_token_id=execution.api_token_id,
        retry_of=execution,
    )
    with transaction.atomic():
        retry.save()
        _enqueue(retry)
    return retry


# --- failed lines ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FailedLinesFile:
    file_name: str
    content_type: str
    chunks: Iterator[bytes]  # stream it (StreamingHttpResponse, FileResponse...)


def _failed_line_errors(execution: Execution) -> Iterator[LineError]:
    rows = execution.errors.order_by("line", "id").values_list(
        "line", "error_code", "message", "field", "identifier", "raw", "raw_size"
    )
    # Each raw weighs up to IMPORT_ERROR_RAW_MAX_BYTES: a few hundred rows at a time.
    for line, code, message, field_name, identifier, raw, raw_size in rows.iterator(chunk_size=200):
        if raw_size is not None:
            # Only the first bytes were kept: the line comes back without its data.
            raw = None
            message = (
                f"{message} (the line took {raw_size} bytes, too many to keep: take it from "
                "the source file)"
            )
        yield LineError(
            line=line,
            code=code,
            message=message,
            field=field_name,
            identifier=identifier,
            raw=raw,
        )


def execution_failed_lines_write(*, execution: Execution, out: IO[bytes]) -> int:
    """Write the execution's failed lines in its source format, with `_line` and `_error`;
    returns their count."""
    return write_failed_lines(
        _failed_line_errors(execution),
        FileFormat(execution.file_format or FileFormat.NDJSON),
        out,
        headers=execution.headers,
        delimiter=execution.delimiter or ",",
        encoding=execution.encoding or "utf-8",
    )


def _failed_lines_stream(*, execution: Execution, block_size: int = 1 << 16) -> Iterator[bytes]:
    """The failed-lines file in blocks, spooled to disk past a few megabytes."""
    with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
        execution_failed_lines_write(execution=execution, out=spool)
        spool.seek(0)
        while block := spool.read(block_size):
            yield block


def execution_failed_lines(*, execution: Execution) -> FailedLinesFile:
    """The failed-lines file as a stream of bytes; memory stays flat (spooled to disk)."""
    file_format = FileFormat(execution.file_format or FileFormat.NDJSON)
    spec = format_spec(file_format)
    stem = os.path.splitext(execution.file_name or f"execution-{execution.pk}")[0]
    content_type = spec.content_type
    if file_format is not FileFormat.XLSX:  # text, written in the upload's encoding
        encoding = execution.encoding or "utf-8"
        content_type += f"; charset={'utf-8' if encoding.startswith('utf-8') else encoding}"
    return FailedLinesFile(
        file_name=f"{stem}.failed-lines.{spec.extension}",
        content_type=content_type,
        chunks=_failed_lines_stream(execution=execution),
    )


# --- recovery -------------------------------------------------------------------------------


def executions_to_resume(*, worker: str) -> list[int]:
    """Executions a starting worker should queue again: those its previous life left RUNNING,
    those whose worker stopped committing chunks (stale), and old PENDING ones whose message
    a dead worker may have taken with it. Running one twice is harmless (see the runner)."""
    stale = timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS)
    running = Q(status=Execution.Status.RUNNING) & (
        Q(worker=worker)
        | Q(heartbeat_ts__lt=stale)
        | Q(heartbeat_ts__isnull=True)
        # A split execution: one of its unfinished parts ran there (imports.partitions).
        | Q(partitions__worker=worker, partitions__finished=False)
    )
    pending = Q(status=Execution.Status.PENDING, created_ts__lt=stale)
    return list(
        Execution.objects.filter(running | pending)
        .order_by("id")
        .values_list("id", flat=True)
        .distinct()
    )
