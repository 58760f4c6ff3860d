"""The format table: detection by extension then MIME type, and the places that read it."""

from __future__ import annotations

import pytest

from imports.formats import (
    FORMATS,
    FileFormat,
    detect_format,
    extensions_help,
    format_of_document_mime_type,
)
from imports.models import DocumentImport
from imports.resources import format_class_for


@pytest.mark.parametrize(
    ("filename", "content_type", "expected"),
    [
        ("crm.ndjson", None, FileFormat.NDJSON),
        ("crm.JSONL", None, FileFormat.NDJSON),
        ("crm.json", None, FileFormat.JSON),
        ("crm.csv", None, FileFormat.CSV),
        ("crm.tsv", None, FileFormat.CSV),
        ("crm.txt", None, FileFormat.CSV),
        ("crm.xlsx", None, FileFormat.XLSX),
        ("upload", "application/x-ndjson", FileFormat.NDJSON),
        ("upload", "application/json; charset=utf-8", FileFormat.JSON),
        ("upload", "text/csv", FileFormat.CSV),
        (
            "upload",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            FileFormat.XLSX,
        ),
        ("crm.csv", "application/json", FileFormat.CSV),
        ("crm.pdf", "application/pdf", None),
        ("upload", None, None),
    ],
)
def test_detect_format_by_extension_then_mime(filename, content_type, expected):
    assert detect_format(filename, content_type) == expected


@pytest.mark.parametrize("spec", FORMATS.values(), ids=lambda spec: spec.file_format.value)
def test_every_extension_and_mime_type_of_the_table_detects_its_format(spec):
    for extension in spec.extensions:
        assert detect_format(f"crm.{extension}") is spec.file_format
    for mime_type in (*spec.mime_types, *spec.upload_content_types):
        assert detect_format("upload", mime_type) is spec.file_format


@pytest.mark.parametrize("spec", FORMATS.values(), ids=lambda spec: spec.file_format.value)
def test_document_imports_and_admin_formats_read_the_table(spec):
    mime_type = DocumentImport.MimeType(spec.document_mime_type)
    assert mime_type.label == f"{spec.label} ({spec.content_type})"
    assert format_of_document_mime_type(mime_type) is spec.file_format
    admin_format = format_class_for(spec.file_format)()
    assert admin_format.get_extension() == spec.extension
    assert admin_format.get_content_type() == spec.content_type


def test_the_table_names_each_extension_once():
    extensions = [ext for spec in FORMATS.values() for ext in spec.extensions]
    assert len(extensions) == len(set(extensions))
    assert extensions_help([FileFormat.CSV, FileFormat.NDJSON]) == (
        ".csv .tsv .txt → CSV, .ndjson .jsonl → NDJSON."
    )
