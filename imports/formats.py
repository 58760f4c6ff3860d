"""The file formats of imports and exports, in one table (SPEC.md §4, docs/rules.md).

A format names:
- its file extensions: the first is the one written (exports, failed-lines files);
- the MIME types that name it on an upload: the first is the content type sent with a
  file of it, the others are only recognised;
- the content types the REST API accepts as an upload body for a document import of it;
- the document import's `mime_type` that runs it (`APPLICATION_X_NDJSON`, …) and how
  that choice is shown.

`detect_format` reads the extension first, then the MIME type: browsers send
`application/octet-stream` or guesses for `.ndjson`, so the name is the better witness.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum


class FileFormat(StrEnum):
    NDJSON = "NDJSON"
    JSON = "JSON"
    CSV = "CSV"
    XLSX = "XLSX"

    @property
    def is_flat(self) -> bool:
        """A file of rows under a header (SPEC §3), which a column mapping may map."""
        return self in (FileFormat.CSV, FileFormat.XLSX)


@dataclass(frozen=True)
class FormatSpec:
    file_format: FileFormat
    label: str  # how people call it: "JSON array", "Excel"
    extensions: tuple[str, ...]  # without the dot; the first is the one written
    mime_types: tuple[str, ...]  # the first is the content type sent
    upload_content_types: tuple[str, ...]  # accepted as an API upload body
    document_mime_type: str  # DocumentImport.mime_type

    @property
    def extension(self) -> str:
        return self.extensions[0]

    @property
    def content_type(self) -> str:
        return self.mime_types[0]

    @property
    def document_mime_choice(self) -> tuple[str, str]:
        """(value, label) of DocumentImport.MimeType."""
        return self.document_mime_type, f"{self.label} ({self.content_type})"


_XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

FORMATS: dict[FileFormat, FormatSpec] = {
    spec.file_format: spec
    for spec in (
        FormatSpec(
            file_format=FileFormat.NDJSON,
            label="NDJSON",
            extensions=("ndjson", "jsonl"),
            mime_types=(
                "application/x-ndjson",
                "application/ndjson",
                "application/jsonl",
                "application/x-jsonlines",
            ),
            upload_content_types=("application/x-ndjson", "application/ndjson"),
            document_mime_type="APPLICATION_X_NDJSON",
        ),
        FormatSpec(
            file_format=FileFormat.JSON,
            label="JSON array",
            extensions=("json",),
            mime_types=("application/json",),
            upload_content_types=("application/json",),
            document_mime_type="APPLICATION_JSON",
        ),
        FormatSpec(
            file_format=FileFormat.CSV,
            label="CSV",
            extensions=("csv", "tsv", "txt"),
            mime_types=("text/csv", "text/tab-separated-values"),
            upload_content_types=("text/csv",),
            document_mime_type="TEXT_CSV",
        ),
        FormatSpec(
            file_format=FileFormat.XLSX,
            label="Excel",
            extensions=("xlsx",),
            mime_types=(_XLSX_MIME,),
            upload_content_types=(_XLSX_MIME,),
            document_mime_type="APPLICATION_XLSX",
        ),
    )
}
_FORMAT_OF_EXTENSION = {
    ext: spec.file_format for spec in FORMATS.values() for ext in spec.extensions
}
_FORMAT_OF_MIME_TYPE = {
    mime: spec.file_format for spec in FORMATS.values() for mime in spec.mime_types
}
_FORMAT_OF_DOCUMENT_MIME_TYPE = {
    spec.document_mime_type: spec.file_format for spec in FORMATS.values()
}


def format_spec(file_format: FileFormat | str) -> FormatSpec:
    return FORMATS[FileFormat(file_format)]


def detect_format(filename: str, content_type: str | None = None) -> FileFormat | None:
    """The format named by the file's extension, else by its MIME type."""
    extension = os.path.splitext(filename or "")[1].lower()
    if extension[1:] in _FORMAT_OF_EXTENSION:
        return _FORMAT_OF_EXTENSION[extension[1:]]
    if content_type:
        mime = content_type.split(";", 1)[0].strip().lower()
        return _FORMAT_OF_MIME_TYPE.get(mime)
    return None


def format_of_document_mime_type(mime_type: str) -> FileFormat | None:
    """The format a document import's `mime_type` (APPLICATION_X_NDJSON, …) reads."""
    return _FORMAT_OF_DOCUMENT_MIME_TYPE.get(mime_type)


def extensions_help(file_formats: list[FileFormat]) -> str:
    """`.csv .tsv .txt → CSV, .xlsx → XLSX`: which names detection maps to which format."""
    parts = (
        " ".join(f".{ext}" for ext in FORMATS[fmt].extensions) + f" → {fmt.value}"
        for fmt in file_formats
    )
    return ", ".join(parts) + "."
