"""The failed-lines file of an execution (SPEC.md §4), in the source format and encoding.

Failed lines are written in the source format with `_line` and `_error` added
(first keys of an object; last two columns of a row, under the source header and
delimiter), and the readers ignore those two names, so the file can be fixed and
uploaded again. A record that is no JSON object (it did not parse, or it is an
array or a string) becomes an object of its own: `_line`, `_error` and `_raw`,
the record's text as read (undecodable bytes replaced by U+FFFD), so every entry
of the file says its line and its error and the file stays JSON; `_raw` is no
command field, so the entry fails again until it is replaced by the fixed
record. A line too long to
keep is written as an object holding only `_line` and `_error`, and so is a
record kept only in part (IMPORT_ERROR_RAW_MAX_BYTES); a CSV/XLSX row that could
not be split into cells (INVALID_CSV, LINE_TOO_LONG) gets empty cells. Cells are
written back as they came (they are the client's own data), except that CSV and
XLSX cells and headers go through `flat_layout.formula_escape`, as exports do:
staff open this file in a spreadsheet, and the readers take the `'` off again.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Mapping
from typing import Any, BinaryIO

from imports.flat_layout import formula_escape
from imports.formats import FileFormat
from imports.writers.sheets import write_csv, write_xlsx
from profiles.commands import ANNOTATION_KEYS, LineError


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
    rows = ([_escaped(cell) for cell in _failed_row(error, columns)] for error in errors)
    header_row = [*(formula_escape(column) for column in columns), "_line", "_error"]
    if fmt is FileFormat.CSV:
        return write_csv(header_row, rows, out, delimiter=delimiter, encoding=encoding)
    return write_xlsx(header_row, rows, out)


def _escaped(cell: Any) -> Any:
    return formula_escape(cell) if isinstance(cell, str) else cell


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
    annotated: dict[str, Any] = {"_line": error.line, "_error": error.message}
    body = error.raw if isinstance(error.raw, Mapping) else {}
    if isinstance(error.raw, bytes):  # undecodable in the source encoding
        annotated["_raw"] = error.raw.decode(encoding, errors="replace")
    elif isinstance(error.raw, str):  # no JSON object: not parsed, or an array or a string
        annotated["_raw"] = error.raw
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
