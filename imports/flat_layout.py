"""The flat-file layout of SPEC.md §3 (CSV, XLSX), in both directions: headers and cell codecs.

The CSV/XLSX readers parse headers with `parse_header` and read cells with a
column's codec (`clean`); the flat export writes headers with `render_header`
and cells with the same codecs (`render`). `parse_header_cell(render_header(p, s))`
gives back the path `p` and suffix `s` for every path, and `clean(render(v))`
gives back `v` for every value a codec takes: an export re-imports to the same data.

Headers, rules chosen here (not in the SPEC):

- `a.b.c` builds nested objects; `name:int|float|bool|json|str` types the cells
  (the suffix is read without regard to case); a header that is a JSON array of
  strings, e.g. `["my.key"]:int`, names a path whose keys hold `.`, `:` or a
  reserved name. Reserved names match exactly (lowercase); a suffix on a reserved
  column changes nothing. `_line` and `_error` (the failed-lines file's) are ignored.
- Written headers use the dotted form when every key can be spelled there, else
  the JSON-array form: a key holding `.`, `:`, brackets, quotes, outer spaces or
  control characters, an empty key, a key starting with a formula character or `'`, or
  a top-level key that is a command column such as `operation` or `_line`. So any
  JSON object round-trips.

Cells, one codec per suffix (shaped like django-import-export's widgets):

- A cell is text (CSV, an XLSX text cell) or an XLSX native value (number,
  boolean; a date already made ISO text). Without a suffix a text cell is a
  string and a native cell keeps its type. `:str` makes a native cell its text,
  `:int`/`:float`/`:bool`/`:json` convert; a cell that does not convert raises
  `CellError`, which the readers make a line error naming the column.
- `:bool` reads true/false, 1/0, yes/no (`profiles.merge.TRUE_WORDS`), and 0/1 cells.
- Rendered cells are text for CSV; with `typed=True` the native value an XLSX
  cell holds (a number that openpyxl would round, past 16 significant digits or
  2**53, is written as its exact text, which `:int`/`:float` read back).
- Spreadsheet formula injection: a string goes to a no-suffix column only when it
  is plain (`is_plain_string`): it never starts with `= + - @`, tab, CR or `'`, is not
  empty or blank and holds no CR or control character, which a spreadsheet would
  mangle. Others go to `:json`, where the cell is a JSON string literal such as
  `"=1+1"`: safe, since it starts with a quote, and exact on re-import. Numbers
  may start with `-`: a cell that is only a number cannot carry a formula.
- One escaping rule for every cell and header the project writes where the text
  is given (export identifiers, every cell and header of the failed-lines file):
  `formula_escape` puts a `'` before text that starts with `= + - @`, tab, CR
  (unless it is only a number) or with `'`; every reader takes it off again
  (`formula_unescape`, on every text cell and header, before anything else), so
  the file reads back to the very values. A client's own `'=x` cell therefore
  reads as `=x`, the spreadsheet convention.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from profiles.commands import ANNOTATION_KEYS, describe_value
from profiles.merge import parse_bool_word
from profiles.strict_json import StrictJsonError, compact_json, parse_strict_json

# Command columns of a flat file; `$compartment_id`/`$user_account_id` are
# reserved too but go into user_profile.
RESERVED_COLUMNS = frozenset(
    {
        "operation",
        "compartment_id",
        "user_account_id",
        "email_hash",
        "user_agent_id",
        "update_strategy",
        "merge_objects",
        "force_replace",
    }
)
PROFILE_KEY_COLUMNS = frozenset({"$compartment_id", "$user_account_id"})
IDENTIFIER_COLUMNS = frozenset({"user_account_id", "email_hash", "user_agent_id"})
BOOLEAN_COLUMNS = frozenset({"force_replace", "merge_objects"})
TYPE_SUFFIXES = frozenset({"int", "float", "bool", "json", "str"})
# Other names of the types, as other tools spell them: a header ending in one meant a type, so
# it is refused with the right spelling rather than read as a key holding ":" (`age:integer`).
_TYPE_ALIASES = frozenset(
    {"integer", "long", "bigint", "int64", "number", "double", "decimal", "boolean", "string"}
    | {"text", "object", "array", "list", "dict"}
)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

_ESCAPED_PREFIXES = (*FORMULA_PREFIXES, "'")

INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\r]")
_NOT_IN_PLAIN_KEY = re.compile(r'[.:\[\]"]')


class HeaderError(ValueError):
    """A header that cannot be read: the readers make it a FileError of line 1."""

    def __init__(self, code: str, message: str, *, header: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.header = header  # the header at fault, when one is


class CellError(ValueError):
    """A cell that does not convert under its column's suffix: INVALID_CELL, or the strict JSON
    reader's own code for a `:json` cell (TOO_DEEP, NON_FINITE_NUMBER…), as on an NDJSON line."""

    def __init__(self, message: str, *, code: str = "INVALID_CELL") -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------- formulas


