"""The admin import's mapping step: a CSV/XLSX file whose headers are not all known (not the
SPEC §3 layout, not in the document import's saved mapping) is mapped before its preview; a file
in the SPEC §3 layout is read as it is, and the saved mapping kept (`mapping_for_headers`).

Each header is shown with a proposed target (`imports.column_mapping.mapping_proposal`) and a
few of its values; the mapping chosen is checked by the API's rule, used for the preview, and
saved on the document import when the import is confirmed, so the next file with the same
headers goes straight to its preview.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imports.admin.forms import TRANSFORM_LABELS, ColumnMappingForm
from imports.admin.import_preview import unreadable_file_problem, upload_options_view
from imports.column_mapping import (
    MappingError,
    MappingNeeded,
    column_mapping_parse,
    mapping_for_headers,
    mapping_proposal,
)
from imports.flat_layout import PROFILE_KEY_COLUMNS, RESERVED_COLUMNS
from imports.formats import FileFormat
from imports.models import DocumentImport
from imports.preview import FlatFileSample, flat_file_sample
from imports.readers import FileError, ReaderOptions
from imports.uploads import StagedUpload

SAMPLE_ROWS = 3


@dataclass(frozen=True)
class MappingStep:
    form: ColumnMappingForm | None = None  # the step to show, or None: straight to the preview
    saved_mapping: dict | None = None  # the saved mapping the preview uses
    problem: str = ""  # the file cannot be read


def _saved_mapping(document_import: DocumentImport | None):
    try:
        return column_mapping_parse(document_import.column_mapping if document_import else None)
    except MappingError:  # stored through the same check: only a hand-edited row
        return None


def _sample(staged: StagedUpload, file_format: FileFormat, encoding: str) -> FlatFileSample:
    return flat_file_sample(
        path=staged.path,
        file_format=file_format,
        options=ReaderOptions(encoding=encoding),
        rows=SAMPLE_ROWS,
    )


def mapping_step_for_upload(
    *,
    staged: StagedUpload,
    file_format: FileFormat,
    encoding: str,
    document_import: DocumentImport | None,
) -> MappingStep:
    """Whether a freshly staged upload needs the mapping step, and its form if so."""
    if not file_format.is_flat:
        return MappingStep()
    saved = _saved_mapping(document_import)
    try:
        sample = _sample(staged, file_format, encoding)
    except FileError as problem:
        return MappingStep(
            problem=unreadable_file_problem(
                file_format.value, encoding, problem.message, problem.code
            )
        )
    try:
        applied = mapping_for_headers(headers=sample.headers, saved=saved)
    except MappingNeeded:
        pass
    else:
        return MappingStep(saved_mapping=applied.as_json() if applied else None)
    form = ColumnMappingForm(
        initial={"token": staged.token},
        headers=sample.headers,
        proposal=mapping_proposal(sample.headers, saved),
        samples=sample.values,
    )
    return MappingStep(form=form)


def mapping_form_for_upload(
    *, staged: StagedUpload, options: dict[str, Any], data=None
) -> ColumnMappingForm | None:
    """The step again: bound to the staff's answer, or proposing the mapping last chosen."""
    try:
        sample = _sample(staged, FileFormat(options["file_format"]), options["encoding"])
    except FileError:
        return None
    chosen = column_mapping_parse(options.get("column_mapping"))
    return ColumnMappingForm(
        data,
        initial={"token": staged.token},
        headers=sample.headers,
        proposal=mapping_proposal(sample.headers, chosen),
        samples=sample.values,
    )


def mapping_step_context(
    form: ColumnMappingForm, staged: StagedUpload, options: dict[str, Any]
) -> dict[str, Any]:
    return {
        "mapping_form": form,
        "staged": staged,
        "file_format": FileFormat(options["file_format"]),
        "upload_options": upload_options_view(options),
        "mapping_targets": sorted(RESERVED_COLUMNS | PROFILE_KEY_COLUMNS),
        "mapping_transforms": TRANSFORM_LABELS,
    }
