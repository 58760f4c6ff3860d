"""Hand-written XLSX workbooks: the sheet and shared-strings XML streamed in, so a hostile
workbook (a row of a million cells, millions of shared strings, a DTD) is built at test time
without holding it in memory. The other parts come from a workbook openpyxl writes."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from pathlib import Path

import openpyxl

SHEET_PART = "xl/worksheets/sheet1.xml"
STRINGS_PART = "xl/sharedStrings.xml"
_MAIN = b"http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_STRINGS_TYPE = b"application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"


def _template() -> dict[str, bytes]:
    workbook = openpyxl.Workbook()
    workbook.active.append(["x"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    with zipfile.ZipFile(buffer) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def inline_cell(text: str, ref: str = "") -> bytes:
    r = f' r="{ref}"' if ref else ""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;")
    return f'<c{r} t="inlineStr"><is><t>{escaped}</t></is></c>'.encode()


def number_cell(value: int | float, ref: str = "") -> bytes:
    r = f' r="{ref}"' if ref else ""
    return f"<c{r}><v>{value}</v></c>".encode()


def row(cells: Iterable[bytes], number: int | None = None) -> Iterable[bytes]:
    yield b"<row>" if number is None else f'<row r="{number}">'.encode()
    yield from cells
    yield b"</row>"


def write_workbook(
    path: Path,
    sheet_data: Iterable[bytes],
    *,
    shared_strings: Iterable[bytes] | None = None,
    prolog: bytes = b"",
    compression: int = zipfile.ZIP_DEFLATED,
) -> Path:
    """A workbook whose first sheet's <sheetData> is `sheet_data` (XML pieces) and whose
    shared-strings part holds the `<si>` pieces of `shared_strings`; `prolog` goes before the
    sheet's root element (a DTD, say)."""
    parts = _template()
    if shared_strings is not None and STRINGS_PART not in parts:
        parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(
            b"</Types>",
            b'<Override PartName="/xl/sharedStrings.xml" ContentType="' + _STRINGS_TYPE + b'"/>'
            b"</Types>",
        )
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, content in parts.items():
            if name not in (SHEET_PART, STRINGS_PART):
                archive.writestr(name, content)
        with archive.open(SHEET_PART, "w", force_zip64=True) as sheet:
            sheet.write(b'<?xml version="1.0" encoding="UTF-8"?>' + prolog)
            sheet.write(b'<worksheet xmlns="' + _MAIN + b'"><sheetData>')
            for piece in sheet_data:
                sheet.write(piece)
            sheet.write(b"</sheetData></worksheet>")
        with archive.open(STRINGS_PART, "w", force_zip64=True) as strings:
            strings.write(b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="' + _MAIN + b'">')
            for piece in shared_strings or ():
                strings.write(piece)
            strings.write(b"</sst>")
    return path


def rows_of(values: list[list[str | int]]) -> Iterable[bytes]:
    """Ordinary rows, each cell with its reference, strings inline."""
    from openpyxl.utils import get_column_letter

    for number, cells in enumerate(values, start=1):
        yield from row(
            (
                inline_cell(value, f"{get_column_letter(i)}{number}")
                if isinstance(value, str)
                else number_cell(value, f"{get_column_letter(i)}{number}")
                for i, value in enumerate(cells, start=1)
            ),
            number,
        )