def _needs_escape(text: str) -> bool:
    return text.startswith(_ESCAPED_PREFIXES) and not _DECIMAL.fullmatch(text)


def formula_escape(text: str) -> str:
    """Text a spreadsheet shows as written, never runs: a `'` before a formula start."""
    return "'" + text if _needs_escape(text) else text


def formula_unescape(text: str) -> str:
    """The text `formula_escape` was given: `formula_unescape(formula_escape(t)) == t`."""
    return text[1:] if text.startswith("'") and _needs_escape(text[1:]) else text


# --------------------------------------------------------------------------- headers


@dataclass(frozen=True)
class FlatColumn:
    header: str  # as written in the file
    role: str  # "command" | "profile" | "annotation" | "ignored" (a column mapping's null)
    name: str = ""  # command column name
    path: tuple[str, ...] = ()  # profile column: keys from the top of user_profile
    suffix: str | None = None
    transform: str | None = None  # a column mapping's cell transform (imports.column_mapping)


def column_label(index: int, header: str) -> str:
    return f"column {index + 1} ({header!r})"


def parse_header(raw_headers: Iterable[object]) -> list[FlatColumn]:
    """Header cells -> columns; raises HeaderError for a header that cannot be read."""
    columns = [
        parse_header_cell(index, header) for index, header in enumerate(header_texts(raw_headers))
    ]
    check_columns_do_not_clash(columns)
    return columns


def header_texts(raw_headers: Iterable[object]) -> list[str]:
    """The header row's cells as stripped text, trailing empty cells dropped; never empty."""
    headers = ["" if cell is None else formula_unescape(str(cell).strip()) for cell in raw_headers]
    while headers and headers[-1] == "":
        headers.pop()  # trailing empty cells (a trailing delimiter, an Excel habit)
    if not headers:
        raise HeaderError("NO_HEADER", "the first line must be a header naming the columns")
    return headers


def parse_header_cell(index: int, header: str) -> FlatColumn:
    if header == "":
        raise HeaderError("INVALID_HEADER", f"{column_label(index, header)} has no name")
    if header in ANNOTATION_KEYS:
        return FlatColumn(header=header, role="annotation", name=header)
    if header.startswith("["):
        path, suffix = _parse_path_header(index, header)
        return FlatColumn(header=header, role="profile", path=path, suffix=suffix)
    name, suffix = _split_suffix(header)
    _, colon, unknown = header.rpartition(":")
    if colon and unknown.lower() in _TYPE_ALIASES:
        raise HeaderError(
            "INVALID_HEADER",
            f"{column_label(index, header)}: :{unknown} is not a type; use :int, :float, :bool, "
            ':json or :str (a key holding ":" is written ["a:b"])',
            header=header,
        )
    if name in RESERVED_COLUMNS:
        # A suffix on a command column changes nothing: its reading is fixed.
        return FlatColumn(header=header, role="command", name=name)
    segments = tuple(name.split("."))
    if "" in segments:
        raise HeaderError(
            "INVALID_HEADER", f"{column_label(index, header)}: empty key in a dotted name"
        )
    return FlatColumn(header=header, role="profile", path=segments, suffix=suffix)


