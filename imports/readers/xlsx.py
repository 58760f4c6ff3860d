"""XLSX: the SPEC §3 flat layout in a workbook; line = sheet row number, the header is row 1.

Rules chosen here (not in the SPEC):

- First sheet, header on row 1. Integral floats become ints, dates ISO text (a
  date alone when the cell shows no time), a formula error (#DIV/0!) is an
  INVALID_CELL line error. Rows end at their last filled cell, so fewer cells
  than header columns is fine.
- The zip is refused (FILE_TOO_LARGE) when its parts inflate past
  `max_xlsx_uncompressed_bytes` or one part over 1 MB is compressed more than
  `max_xlsx_compression_ratio` times; XML is parsed through defusedxml. The shared
  strings, the header's width and each row's cells are bounded before openpyxl opens
  the workbook (`imports.readers.xlsx_scan`).
- The number of records is not counted before applying (`count_records` is None):
  it is known once the sheet is read.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Iterator
from typing import Any

from imports.flat_layout import cell_text, column_label
from imports.formats import FileFormat
from imports.readers.base import FileError, ImportRecord, Reader, ReaderOptions
from imports.readers.flat_rows import columns_of_header, identifier_label_of_row, row_to_record
from imports.readers.xlsx_scan import unreadable_workbook, xlsx_bounds_check
from profiles.commands import LineError


def normalise_typed_cell(value: Any, number_format: str = "General") -> Any:
    """An XLSX value as JSON-able data: integral floats become ints, dates ISO text."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dt.datetime):
        date_only = value.time() == dt.time(0) and not re.search(r"[hs]", number_format, re.I)
        return value.date().isoformat() if date_only else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    return value


def check_xlsx_zip(path: str, options: ReaderOptions) -> None:
    """Refuse a zip bomb before openpyxl inflates anything.

    zipfile never inflates an entry past its declared size, so the declared
    sizes are a real bound.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        raise FileError(
            "INVALID_XLSX", "the file is not an XLSX workbook (not a zip archive)"
        ) from None
    total = sum(entry.file_size for entry in entries)
    if total > options.max_xlsx_uncompressed_bytes:
        raise FileError(
            "FILE_TOO_LARGE",
            f"the workbook inflates to {total} bytes, over the {options.max_xlsx_uncompressed_bytes} limit",
        )
    for entry in entries:
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > 1_000_000 and ratio > options.max_xlsx_compression_ratio:
            raise FileError(
                "FILE_TOO_LARGE",
                f"the workbook part {entry.filename!r} is compressed {ratio:.0f} times, "
                "which looks like a zip bomb",
            )


def _load_first_sheet(path: str) -> Any:
    import openpyxl

    if not openpyxl.DEFUSEDXML:
        # Without defusedxml openpyxl parses XML entities: refuse rather than risk it.
        raise FileError("XLSX_UNAVAILABLE", "reading XLSX needs the defusedxml package")
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as problem:  # openpyxl raises many kinds for a broken workbook
        raise unreadable_workbook(problem) from None
    if not workbook.worksheets:
        workbook.close()
        raise FileError("INVALID_XLSX", "the workbook has no sheet")
    return workbook


def _xlsx_cell_value(cell: Any) -> Any:
    if getattr(cell, "data_type", None) == "e":
        return _XlsxErrorValue(str(cell.value))
    return normalise_typed_cell(cell.value, getattr(cell, "number_format", "General") or "General")


class _XlsxErrorValue(str):
    """A formula error such as #DIV/0!: a line error, never a value."""


class XlsxReader(Reader):
    format = FileFormat.XLSX

    def __init__(self, path: str, options: ReaderOptions) -> None:
        super().__init__(path, options)
        check_xlsx_zip(path, options)
        xlsx_bounds_check(path, options)
        workbook = _load_first_sheet(path)
        try:
            first_row = next(workbook.worksheets[0].iter_rows(max_row=1), ())
            header = [_xlsx_cell_value(cell) for cell in first_row]
        except FileError:
            raise
        except Exception as problem:
            raise unreadable_workbook(problem) from None
        finally:
            workbook.close()
        if any(isinstance(value, _XlsxErrorValue) for value in header):
            raise FileError("INVALID_HEADER", "a header cell holds a formula error", line=1)
        self.columns = columns_of_header(
            (None if value is None else cell_text(value) for value in header),
            options.column_mapping,
            max_columns=options.max_columns,
        )
        self.headers = [column.header for column in self.columns]

    def iterate(
        self, *, after_line: int = 0, at_offset: int | None = None
    ) -> Iterator[ImportRecord]:
        if at_offset is not None:
            raise ValueError("XLSX cannot resume at a byte offset: use after_line")
        workbook = _load_first_sheet(self.path)
        first = max(after_line, 1) + 1
        try:
            rows = workbook.worksheets[0].iter_rows(min_row=first)
            for line, row in enumerate(self._rows(rows), start=first):
                record = self._record(row, line)
                if record is not None:
                    yield record
        finally:
            workbook.close()

    def _rows(self, rows: Iterator[Any]) -> Iterator[list[Any]]:
        try:
            for row in rows:
                yield [_xlsx_cell_value(cell) for cell in row]
        except FileError:
            raise
        except Exception as problem:
            raise unreadable_workbook(problem) from None

    def _record(self, values: list[Any], line: int) -> ImportRecord | None:
        for index, value in enumerate(values[: len(self.columns)]):
            if isinstance(value, _XlsxErrorValue) and self.columns[index].role != "ignored":
                header = self.columns[index].header
                return LineError(
                    line=line,
                    code="INVALID_CELL",
                    message=f"line {line}, {column_label(index, header)}: the cell holds the "
                    f"formula error {value}",
                    field=header,
                    identifier=identifier_label_of_row(self.columns, values),
                    raw={
                        column.header: values[i] if i < len(values) else None
                        for i, column in enumerate(self.columns)
                        if column.role != "annotation"
                    },
                )
        return row_to_record(self.columns, values, line=line, options=self.options, typed=True)
