"""Writers: the failed-lines file (SPEC.md §4) and profile exports (SPEC.md §3).

Failed lines are written in the source format with `_line` and `_error` added
(first keys of an object; last two columns of a row), and the readers ignore
those two names, so the file can be fixed and uploaded again. A line that did
not parse as JSON is written back verbatim (it needs fixing anyway); a line
too long to keep is written as an object holding only `_line` and `_error`.
Cells are written back as they came: they are the client's own data.

Exports re-import to the same data. Flat exports (CSV/XLSX) use the import
layout with one column per leaf path:

- ints -> `:int`, floats -> `:float`, booleans -> `:bool`, strings -> no
  suffix; null, arrays, empty objects, and a path whose type differs across
  rows (or that is a value in one row and an object in another) -> `:json`
  holding the JSON text of the whole value at that path.
- A path whose keys cannot be spelled as `a.b.c` (a key holding `.`, `:`,
  brackets, quotes, outer spaces or control characters, an empty key, a key
  starting with a formula character, or a top-level key that is a command
  column such as `operation` or `_line`) gets a JSON-array header:
  `["my.key","x"]:int`. So any JSON object round-trips.
- Spreadsheet formula injection: a string cell never starts with
  `= + - @`, tab or CR. A string value that does (or is empty, blank, or holds
  CR or a control character, which a spreadsheet would mangle) puts its column
  under `:json`, where the cell is a JSON string literal such as `"=1+1"`:
  safe, since it starts with a quote, and exact on re-import, which a
  `'`-prefix would not be. Numbers may start with `-`: a cell that is only a
  number cannot carry a formula. Identifier cells (user_account_id,
  email_hash, user_agent_id) that start with a formula character or `'` get a
  leading `'`, which the reader drops (the spreadsheet "text" convention).
- XLSX cells keep their types (numbers, booleans); a number that openpyxl
  would round (it writes 16 significant digits) is written as text, which
  the `:int`/`:float` columns read back exactly. Identifiers holding control
  characters cannot go to XLSX (openpyxl refuses them).

- CSV cells are all quoted, so a `;` or `|` inside a cell cannot lead the
  reader's delimiter detection astray; XLSX text cells are always written as
  text (openpyxl would otherwise make "=..." a formula and "#N/A" an error).

An export item is a profile object as clients see it, identified by its own
`$compartment_id`/`$user_account_id`, or an `(identifier, profile)` pair,
which anonymous profiles need. Every key given is written (`$creation_ts`
included if the caller leaves it in: the import ignores it).

The flat layout depends on every row, so `write_flat_export` spools the
profiles to a temporary file on the first pass: memory stays flat.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO

from imports.flat_layout import RESERVED_COLUMNS
from imports.formats import FileFormat
from profiles.commands import (
    ANNOTATION_KEYS,
    AccountIdentifier,
    EmailIdentifier,
    Identifier,
    LineError,
    Operation,
    UserAgentIdentifier,
    identifier_fields,
)

ExportItem = Mapping[str, Any] | tuple[Identifier, Mapping[str, Any]]

XLSX_MAX_ROWS = 1_048_576
XLSX_MAX_COLUMNS = 16_384
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\r]")
_NOT_IN_PLAIN_KEY = re.compile(r'[.:\[\]"]')
_IDENTIFIER_ORDER = ("compartment_id", "user_account_id", "email_hash", "user_agent_id")


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


# --------------------------------------------------------------------------- failed lines


def write_failed_lines(
    errors: Iterable[LineError],
    fmt: FileFormat,
    out: BinaryIO,
    *,
    headers: list[str] | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> int:
    """Write the failed lines in the source format; returns how many were written.

    `headers` (CSV/XLSX) is the source header, `reader.headers`; without it the
    columns are gathered from the errors' rows.
    """
    fmt = FileFormat(fmt)
    if fmt in (FileFormat.NDJSON, FileFormat.JSON):
        return _write_failed_json(errors, out, as_array=fmt is FileFormat.JSON, encoding=encoding)
    errors = list(errors) if headers is None else errors
    columns = [h for h in (headers or _headers_of(errors)) if h not in ANNOTATION_KEYS]
    rows = (_failed_row(error, columns) for error in errors)
    header_row = [*columns, "_line", "_error"]
    if fmt is FileFormat.CSV:
        return _write_csv(header_row, rows, out, delimiter=delimiter, encoding=encoding)
    return _write_xlsx(header_row, rows, out)


def _headers_of(errors: Iterable[LineError]) -> list[str]:
    seen: dict[str, None] = {}
    for error in errors:
        if isinstance(error.raw, Mapping):
            seen.update(dict.fromkeys(error.raw))
    return list(seen)


def _failed_row(error: LineError, columns: list[str]) -> list[Any]:
    raw = error.raw if isinstance(error.raw, Mapping) else {}
    return [*(raw.get(column) for column in columns), error.line, error.message]


def _failed_json_record(error: LineError, encoding: str) -> bytes:
    if isinstance(error.raw, bytes):
        return error.raw  # undecodable: give back the very bytes
    if isinstance(error.raw, str):
        return error.raw.encode(encoding, errors="replace")
    body = error.raw if isinstance(error.raw, Mapping) else {}
    annotated = {"_line": error.line, "_error": error.message}
    annotated.update((key, value) for key, value in body.items() if key not in ANNOTATION_KEYS)
    # \u escapes keep any text writable in a one-byte source encoding.
    ascii_only = codecs.lookup(encoding).name not in ("utf-8", "utf-8-sig")
    text = json.dumps(annotated, ensure_ascii=ascii_only, separators=(",", ":"))
    return text.encode(encoding)


def _write_failed_json(
    errors: Iterable[LineError], out: BinaryIO, *, as_array: bool, encoding: str
) -> int:
    count = 0
    if as_array:
        out.write(b"[")
    for error in errors:
        if as_array:
            out.write(b",\n" if count else b"\n")
            out.write(_failed_json_record(error, encoding))
        else:
            out.write(_failed_json_record(error, encoding) + b"\n")
        count += 1
    if as_array:
        out.write(b"\n]\n")
    return count


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _write_csv(
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
            writer.writerow([_csv_text(value) for value in row])
            count += 1
        return count
    finally:
        text_out.flush()
        text_out.detach()  # leave the caller's stream open


def _write_xlsx(header_row: list[str], rows: Iterable[list[Any]], out: BinaryIO) -> int:
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


# --------------------------------------------------------------------------- export layout


def export_item(item: ExportItem) -> tuple[Identifier, Mapping[str, Any]]:
    """(identifier, profile); a bare profile is identified by its own account."""
    if isinstance(item, tuple):
        identifier, profile = item
        return identifier, profile
    account = item.get("$user_account_id")
    if account is None:
        raise ValueError(
            "an anonymous profile has no identifier of its own: pass (identifier, profile)"
        )
    compartment = item.get("$compartment_id")
    return AccountIdentifier(
        user_account_id=str(account),
        compartment_id=None if compartment is None else int(compartment),
    ), item


def is_plain_string(text: str) -> bool:
    """A string a no-suffix cell can hold safely and exactly (see the module docstring)."""
    return (
        text.strip() != ""
        and not text.startswith(FORMULA_PREFIXES)
        and not _CONTROL_CHARACTERS.search(text)
    )


def _is_plain_key(key: str) -> bool:
    return (
        key != ""
        and key == key.strip()
        and key.isprintable()
        and not _NOT_IN_PLAIN_KEY.search(key)
        and not key.startswith(FORMULA_PREFIXES)
    )


def _value_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str" if is_plain_string(value) else "json"
    return "json"  # null, arrays, empty objects


@dataclass
class _PathNode:
    kinds: set[str] = field(default_factory=set)  # kinds seen where this path is a leaf
    children: dict[str, _PathNode] = field(default_factory=dict)

    def observe(self, obj: Mapping[str, Any]) -> None:
        for key, value in obj.items():
            child = self.children.get(key)
            if child is None:
                child = self.children[key] = _PathNode()
            if isinstance(value, Mapping) and value:
                child.observe(value)
            else:
                child.kinds.add(_value_kind(value))


_SUFFIX_OF_KIND = {"int": "int", "float": "float", "bool": "bool", "str": None}


@dataclass(frozen=True)
class _ExportColumn:
    header: str
    kind: str  # "int" | "float" | "bool" | "str" | "json" | "command"
    path: tuple[str, ...] = ()
    command: str = ""


def _header_for(path: tuple[str, ...], suffix: str | None) -> str:
    dotted = ".".join(path)
    spellable = all(_is_plain_key(key) for key in path) and dotted not in RESERVED_COLUMNS
    name = dotted if spellable and dotted not in ANNOTATION_KEYS else _json_text(list(path))
    return f"{name}:{suffix}" if suffix else name


def _profile_columns(node: _PathNode, prefix: tuple[str, ...]) -> Iterator[_ExportColumn]:
    for key, child in node.children.items():
        path = (*prefix, key)
        if child.children and not child.kinds:
            yield from _profile_columns(child, path)
            continue
        kind = next(iter(child.kinds)) if len(child.kinds) == 1 and not child.children else "json"
        suffix = _SUFFIX_OF_KIND.get(kind, "json")
        if kind == "str" and path == ("$compartment_id",):
            suffix = "str"  # a bare $compartment_id column reads "1606" as 1606
        yield _ExportColumn(header=_header_for(path, suffix), kind=kind, path=path)


class _Missing:
    pass


_MISSING = _Missing()


def _value_at(profile: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = profile
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _identifier_cells(identifier: Identifier) -> dict[str, Any]:
    if isinstance(identifier, AccountIdentifier):
        cells: dict[str, Any] = {"user_account_id": _escaped_identifier(identifier.user_account_id)}
        if identifier.compartment_id is not None:
            cells["compartment_id"] = identifier.compartment_id
        return cells
    if isinstance(identifier, EmailIdentifier):
        return {"email_hash": _escaped_identifier(identifier.email_hash)}
    assert isinstance(identifier, UserAgentIdentifier)
    return {"user_agent_id": _escaped_identifier(identifier.user_agent_id)}


def _escaped_identifier(value: str) -> str:
    return "'" + value if value.startswith((*FORMULA_PREFIXES, "'")) else value


def _xlsx_number(value: int | float) -> int | float | str:
    """The number itself when openpyxl keeps it exact, else its exact text."""
    if isinstance(value, int):
        return value if abs(value) < 2**53 else str(value)
    negative_zero = value == 0 and math.copysign(1.0, value) < 0
    if negative_zero or float(f"{value:.16g}") != value:
        return repr(value)
    return value


class FlatLayout:
    """The columns of a flat export; `cells(item)` gives one row."""

    def __init__(self, identifier_columns: list[str], profile_columns: list[_ExportColumn]) -> None:
        self.columns = [
            _ExportColumn(header="operation", kind="command", command="operation"),
            _ExportColumn(header="update_strategy", kind="command", command="update_strategy"),
            *(
                _ExportColumn(header=name, kind="command", command=name)
                for name in identifier_columns
            ),
            *profile_columns,
        ]
        self.headers = [column.header for column in self.columns]

    def cells(self, item: ExportItem, *, typed: bool = False) -> list[Any]:
        """Text cells ("" = empty) for CSV, or typed ones (None = empty) for XLSX."""
        identifier, profile = export_item(item)
        command_cells = {
            "operation": Operation.UPSERT.value,
            "update_strategy": "FORCE_REPLACE",
            **_identifier_cells(identifier),
        }
        row: list[Any] = []
        for column in self.columns:
            if column.kind == "command":
                value = command_cells.get(column.command)
            else:
                value = self._profile_cell(column, _value_at(profile, column.path), typed)
            row.append(value if typed else _csv_text(value))
        return row

    @staticmethod
    def _profile_cell(column: _ExportColumn, value: Any, typed: bool) -> Any:
        if value is _MISSING:
            return None
        if column.kind == "json":
            return _json_text(value)
        if column.kind != _value_kind(value):
            raise ValueError(f"profile does not fit the export layout at {column.header!r}")
        if typed and column.kind in ("int", "float"):
            return _xlsx_number(value)
        return value


def flat_layout(items: Iterable[ExportItem]) -> FlatLayout:
    """First pass: the columns every row needs (memory: one node per distinct path)."""
    root = _PathNode()
    used_identifiers: set[str] = set()
    for item in items:
        identifier, profile = export_item(item)
        used_identifiers.update(_identifier_cells(identifier))
        root.observe(profile)
    identifier_columns = [name for name in _IDENTIFIER_ORDER if name in used_identifiers]
    return FlatLayout(identifier_columns, list(_profile_columns(root, ())))


def profile_rows_to_flat(items: Iterable[ExportItem]) -> tuple[list[str], list[list[str]]]:
    """Headers and text rows, in memory: for small exports and tests."""
    materialised = list(items)
    layout = flat_layout(materialised)
    return layout.headers, [layout.cells(item) for item in materialised]


# --------------------------------------------------------------------------- export writers


def _spool(items: Iterable[ExportItem], spool: IO[bytes]) -> Iterator[ExportItem]:
    """Yield the items while saving them, so a second pass reads the same data."""
    for item in items:
        identifier, profile = export_item(item)
        spool.write(_json_text([_identifier_record(identifier), profile]).encode() + b"\n")
        yield identifier, profile


def _identifier_record(identifier: Identifier) -> list[Any]:
    if isinstance(identifier, AccountIdentifier):
        return ["account", identifier.user_account_id, identifier.compartment_id]
    if isinstance(identifier, EmailIdentifier):
        return ["email", identifier.email_hash]
    return ["agent", identifier.user_agent_id]


def _identifier_from_record(record: list[Any]) -> Identifier:
    if record[0] == "account":
        return AccountIdentifier(user_account_id=record[1], compartment_id=record[2])
    if record[0] == "email":
        return EmailIdentifier(email_hash=record[1])
    return UserAgentIdentifier(user_agent_id=record[1])


def _unspool(spool: IO[bytes]) -> Iterator[ExportItem]:
    spool.seek(0)
    for line in spool:
        identifier, profile = json.loads(line)
        yield _identifier_from_record(identifier), profile


def write_flat_export(
    items: Iterable[ExportItem], fmt: FileFormat, out: BinaryIO, *, delimiter: str = ","
) -> int:
    """Write a CSV or XLSX export that re-imports to the same profiles; returns the row count."""
    fmt = FileFormat(fmt)
    if fmt not in (FileFormat.CSV, FileFormat.XLSX):
        raise ValueError(f"{fmt} is not a flat format")
    with tempfile.TemporaryFile() as spool:
        layout = flat_layout(_spool(items, spool))
        typed = fmt is FileFormat.XLSX
        rows = (layout.cells(item, typed=typed) for item in _unspool(spool))
        if fmt is FileFormat.CSV:
            return _write_csv(layout.headers, rows, out, delimiter=delimiter)
        if len(layout.headers) > XLSX_MAX_COLUMNS:
            raise ValueError(f"an XLSX sheet holds at most {XLSX_MAX_COLUMNS} columns")
        return _write_xlsx(layout.headers, rows, out)


def write_ndjson_commands(items: Iterable[ExportItem], out: BinaryIO) -> int:
    """One FORCE_REPLACE UPSERT command per profile (SPEC §3); returns the count."""
    count = 0
    for item in items:
        identifier, profile = export_item(item)
        command = {
            "operation": Operation.UPSERT.value,
            "update_strategy": "FORCE_REPLACE",
            **identifier_fields(identifier),
            "user_profile": profile,
        }
        out.write(_json_text(command).encode("utf-8") + b"\n")
        count += 1
    return count
