"""Streaming readers: an import file becomes a stream of commands (SPEC.md §2, §3).

One module per format (`ndjson`, `json_array`, `csv_reader`, `xlsx`), the shared
text handling in `text`, the interface in `base` (its docstring tells how
reading, resuming and counting go). `open_reader` picks the reader of a format.
"""

from __future__ import annotations

import os

from imports.formats import FileFormat, detect_format
from imports.readers.base import FileError, ImportRecord, Reader, ReaderOptions
from imports.readers.csv_reader import CsvReader
from imports.readers.json_array import JsonArrayReader
from imports.readers.ndjson import NdjsonReader
from imports.readers.xlsx import XlsxReader

__all__ = [
    "FileError",
    "FileFormat",
    "ImportRecord",
    "Reader",
    "ReaderOptions",
    "detect_format",
    "open_reader",
]

_READER_OF_FORMAT: dict[FileFormat, type[Reader]] = {
    FileFormat.NDJSON: NdjsonReader,
    FileFormat.JSON: JsonArrayReader,
    FileFormat.CSV: CsvReader,
    FileFormat.XLSX: XlsxReader,
}


def open_reader(
    path: str | os.PathLike[str], fmt: FileFormat, options: ReaderOptions | None = None
) -> Reader:
    """The reader of `fmt`; without options, the defaults and the caps of the settings."""
    return _READER_OF_FORMAT[FileFormat(fmt)](os.fspath(path), options or ReaderOptions())