def _split_suffix(header: str) -> tuple[str, str | None]:
    name, colon, suffix = header.rpartition(":")
    if colon and suffix.lower() in TYPE_SUFFIXES:
        return name, suffix.lower()
    return header, None


def _parse_path_header(index: int, header: str) -> tuple[tuple[str, ...], str | None]:
    """`["a.b", "c"]:int` -> (("a.b", "c"), "int")."""
    try:
        path, end = json.JSONDecoder().raw_decode(header)
    except ValueError:
        path, end = None, 0
    rest = header[end:]
    suffix = rest[1:].lower() if rest.startswith(":") else None
    valid = (
        isinstance(path, list)
        and path
        and all(isinstance(key, str) for key in path)
        and (rest == "" or suffix in TYPE_SUFFIXES)
    )
    if not valid:
        raise HeaderError(
            "INVALID_HEADER",
            f"{column_label(index, header)}: a header starting with '[' must be a JSON "
            'array of keys, optionally followed by a type suffix, e.g. ["a.b"]:int',
        )
    return tuple(path), suffix


def check_columns_do_not_clash(columns: list[FlatColumn]) -> None:
    """Two columns naming one field, or one a value where the other needs an object: an error
    naming the second column's header (ignored columns clash with nothing)."""
    seen: dict[object, str] = {}
    for column in columns:
        if column.role == "ignored":
            continue
        key: object = column.name if column.role != "profile" else column.path
        if key in seen:
            raise HeaderError(
                "DUPLICATE_HEADER",
                f"columns {seen[key]!r} and {column.header!r} name the same field",
                header=column.header,
            )
        seen[key] = column.header
    leaves = {column.path: column.header for column in columns if column.role == "profile"}
    for path, header in leaves.items():
        for cut in range(1, len(path)):
            if path[:cut] in leaves:
                raise HeaderError(
                    "HEADER_CONFLICT",
                    f"columns {leaves[path[:cut]]!r} and {header!r} clash: the first sets a "
                    "value where the second needs an object",
                    header=header,
                )


def is_plain_key(key: str) -> bool:
    """A key the dotted form can spell (see the module docstring)."""
    return (
        key != ""
        and key == key.strip()
        and key.isprintable()
        and not _NOT_IN_PLAIN_KEY.search(key)
        and not key.startswith(_ESCAPED_PREFIXES)
    )


def render_header(path: tuple[str, ...], suffix: str | None) -> str:
    """The header of a profile column: `a.b:int`, or `["a.b"]:int` when keys need it."""
    dotted = ".".join(path)
    spellable = all(is_plain_key(key) for key in path) and dotted not in RESERVED_COLUMNS
    name = dotted if spellable and dotted not in ANNOTATION_KEYS else compact_json(list(path))
    return f"{name}:{suffix}" if suffix else name


# --------------------------------------------------------------------------- cells


