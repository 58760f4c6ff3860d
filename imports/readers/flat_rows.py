"""A CSV/XLSX row becomes a command: the reading side of the SPEC §3 flat layout.

The header is parsed once (`columns_of_header`); each row then goes through
`row_to_record`. Rules chosen here (not in the SPEC):

- An empty row is skipped (still counted). A row with more filled cells than
  header columns, or (CSV) fewer cells, is WRONG_CELL_COUNT.
- An empty cell means "not in this line", unless the import says it is an empty
  string (`empty_cell_is_empty_string`, for untyped and `:str` profile columns).
- A DELETE row with no profile cell gets no user_profile (it deletes the
  account's own profile, SPEC §2), an UPSERT row gets `{}`.
- force_replace / merge_objects cells are read as booleans (true/false/1/0/
  yes/no), since the CSV text "false" must not count as true downstream.
- Every text cell goes through `flat_layout.formula_unescape` first: the `'`
  that the exporter and the failed-lines file put before a formula start is
  taken off (the spreadsheet convention for "text"), so those files read back
  to the very values. The row's `raw` holds the cells so unescaped.
- A `$compartment_id` column without suffix reads "1606" and 1606 alike as the
  integer; a `$user_account_id` column without suffix reads its cell as text.
- A NUL character in a cell is a line error (NUL_CHARACTER).
- With a column mapping (`imports.column_mapping`) each column keeps its source header (in
  messages, `field` and the failed-lines file) and reads its cells as its target's; a
  mapping's `null` makes an ignored column (kept in the source record only), and a
  transform applies to a non-empty cell before anything else reads it.
- Bounds: a header of more than `max_columns` cells fails the file before
  anything is written (TOO_MANY_COLUMNS, line 1); a row of more than
  `max_cells_per_row` cells is a line error (TOO_MANY_CELLS) that keeps none of
  its cells.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from imports.column_mapping import ColumnMapping, mapped_columns, transform_cell
from imports.flat_layout import (
    BOOL,
    BOOLEAN_COLUMNS,
    INTEGER,
    CellError,
    FlatColumn,
    HeaderError,
    cell_text,
    codec_for,
    column_label,
    formula_unescape,
    parse_header,
)
from imports.readers.base import FileError, ImportRecord, ReaderOptions
from profiles.commands import LineError, Operation, command_from_mapping, identifier_label_of
from profiles.wording import count_noun


def columns_of_header(
    raw_headers: Iterable[object], mapping: ColumnMapping | None = None, *, max_columns: int
) -> list[FlatColumn]:
    """The header row's columns, through the document import's column mapping when it has one;
    a header that cannot be read (or that the mapping does not name) fails the file (line 1)."""
    raw_headers = list(raw_headers)
    if len(raw_headers) > max_columns:
        raise too_many_columns(len(raw_headers), max_columns)
    try:
        return (
            parse_header(raw_headers) if mapping is None else mapped_columns(raw_headers, mapping)
        )
    except HeaderError as problem:
        raise FileError(problem.code, problem.message, line=1) from None


def too_many_columns(count: int, max_columns: int) -> FileError:
    return FileError(
        "TOO_MANY_COLUMNS",
        f"line 1: the header has {count} columns, over the limit of {max_columns} "
        "(IMPORT_MAX_COLUMNS)",
        line=1,
    )


def too_many_cells(line: int, count: int, max_cells: int) -> LineError:
    return LineError(
        line=line,
        code="TOO_MANY_CELLS",
        message=f"line {line}: the row has {count} cells, over the limit of {max_cells} "
        "(IMPORT_MAX_CELLS_PER_ROW)",
    )


def _set_path(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value


@dataclass(frozen=True)
class _RowCell:
    column: FlatColumn
    index: int
    value: Any  # str for CSV; normalised cell value for XLSX; None when empty


def _is_empty(value: Any) -> bool:
    return value is None or value == ""


class _RowProblem(Exception):
    def __init__(self, code: str, cell: _RowCell, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.cell = cell
        self.detail = detail


def row_to_record(
    columns: list[FlatColumn],
    values: list[Any],
    *,
    line: int,
    options: ReaderOptions,
    typed: bool,
) -> ImportRecord | None:
    """One CSV/XLSX row -> command, line error, or None for an empty row."""
    if len(values) > options.max_cells_per_row:
        return too_many_cells(line, len(values), options.max_cells_per_row)
    if all(_is_empty(value) for value in values):
        return None
    cells = _row_cells(columns, values)
    raw = {cell.column.header: cell.value for cell in cells if cell.column.role != "annotation"}
    count_problem = _cell_count_problem(columns, values, line, typed)
    if count_problem is not None:
        return replace(count_problem, raw=raw)
    try:
        mapping = _mapping_from_cells(cells, options)
    except _RowProblem as problem:
        header = problem.cell.column.header
        return LineError(
            line=line,
            code=problem.code,
            message=f"line {line}, {column_label(problem.cell.index, header)}: {problem.detail}",
            field=header,
            identifier=identifier_label_of_row(columns, values),
            raw=raw,
        )
    return command_from_mapping(mapping, line=line, default_operation=Operation.UPSERT, raw=raw)


def _row_cells(columns: list[FlatColumn], values: list[Any]) -> list[_RowCell]:
    """The row's cells under their columns, a `'` of `formula_escape` taken off."""
    count = len(values)
    cells = []
    for index, column in enumerate(columns):
        value = values[index] if index < count else None
        if value.__class__ is str and value[:1] == "'":
            value = formula_unescape(value)
        cells.append(_RowCell(column, index, value))
    return cells


def identifier_label_of_row(columns: list[FlatColumn], values: list[Any]) -> str:
    """The row's identifier as its line error names it: a mapped cell after its transform, so
    an e-mail column hashed by `sha256_email` is named by its hash, never its clear address."""
    identifier_cells = {
        column.name: cell_text(
            transform_cell(column.transform, value) if column.transform else value
        )
        for column, value in zip(columns, values, strict=False)
        if column.role == "command" and not _is_empty(value)
    }
    return identifier_label_of(identifier_cells)


def _cell_count_problem(
    columns: list[FlatColumn], values: list[Any], line: int, typed: bool
) -> LineError | None:
    extra = values[len(columns) :]
    too_few = len(values) < len(columns) and not typed  # XLSX rows end at the last filled cell
    if too_few or any(not _is_empty(value) for value in extra):
        return LineError(
            line=line,
            code="WRONG_CELL_COUNT",
            message=f"line {line}: {count_noun(len(values), 'cell')} for "
            f"{count_noun(len(columns), 'header column')}",
        )
    return None


def _mapping_from_cells(cells: list[_RowCell], options: ReaderOptions) -> dict[str, Any]:
    mapping: dict[str, Any] = {}
    profile: dict[str, Any] = {}
    for cell in cells:
        if cell.column.role in ("annotation", "ignored"):
            continue
        if isinstance(cell.value, str) and "\x00" in cell.value:
            raise _RowProblem("NUL_CHARACTER", cell, "contains a NUL character")
        if cell.column.transform and not _is_empty(cell.value):
            cell = replace(cell, value=transform_cell(cell.column.transform, cell.value))
        if _is_empty(cell.value):
            # CSV gives an empty cell as "", XLSX as None (openpyxl: the cell holds nothing).
            if _keeps_empty_string(cell.column, options):
                _set_path(profile, cell.column.path, "")
            continue
        if cell.column.role == "command":
            mapping[cell.column.name] = _command_cell_value(cell, options)
        else:
            _set_path(profile, cell.column.path, _profile_cell_value(cell, options))
    operation = mapping.get("operation")
    is_delete = isinstance(operation, str) and operation.strip().upper() == Operation.DELETE
    # DELETE without profile cells deletes the account's own profile (SPEC §2).
    mapping["user_profile"] = None if is_delete and not profile else profile
    return mapping


def _keeps_empty_string(column: FlatColumn, options: ReaderOptions) -> bool:
    return (
        options.empty_cell_is_empty_string
        and column.role == "profile"
        and column.suffix in (None, "str")
    )


def _command_cell_value(cell: _RowCell, options: ReaderOptions) -> Any:
    name, value = cell.column.name, cell.value
    if name in BOOLEAN_COLUMNS:
        if isinstance(value, bool):
            return value
        try:
            return BOOL.clean(cell_text(value), max_depth=options.max_depth)
        except CellError as problem:
            raise _RowProblem("INVALID_CELL", cell, str(problem)) from None
    return cell_text(value)


def _profile_cell_value(cell: _RowCell, options: ReaderOptions) -> Any:
    column, value = cell.column, cell.value
    try:
        if column.suffix is None and column.path == ("$compartment_id",):
            text = cell_text(value).strip()
            # "1606" and 1606 both name compartment 1606; render the integer.
            return int(text) if INTEGER.fullmatch(text) and len(text) < 20 else value
        if column.suffix is None and column.path == ("$user_account_id",):
            return cell_text(value)
        return codec_for(column.suffix).clean(value, max_depth=options.max_depth)
    except CellError as problem:
        raise _RowProblem(problem.code, cell, str(problem)) from None
