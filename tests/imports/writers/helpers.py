"""Writing files and reading them back, for the writer tests."""

from __future__ import annotations

import io
import os
import tempfile
from contextlib import contextmanager

import openpyxl

from imports.formats import FileFormat
from imports.readers import ReaderOptions, open_reader
from imports.writers import write_failed_lines, write_flat_export
from profiles.commands import LineError


@contextmanager
def file_holding(data: bytes, suffix: str):
    handle, name = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        yield name
    finally:
        os.unlink(name)


def read_bytes(data: bytes, fmt: FileFormat, **options) -> list:
    with file_holding(data, "." + fmt.lower()) as path:
        return list(open_reader(path, fmt, ReaderOptions(**options)))


def failed_file(records: list, fmt: FileFormat, **kwargs) -> bytes:
    out = io.BytesIO()
    write_failed_lines([r for r in records if isinstance(r, LineError)], fmt, out, **kwargs)
    return out.getvalue()


def typed(value):
    """The value with every scalar tagged by its type: 1, 1.0 and True differ."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


def as_commands(records) -> list[tuple]:
    return [(r.operation, r.identifier, typed(r.user_profile), r.update_strategy) for r in records]


def export_flat(items, fmt: FileFormat) -> bytes:
    out = io.BytesIO()
    write_flat_export(items, fmt, out)
    return out.getvalue()


def xlsx_rows(data: bytes) -> list[list]:
    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    rows = [[cell.value for cell in row] for row in workbook.worksheets[0].iter_rows()]
    workbook.close()
    return rows
