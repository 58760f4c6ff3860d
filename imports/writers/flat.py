"""Flat exports (CSV, XLSX) in the SPEC §3 layout, so an export re-imports to the same data.

The headers and cells are those of `imports.flat_layout` (its docstring has the
header spelling, the codecs and the formula rules); here is what to write:

- Command columns first: `operation` (UPSERT), `update_strategy`
  (FORCE_REPLACE), then the identifier columns the items use, in the order
  compartment_id, user_account_id, email_hash, user_agent_id.
- One column per leaf path of the profiles, in the order paths are first seen:
  ints -> `:int`, floats -> `:float`, booleans -> `:bool`, plain strings -> no
  suffix; null, arrays, empty objects, strings that are not plain, and a path
  whose type differs across rows (or that is a value in one row and an object in
  another) -> `:json` holding the JSON text of the whole value at that path. A
  `$compartment_id` holding a string gets `:str`, since a bare `$compartment_id`
  column reads "1606" as 1606.
- Identifier cells (user_account_id, email_hash, user_agent_id) go through
  `flat_layout.formula_escape` (a leading `'` before a formula start, which the
  reader drops: the spreadsheet "text" convention). Identifiers holding control characters cannot
  go to XLSX (openpyxl refuses them).
- XLSX cells keep their types (numbers, booleans); CSV cells are text.

The flat layout depends on every row, so `write_flat_export` spools the
profiles to a temporary file on the first pass: memory stays flat.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO

from imports.flat_layout import (
    JSON,
    STR,
    UNTYPED,
    CellCodec,
    codec_of_value,
    formula_escape,
    render_header,
)
from imports.formats import FileFormat
from imports.writers.items import ExportItem, export_item
from imports.writers.sheets import XLSX_MAX_COLUMNS, csv_text, write_csv, write_xlsx
from profiles.commands import (
    AccountIdentifier,
    EmailIdentifier,
    Identifier,
    Operation,
    UserAgentIdentifier,
)
from profiles.strict_json import compact_json

_IDENTIFIER_ORDER = ("compartment_id", "user_account_id", "email_hash", "user_agent_id")


@dataclass
class _PathNode:
    kinds: set[CellCodec] = field(default_factory=set)  # what the values seen as a leaf need
    children: dict[str, _PathNode] = field(default_factory=dict)

    def observe(self, obj: Mapping[str, Any]) -> None:
        for key, value in obj.items():
            child = self.children.get(key)
            if child is None:
                child = self.children[key] = _PathNode()
            if isinstance(value, Mapping) and value:
                child.observe(value)
            else:
                child.kinds.add(codec_of_value(value))


@dataclass(frozen=True)
class _ExportColumn:
    header: str
    kind: CellCodec | None = None  # the codec every value of the column needs; None: command
    codec: CellCodec | None = None  # the codec of the header's suffix, which writes the cells
    path: tuple[str, ...] = ()
    command: str = ""


def _profile_columns(node: _PathNode, prefix: tuple[str, ...]) -> Iterator[_ExportColumn]:
    for key, child in node.children.items():
        path = (*prefix, key)
        if child.children and not child.kinds:
            yield from _profile_columns(child, path)
            continue
        kind = next(iter(child.kinds)) if len(child.kinds) == 1 and not child.children else JSON
        codec = STR if kind is UNTYPED and path == ("$compartment_id",) else kind
        yield _ExportColumn(
            header=render_header(path, codec.suffix), kind=kind, codec=codec, path=path
        )


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
    return formula_escape(value)


class FlatLayout:
    """The columns of a flat export; `cells(item)` gives one row."""

    def __init__(self, identifier_columns: list[str], profile_columns: list[_ExportColumn]) -> None:
        self.columns = [
            _ExportColumn(header="operation", command="operation"),
            _ExportColumn(header="update_strategy", command="update_strategy"),
            *(_ExportColumn(header=name, command=name) for name in identifier_columns),
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
            if column.kind is None:
                value = command_cells.get(column.command)
            else:
                value = self._profile_cell(column, _value_at(profile, column.path), typed)
            row.append(value if typed else csv_text(value))
        return row

    @staticmethod
    def _profile_cell(column: _ExportColumn, value: Any, typed: bool) -> Any:
        if value is _MISSING:
            return None
        assert column.codec is not None
        if column.kind is not JSON and codec_of_value(value) is not column.kind:
            raise ValueError(f"profile does not fit the export layout at {column.header!r}")
        return column.codec.render(value, typed=typed)


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


# --------------------------------------------------------------------------- writing


def _spool(items: Iterable[ExportItem], spool: IO[bytes]) -> Iterator[ExportItem]:
    """Yield the items while saving them, so a second pass reads the same data."""
    for item in items:
        identifier, profile = export_item(item)
        spool.write(compact_json([_identifier_record(identifier), profile]).encode() + b"\n")
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
            return write_csv(layout.headers, rows, out, delimiter=delimiter)
        if len(layout.headers) > XLSX_MAX_COLUMNS:
            raise ValueError(f"an XLSX sheet holds at most {XLSX_MAX_COLUMNS} columns")
        return write_xlsx(layout.headers, rows, out)
