"""Rows to a CSV or XLSX file, for the failed-lines file and the flat export.

- CSV cells are all quoted, so a `;` or `|` inside a cell cannot lead the
  reader's delimiter detection astray. A cell value that is not text is written
  as the readers read it back: booleans true/false, floats exactly (`repr`),
  None as an empty cell. Characters the encoding cannot hold become `?`.
- XLSX text cells are always written as text (openpyxl would otherwise make
  "=..." a formula and "#N/A" an error); other cells keep their types. A sheet
  holds at most 1,048,576 rows and 16,384 columns.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any, BinaryIO

XLSX_MAX_ROWS = 1_048_576
XLSX_MAX_COLUMNS = 16_384


def csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_csv(
    header_row: list[str],
    rows: Iterable[list[Any]],
    out: BinaryIO,
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> int:
    text_out = io.TextIOWrapper(
        out, encoding=encoding, errors="replace", newline="", write_through=True
    )
    try:
        # Every cell quoted: a `;` or `|` inside a cell can then never make the
        # reader's delimiter sniffing pick it over the real delimiter.
        writer = csv.writer(
            text_out, delimiter=delimiter, lineterminator="\r\n", quoting=csv.QUOTE_ALL
        )
        writer.writerow(header_row)
        count = 0
        for row in rows:
            writer.writerow([csv_text(value) for value in row])
            count += 1
        return count
    finally:
        text_out.flush()
        text_out.detach()  # leave the caller's stream open


def write_xlsx(header_row: list[str], rows: Iterable[list[Any]], out: BinaryIO) -> int:
    import openpyxl
    from openpyxl.cell import WriteOnlyCell

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet()

    def cell(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        # openpyxl would turn "=..." into a formula and "#N/A" into an error.
        text_cell = WriteOnlyCell(sheet, value=value)
        text_cell.data_type = "s"
        return text_cell

    sheet.append([cell(value) for value in header_row])
    count = 0
    for row in rows:
        count += 1
        if count + 1 > XLSX_MAX_ROWS:
            raise ValueError(f"an XLSX sheet holds at most {XLSX_MAX_ROWS} rows")
        sheet.append([cell(value) for value in row])
    workbook.save(out)
    return count
