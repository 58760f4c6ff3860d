"""The import preview: the first lines of an upload applied in a transaction rolled back.

Nothing is written: the admin shows the counts, the first errors and each first line's
profile before and after, with warnings (SPEC §2 rule 2) before staff confirm the import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from itertools import islice

from django.conf import settings
from django.db import transaction

from imports.column_mapping import SAMPLE_EVERY_COLUMN
from imports.flat_layout import cell_text
from imports.formats import FileFormat
from imports.models import Execution
from imports.readers import FileError, ImportRecord, ReaderOptions, open_reader
from profiles.commands import ANNOTATION_KEYS, ProfileCommand
from profiles.engine import BatchResult, ProfileDiff, commands_apply, with_retries
from profiles.history import ChangeSource
from profiles.identifiers import AccountIdentifier
from profiles.merge import MergeMode
from profiles.models import Datamart, ProfileChange
from profiles.wording import count_noun

PREVIEW_DIFF_LINES = 20
PREVIEW_ERRORS = 50


@dataclass(frozen=True)
class PreviewError:
    line: int
    identifier: str
    error_code: str
    message: str
    field: str = ""


@dataclass
class ImportPreview:
    lines: int = 0  # records previewed (commands and bad lines)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(Execution.COUNTERS, 0))
    errors: list[PreviewError] = field(default_factory=list)  # the first ones
    diffs: list[ProfileDiff] = field(default_factory=list)
    delimiter: str | None = None
    headers: list[str] | None = None
    warnings: list[str] = field(default_factory=list)
    truncated: bool = False  # the file has more lines than previewed
    file_error_code: str = ""  # a file-level problem: the execution would FAIL
    file_error_message: str = ""

    @property
    def ok(self) -> bool:
        return not self.file_error_code


def _rule_two_warning(records: list[ImportRecord]) -> str:
    """SPEC §2 rule 2 (worded for staff, who do not have SPEC): the line's account does not
    address the profile."""
    lines = [
        record.line
        for record in records
        if isinstance(record, ProfileCommand)
        and isinstance(record.identifier, AccountIdentifier)
        and isinstance(record.user_profile, dict)
        and (
            record.user_profile.get("$compartment_id") is None
            or record.user_profile.get("$user_account_id") in (None, "")
        )
    ]
    if not lines:
        return ""
    shown = ", ".join(str(line) for line in lines[:10]) + (", …" if len(lines) > 10 else "")
    one = len(lines) == 1
    return (
        f"{count_noun(len(lines), 'line')} identified by an account "
        f"{'names' if one else 'name'} no $compartment_id or $user_account_id in "
        f"{'its' if one else 'their'} user_profile ({'line' if one else 'lines'} {shown}): "
        f"{'it writes' if one else 'they write'} the profile the user_profile names (the default "
        "compartment's, or an anonymous one), not the account's own profile. Add "
        "$compartment_id and $user_account_id to the user_profile to address the account's profile."
    )


def import_preview(
    *,
    datamart: Datamart,
    path: str | os.PathLike[str],
    file_format: FileFormat | str,
    options: ReaderOptions,
    default_mode: MergeMode,
    max_lines: int = 1000,
) -> ImportPreview:
    """A dry run of the first `max_lines` lines through the write engine, rolled back."""
    preview = ImportPreview()
    try:
        reader = open_reader(path, FileFormat(file_format), options)
    except FileError as problem:
        preview.file_error_code, preview.file_error_message = problem.code, problem.message
        return preview
    preview.delimiter = reader.delimiter
    preview.headers = reader.headers
    records: list[ImportRecord] = []
    iterator = reader.iterate()
    try:
        records = list(islice(iterator, max_lines))
        if next(iterator, None) is not None:
            preview.truncated = True
    except FileError as problem:
        preview.file_error_code, preview.file_error_message = problem.code, problem.message
    finally:
        iterator.close()
    preview.lines = len(records)

    source = ChangeSource(kind=ProfileChange.Source.IMPORT)
    chunk_size = max(1, settings.IMPORT_CHUNK_SIZE)
    with transaction.atomic():
        for start in range(0, len(records), chunk_size):
            chunk = records[start : start + chunk_size]
            diff_lines = max(0, PREVIEW_DIFF_LINES - start)

            def apply(chunk=chunk, diff_lines=diff_lines) -> BatchResult:
                with transaction.atomic():
                    return commands_apply(
                        datamart=datamart,
                        records=chunk,
                        default_mode=default_mode,
                        source=source,
                        diff_lines=diff_lines,
                    )

            result = with_retries(apply)
            for name, count in result.counts.items():
                preview.counts[name] += count
            preview.counts["failed"] += result.failed
            preview.diffs.extend(result.diffs)
            for error in result.errors:
                if len(preview.errors) < PREVIEW_ERRORS:
                    preview.errors.append(
                        PreviewError(
                            line=error.line,
                            identifier=error.identifier,
                            error_code=error.code,
                            message=error.message,
                            field=error.field,
                        )
                    )
        transaction.set_rollback(True)

    warning = _rule_two_warning(records)
    if warning:
        preview.warnings.append(warning)
    if preview.truncated:
        preview.warnings.append(
            f"the preview covers the first {count_noun(preview.lines, 'line')}; the file has more, "
            "applied only when the import runs"
        )
    if preview.file_error_code:
        preview.warnings.append(
            f"the import would fail: {preview.file_error_message} ({preview.file_error_code})"
        )
    return preview


@dataclass(frozen=True)
class FlatFileSample:
    """A CSV/XLSX file's header row and a few values of each column, read before any mapping."""

    headers: list[str]  # the source headers, the failed-lines file's `_line`/`_error` left out
    values: dict[str, list[str]]  # header → up to `rows` non-empty cells, as text


def flat_file_sample(
    *, path: str | os.PathLike[str], file_format: FileFormat, options: ReaderOptions, rows: int = 3
) -> FlatFileSample:
    """The header row and first values of a flat file; raises FileError when it cannot be read.

    Every column is read as ignored (`SAMPLE_EVERY_COLUMN`), so any header row can be shown,
    whatever SPEC §3 would make of it; a problem further down is left to the preview to say.
    """
    reader = open_reader(path, file_format, replace(options, column_mapping=SAMPLE_EVERY_COLUMN))
    headers = [header for header in reader.headers or [] if header not in ANNOTATION_KEYS]
    values: dict[str, list[str]] = {header: [] for header in headers}
    records = reader.iterate()
    try:
        for record in islice(records, rows):
            cells = record.raw if isinstance(record.raw, Mapping) else {}
            for header in headers:
                cell = cells.get(header)
                if cell is not None and cell != "":
                    values[header].append(cell_text(cell))
    except FileError:
        pass
    finally:
        records.close()
    return FlatFileSample(headers=list(dict.fromkeys(headers)), values=values)
