"""The bounds of an XLSX workbook, checked by streaming its XML before openpyxl loads it.

openpyxl loads the whole shared-strings table when it opens a workbook, and builds each row
whole (every cell, and the XML element of every cell) before handing it over: a table of
4,000,000 strings or a row of 1,000,000 cells without `r=` takes the worker past a gigabyte.
So `xlsx_bounds_check` reads the parts with expat, which keeps nothing but a counter, and
refuses the file (a FileError, before any line is applied) when:

- the shared-strings part inflates past `max_xlsx_shared_strings_bytes` or holds more than
  `max_xlsx_shared_strings` strings (TOO_MANY_SHARED_STRINGS);
- the header row of the first sheet has more than `max_columns` cells (TOO_MANY_COLUMNS);
- a row of the first sheet has more than `max_cells_per_row` cells (TOO_MANY_CELLS, naming
  the row): openpyxl would build it whole, so it cannot be one line error among others;
- a part holds a DTD (billion laughs, external entities): INVALID_XLSX.

The parts are found the way openpyxl finds them (the content types, the workbook's
relations), so a renamed part is checked too. Rows are numbered by `r=` when given, else one
past the previous row, as openpyxl does.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from xml.parsers import expat

from imports.readers.base import FileError, ReaderOptions

_READ_BLOCK = 1 << 16


def _local(name: str) -> str:
    return name.rpartition(" ")[2]


def _forbid_dtd(*_args: object) -> None:
    raise FileError(
        "INVALID_XLSX",
        "the workbook holds forbidden XML (a DTD or entity declaration): refused for safety",
    )


def _stream_elements(
    archive: zipfile.ZipFile, part: str, on_start: Callable[[str, dict[str, str]], None]
) -> None:
    """Call `on_start(local name, attributes)` for each element of the part, keeping nothing."""
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartDoctypeDeclHandler = _forbid_dtd
    parser.EntityDeclHandler = _forbid_dtd
    parser.StartElementHandler = lambda name, attributes: on_start(_local(name), attributes)
    try:
        with archive.open(part) as stream:
            while block := stream.read(_READ_BLOCK):
                parser.Parse(block, False)
            parser.Parse(b"", True)
    except expat.ExpatError as problem:
        raise FileError(
            "INVALID_XLSX", f"the workbook part {part!r} is not XML: {problem}"
        ) from None


def unreadable_workbook(problem: BaseException) -> FileError:
    """The FileError of a workbook openpyxl cannot read: forbidden XML said as such."""
    from defusedxml import DefusedXmlException

    cause: BaseException | None = problem
    while cause is not None:
        if isinstance(cause, DefusedXmlException):
            return FileError(
                "INVALID_XLSX",
                "the workbook holds forbidden XML (a DTD or entity declaration): refused for safety",
            )
        cause = cause.__cause__ or cause.__context__
    return FileError("INVALID_XLSX", f"the workbook cannot be read: {problem}")


def _parts(path: str) -> tuple[str | None, str | None]:
    """The shared-strings part and the first worksheet part, as openpyxl finds them."""
    from openpyxl.reader.excel import ExcelReader
    from openpyxl.xml.constants import SHARED_STRINGS

    reader = ExcelReader(path, read_only=True, data_only=True)
    try:
        reader.read_manifest()
        strings = reader.package.find(SHARED_STRINGS)
        reader.read_workbook()
        names = set(reader.archive.namelist())
        sheet = next(
            (
                rel.target
                for _sheet, rel in reader.parser.find_sheets()
                if "chartsheet" not in rel.Type and rel.target in names
            ),
            None,
        )
    finally:
        reader.archive.close()
    return (strings.PartName[1:] if strings is not None else None), sheet


def _check_shared_strings(archive: zipfile.ZipFile, part: str, options: ReaderOptions) -> None:
    size = archive.getinfo(part).file_size
    if size > options.max_xlsx_shared_strings_bytes:
        raise FileError(
            "TOO_MANY_SHARED_STRINGS",
            f"the workbook's shared strings inflate to {size} bytes, over the limit of "
            f"{options.max_xlsx_shared_strings_bytes} (IMPORT_XLSX_MAX_SHARED_STRINGS_BYTES)",
        )
    count = 0

    def on_start(name: str, _attributes: dict[str, str]) -> None:
        nonlocal count
        if name == "si":
            count += 1
            if count > options.max_xlsx_shared_strings:
                raise FileError(
                    "TOO_MANY_SHARED_STRINGS",
                    f"the workbook holds more than {options.max_xlsx_shared_strings} shared "
                    "strings (IMPORT_XLSX_MAX_SHARED_STRINGS)",
                )

    _stream_elements(archive, part, on_start)


def _check_rows(archive: zipfile.ZipFile, part: str, options: ReaderOptions) -> None:
    row, cells = 0, 0

    def on_start(name: str, attributes: dict[str, str]) -> None:
        nonlocal row, cells
        if name == "row":
            given = attributes.get("r", "")
            row = int(given) if given.isdigit() else row + 1
            cells = 0
        elif name == "c":
            cells += 1
            if row == 1 and cells > options.max_columns:
                raise FileError(
                    "TOO_MANY_COLUMNS",
                    f"line 1: the header has more than {options.max_columns} columns "
                    "(IMPORT_MAX_COLUMNS)",
                    line=1,
                )
            if cells > options.max_cells_per_row:
                raise FileError(
                    "TOO_MANY_CELLS",
                    f"line {row}: the row has more than {options.max_cells_per_row} cells "
                    "(IMPORT_MAX_CELLS_PER_ROW): the workbook is refused before any line is "
                    "applied",
                    line=row,
                )

    _stream_elements(archive, part, on_start)


def xlsx_bounds_check(path: str, options: ReaderOptions) -> None:
    """Refuse a workbook past the caps of the module docstring, before openpyxl opens it."""
    try:
        strings, sheet = _parts(path)
    except FileError:
        raise
    except Exception as problem:  # openpyxl raises many kinds for a broken package
        raise unreadable_workbook(problem) from None
    with zipfile.ZipFile(path) as archive:
        if strings is not None and strings in archive.namelist():
            _check_shared_strings(archive, strings, options)
        if sheet is not None:
            _check_rows(archive, sheet, options)
