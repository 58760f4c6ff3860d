"""The preview of an upload as staff read it: counts, how much of the file it covers, warnings,
the delimiter found, the column mapping used and a before → after table of the first lines'
profiles. `upload_preview` runs it with the options an upload was staged with."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.text import Truncator

from imports.column_mapping import MappingError, column_mapping_parse
from imports.formats import FileFormat
from imports.models import Execution
from imports.preview import ImportPreview, import_preview
from imports.readers import ReaderOptions
from imports.services import execution_file_name
from imports.uploads import StagedUpload, estimated_lines
from profiles.admin.display import moment_text
from profiles.engine import ProfileDiff
from profiles.history import changed_keys
from profiles.merge import choose_merge_mode
from profiles.models import Datamart
from profiles.wording import count_noun

PREVIEW_COUNT_LABELS = (
    ("created", "Creates"),
    ("updated", "Updates"),
    ("deleted", "Deletes"),
    ("unchanged", "Unchanged"),
    ("not_found", "Not found (DELETE)"),
    ("failed", "Errors"),
)
SERVICE_COVERAGE_WARNING = "the preview covers the first"
# The preview page stays short: these many diffs and errors open, the rest folded; in each diff,
# every changed key but only the first unchanged ones.
DIFFS_OPEN = 5
ERRORS_OPEN = 10
UNCHANGED_KEYS_SHOWN = 3
DELIMITER_NAMES = {",": "comma (,)", ";": "semicolon (;)", "\t": "tab", "|": "pipe (|)"}


logger = logging.getLogger(__name__)


def unreadable_file_problem(file_format: str, encoding: str, message: str, code: str) -> str:
    return (
        f"This file cannot be imported as {file_format} ({encoding}): {message} [{code}]. "
        "Check the format and the encoding."
    )


def upload_preview(*, staged: StagedUpload, options: dict[str, Any]) -> tuple[ImportPreview, str]:
    """The preview of a staged upload with its options (session-kept), and the problem that
    keeps it from being imported ("" when none)."""
    file_format = FileFormat(options["file_format"])
    mode = choose_merge_mode(
        update_strategy=options["update_strategy"], merge_objects=options["merge_objects"]
    )
    try:
        preview = import_preview(
            datamart=Datamart.objects.get(pk=options["datamart_id"]),
            path=staged.path,
            file_format=file_format,
            options=ReaderOptions(
                encoding=options["encoding"],
                column_mapping=column_mapping_parse(options.get("column_mapping")),
                empty_cell_is_empty_string=options.get("empty_cell_is_empty_string", False),
            ),
            default_mode=mode,
            max_lines=settings.IMPORT_PREVIEW_LINES,
        )
    except Exception as problem:  # a file no reader foresaw must not answer 500
        logger.exception("preview of %s failed", staged.file_name)
        preview = ImportPreview(
            file_error_code="UNREADABLE_FILE", file_error_message=str(problem) or repr(problem)
        )
    if not preview.ok:
        message, code = preview.file_error_message, preview.file_error_code
        return preview, unreadable_file_problem(
            file_format.value, options["encoding"], message, code
        )
    if preview.lines == 0:
        return preview, "The file holds no line to import."
    return preview, ""


def upload_options_view(options: dict[str, Any]) -> dict[str, Any]:
    """A staged upload's options as the preview and the mapping step show them."""
    return {
        "datamart": Datamart.objects.filter(pk=options["datamart_id"]).first(),
        "encoding": options["encoding"],
        "update_strategy": options["update_strategy"],
        "merge_objects": options["merge_objects"],
        "empty_cell_is_empty_string": options.get("empty_cell_is_empty_string", False),
        "column_mapping": mapping_rows(options.get("column_mapping")),
    }


def mapping_rows(column_mapping: object) -> list[tuple[str, str | None, str | None]]:
    """A stored mapping as (header, target or None, transform or None) rows, for a page."""
    try:
        mapping = column_mapping_parse(column_mapping)
    except MappingError:  # stored through the same check: only a hand-edited row
        return []
    if mapping is None:
        return []
    return [(header, target.to, target.transform) for header, target in mapping.targets.items()]


@dataclass(frozen=True)
class DiffRow:
    key: str
    before: str
    after: str
    change: str  # "added" | "removed" | "changed" | "same"