def cell_text(value: Any) -> str:
    """A native cell as text: booleans as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _exact_sheet_number(value: int | float) -> int | float | str:
    """The number itself when openpyxl keeps it exact, else its exact text."""
    if isinstance(value, int):
        return value if abs(value) < 2**53 else str(value)
    negative_zero = value == 0 and math.copysign(1.0, value) < 0
    if negative_zero or float(f"{value:.16g}") != value:
        return repr(value)
    return value


class CellCodec:
    """One column type: `clean(cell)` reads a cell, `render(value)` writes one."""

    suffix: str | None = None

    def clean(self, cell: Any, *, max_depth: int) -> Any:
        """A text or native cell -> the value; raises CellError."""
        if isinstance(cell, str):
            return self.clean_text(cell, max_depth=max_depth)
        return self.clean_native(cell)

    def clean_text(self, text: str, *, max_depth: int) -> Any:
        return text

    def clean_native(self, value: Any) -> Any:
        return value

    def render(self, value: Any, *, typed: bool = False) -> Any:
        """The value -> a text cell, or with `typed` the native cell an XLSX sheet holds."""
        return value if typed or isinstance(value, str) else cell_text(value)


class UntypedCodec(CellCodec):
    """No suffix: a text cell is a string, a native cell keeps its type."""


class StrCodec(CellCodec):
    suffix = "str"

    def clean_native(self, value: Any) -> Any:
        return cell_text(value)


class IntCodec(CellCodec):
    suffix = "int"

    def clean_text(self, text: str, *, max_depth: int) -> Any:
        stripped = text.strip()
        if not INTEGER.fullmatch(stripped) or len(stripped) > 4000:
            raise CellError(f"{describe_value(text)} is not an integer")
        return int(stripped)

    def clean_native(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CellError(f"{describe_value(value)} is not a number")
        if isinstance(value, float):  # integral floats were made ints already
            raise CellError(f"{describe_value(value)} is not an integer")
        return value

    def render(self, value: Any, *, typed: bool = False) -> Any:
        return _exact_sheet_number(value) if typed else str(value)


class FloatCodec(CellCodec):
    suffix = "float"

    def clean_text(self, text: str, *, max_depth: int) -> Any:
        stripped = text.strip()
        if not _DECIMAL.fullmatch(stripped):
            raise CellError(f"{describe_value(text)} is not a number")
        number = float(stripped)
        if math.isinf(number):
            raise CellError(f"{describe_value(text)} is too large for a number")
        return number

    def clean_native(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CellError(f"{describe_value(value)} is not a number")
        return float(value)

    def render(self, value: Any, *, typed: bool = False) -> Any:
        return _exact_sheet_number(value) if typed else repr(value)


class BoolCodec(CellCodec):
    suffix = "bool"

    def clean_text(self, text: str, *, max_depth: int) -> Any:
        flag = parse_bool_word(text)
        if flag is None:
            raise CellError(f"{describe_value(text)} is not a boolean (true/false, 1/0, yes/no)")
        return flag

    def clean_native(self, value: Any) -> Any:
        if isinstance(value, bool):
            return value
        if value in (0, 1):
            return bool(value)
        raise CellError(f"{describe_value(value)} is not a boolean")

    def render(self, value: Any, *, typed: bool = False) -> Any:
        return value if typed else cell_text(value)


class JsonCodec(CellCodec):
    suffix = "json"

    def clean_text(self, text: str, *, max_depth: int) -> Any:
        try:
            return parse_strict_json(text, max_depth=max_depth)
        except StrictJsonError as problem:
            code = "INVALID_CELL" if problem.code == "INVALID_JSON" else problem.code
            raise CellError(problem.detail, code=code) from None

    def render(self, value: Any, *, typed: bool = False) -> Any:
        return compact_json(value)


UNTYPED, STR, INT, FLOAT, BOOL, JSON = (
    UntypedCodec(),
    StrCodec(),
    IntCodec(),
    FloatCodec(),
    BoolCodec(),
    JsonCodec(),
)
_CODEC_OF_SUFFIX: dict[str | None, CellCodec] = {
    codec.suffix: codec for codec in (UNTYPED, STR, INT, FLOAT, BOOL, JSON)
}


def codec_for(suffix: str | None) -> CellCodec:
    """The codec of a header suffix (None: no suffix)."""
    return _CODEC_OF_SUFFIX[suffix]


def is_plain_string(text: str) -> bool:
    """A string a no-suffix cell can hold safely and exactly (see the module docstring)."""
    return (
        text.strip() != ""
        and not text.startswith(_ESCAPED_PREFIXES)
        and not _CONTROL_CHARACTERS.search(text)
    )


def codec_of_value(value: Any) -> CellCodec:
    """The codec an export column needs for this value alone."""
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, float):
        return FLOAT
    if isinstance(value, str):
        return UNTYPED if is_plain_string(value) else JSON
    return JSON  # null, arrays, empty objects