@dataclass(frozen=True)
class DiffView:
    diff: ProfileDiff
    profile: str
    rows: list[DiffRow]
    unchanged_hidden: int = 0  # unchanged keys left out of `rows`

    @property
    def row_span(self) -> int:
        """Table rows of this diff: its keys, and one saying how many unchanged keys are left out."""
        return len(self.rows) + (1 if self.unchanged_hidden else 0)


def _json_cell(value: Any) -> str:
    """JSON text, so "1" and 1 look different; long values shortened."""
    return Truncator(json.dumps(value, ensure_ascii=False)).chars(80)


def diff_view(diff: ProfileDiff) -> DiffView:
    """One previewed line as staff read it: each top-level key, before → after."""
    before, after = diff.before or {}, diff.after or {}
    changed = set(changed_keys(before, after))
    rows = []
    for key in dict.fromkeys([*before, *after]):
        if key not in before:
            change = "added"
        elif key not in after:
            change = "removed"
        else:
            change = "changed" if key in changed else "same"
        rows.append(
            DiffRow(
                key=key,
                before=_json_cell(before[key]) if key in before else "",
                after=_json_cell(after[key]) if key in after else "",
                change=change,
            )
        )
    same = [row for row in rows if row.change == "same"]
    hidden = same[UNCHANGED_KEYS_SHOWN:]
    if hidden:
        rows = [row for row in rows if row not in hidden]
    profile = f"{diff.compartment_id}/{diff.user_account_id or 'anonymous'}"
    return DiffView(diff=diff, profile=profile, rows=rows, unchanged_hidden=len(hidden))


SAME_FILE_WITHIN = timedelta(hours=24)


def same_file_warning(*, datamart_id: int, staged: StagedUpload, file_format: FileFormat) -> str:
    """A file of the same name and size imported into the datamart in the last 24 hours: the
    same export uploaded twice, or the upload posted again by the browser's Back and reload."""
    earlier = (
        Execution.objects.filter(
            datamart_id=datamart_id,
            reverts__isnull=True,
            file_name=execution_file_name(staged.file_name, file_format)[:255],
            file_size=staged.size,
            created_ts__gte=timezone.now() - SAME_FILE_WITHIN,
        )
        .order_by("-created_ts")
        .first()
    )
    if earlier is None:
        return ""
    return (
        f"execution #{earlier.pk} ({earlier.status}) imported a file of the same name and size "
        f"({earlier.file_name}, {count_noun(staged.size, 'byte')}) at "
        f"{moment_text(earlier.created_ts)}: confirming imports it again."
    )


def preview_context(
    preview: ImportPreview, staged: StagedUpload, file_format: FileFormat, *, datamart_id: int
):
    counts = [(label, preview.counts.get(key, 0), key) for key, label in PREVIEW_COUNT_LABELS]
    if preview.truncated:
        total = estimated_lines(staged.path, file_format)
        coverage = (
            f"The preview covers the first {count_noun(preview.lines, 'line')} of about {total:,}."
            if total and total > preview.lines
            else f"The preview covers the first {count_noun(preview.lines, 'line')}; the file has more."
        )
    else:
        coverage = f"The preview covers the whole file: {count_noun(preview.lines, 'line')}."
    # The service says "the preview covers the first N lines" too; ours adds the file's size.
    warnings = [coverage] + [
        warning
        for warning in preview.warnings
        if not (preview.truncated and warning.startswith(SERVICE_COVERAGE_WARNING))
    ]
    same_file = same_file_warning(datamart_id=datamart_id, staged=staged, file_format=file_format)
    if same_file:
        warnings.insert(0, same_file)
    diffs = [diff_view(diff) for diff in preview.diffs]
    return {
        "preview": preview,
        "preview_counts": counts,
        "preview_coverage": coverage,
        "preview_warnings": warnings,
        "preview_diffs": diffs,
        "preview_diffs_open": diffs[:DIFFS_OPEN],
        "preview_diffs_folded": diffs[DIFFS_OPEN:],
        "preview_errors_open": preview.errors[:ERRORS_OPEN],
        "preview_errors_folded": preview.errors[ERRORS_OPEN:],
        "preview_delimiter": DELIMITER_NAMES.get(preview.delimiter or "", preview.delimiter),
        "staged": staged,
        "file_format": file_format,
    }
