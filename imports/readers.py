"""Streaming readers: an import file becomes a stream of commands (SPEC.md §2, §3).

`open_reader(path, fmt, options)` checks what can be checked up front (encoding,
header, zip sizes) and raises `FileError` for a file-level problem; iterating
the reader yields an `ProfileCommand` or a `LineError` per record, in file order.
A file-level problem found later (undecodable CSV bytes on line 90 000, an
unclosed JSON array) raises `FileError` from the iteration: the commands already
yielded stay valid, the execution fails.

Memory stays flat whatever the file size: NDJSON and CSV are read line by line
with a bounded `readline`, a JSON array is cut into elements by a byte scanner
that never holds more than one element, and XLSX goes through openpyxl's
read-only mode after a zip-size check.

Rules chosen here (not in the SPEC):

- JSON is strict everywhere (NDJSON lines, array elements, `:json` cells):
  duplicate keys, NaN/Infinity (and numbers that overflow to infinity), NUL
  characters, lone UTF-16 surrogates and nesting deeper than `max_depth`
  (the command object itself is level 1) are line errors, since PostgreSQL
  `jsonb` cannot store them or would silently keep only one duplicate.
- Invalid UTF-8 inside one NDJSON line (or JSON element) is a line error
  INVALID_ENCODING: the rest of the file is fine. In CSV it is a FileError,
  because a wrong encoding usually spoils every row.
- Encodings must be ASCII-compatible (UTF-8, Latin-1, cp1252, ...): lines are
  cut on bytes. A UTF-16 file is refused with a message saying so.
- CSV delimiter: chosen by parsing the first 64 KB with each candidate
  (, ; tab |) and keeping the one that splits the header into columns and
  gives every sampled row the header's cell count (then: more such rows, more
  columns, the earlier candidate). A candidate that leaves a quoted cell
  followed by anything but itself is out. csv.Sniffer guesses from character
  frequencies and is misled by free text (a `;` inside a comment column) and
  by quoted cells holding other candidates, which this check is not.
- XLSX: first sheet, header on row 1, line = sheet row number. Integral
  floats become ints, dates ISO text (a date alone when the cell shows no
  time), a formula error (#DIV/0!) is an INVALID_CELL line error. The zip is
  refused (FILE_TOO_LARGE) when its parts inflate past
  `max_xlsx_uncompressed_bytes` or one part over 1 MB is compressed more than
  `max_xlsx_compression_ratio` times; XML is parsed through defusedxml.
- CSV/XLSX headers: `a.b.c` builds nested objects; `name:int|float|bool|json|str`
  types the cells; a header that is a JSON array of strings, e.g.
  `["my.key"]:int`, names a path whose keys hold `.`, `:` or a reserved name
  (the exporter writes those). Reserved names match exactly (lowercase).
- A leading apostrophe in an identifier cell (user_account_id, email_hash,
  user_agent_id) is dropped: it is the spreadsheet convention for "text", and
  the exporter adds it to identifiers that would otherwise read as formulas.
- An empty CSV/XLSX row is skipped (still counted). A DELETE row with no
  profile cell gets no user_profile (it deletes the account's own profile,
  SPEC §2), an UPSERT row gets `{}`.
- force_replace / merge_objects cells are read as booleans (true/false/1/0/
  yes/no), since the CSV text "false" must not count as true downstream.
- Resuming: `reader.position` is the byte offset after the last yielded
  record (NDJSON, JSON, CSV; None for XLSX). `reader.iterate(after_line=N,
  at_offset=P)` restarts there without reading what comes before; with
  `after_line` alone the records up to line N are read but not parsed.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import json
import math
import os
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import IO, Any

from imports.formats import FileFormat, detect_format  # noqa: F401 (re-exported)
from profiles.commands import (
    ANNOTATION_KEYS,
    LineError,
    Operation,
    ProfileCommand,
    command_from_mapping,
    describe_value,
    identifier_label_of,
)
from profiles.merge import parse_bool_word


class FileError(Exception):
    """A file-level problem: the whole execution fails with this code and message."""

    def __init__(self, code: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line


@dataclass(frozen=True)
class ReaderOptions:
    encoding: str = "utf-8"  # "utf-8" accepts an optional BOM
    delimiter: str | None = None  # CSV: None = sniff among , ; \t |
    empty_cell_is_empty_string: bool = False
    max_line_bytes: int = 1_000_000
    max_depth: int = 32
    max_xlsx_uncompressed_bytes: int = 500_000_000
    # Deflate tops out near 1:1000; real sheets compress 5 to 50 times.
    max_xlsx_compression_ratio: int = 500


ImportRecord = ProfileCommand | LineError

CSV_DELIMITERS = (",", ";", "\t", "|")
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

_UTF8_BOM = codecs.BOM_UTF8
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_READ_CHUNK = 1 << 16
_SNIFF_BYTES = 1 << 16


def open_reader(
    path: str | os.PathLike[str], fmt: FileFormat, options: ReaderOptions = ReaderOptions()
) -> Reader:
    reader_class = {
        FileFormat.NDJSON: NdjsonReader,
        FileFormat.JSON: JsonArrayReader,
        FileFormat.CSV: CsvReader,
        FileFormat.XLSX: XlsxReader,
    }[FileFormat(fmt)]
    return reader_class(os.fspath(path), options)


# --------------------------------------------------------------------------- strict JSON


class StrictJsonError(ValueError):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _object_without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise StrictJsonError("DUPLICATE_KEY", f"key {describe_value(key)} appears twice")
            seen.add(key)
    return obj


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise StrictJsonError("NON_FINITE_NUMBER", f"{text[:40]} is too large for a number")
    return number


def _reject_constant(name: str) -> float:
    raise StrictJsonError("NON_FINITE_NUMBER", f"{name} is not a JSON number")


_STRICT_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicate_keys,
    parse_float=_finite_float,
    parse_constant=_reject_constant,
)
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def nesting_exceeds(text: str, max_depth: int) -> bool:
    """Whether brackets outside strings nest deeper than max_depth.

    Checked before json.loads, whose C parser would hit the recursion limit on
    a line of 10 000 brackets.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return False  # the common case: too few brackets to go that deep
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > max_depth:
                return True
        elif token in ("]", "}"):
            depth -= 1
    return False


def _bad_string_code(value: Any) -> str | None:
    """NUL_CHARACTER or INVALID_UNICODE if a key or string holds one, else None."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "NUL_CHARACTER"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "INVALID_UNICODE"
    return None


def parse_strict_json(text: str, *, max_depth: int) -> Any:
    """json.loads with the rules of this module; raises StrictJsonError."""
    if "\x00" in text:
        raise StrictJsonError("NUL_CHARACTER", "contains a NUL character")
    if nesting_exceeds(text, max_depth):
        raise StrictJsonError("TOO_DEEP", f"nested deeper than {max_depth} levels")
    try:
        value = _STRICT_DECODER.decode(text)
    except StrictJsonError:
        raise
    except json.JSONDecodeError as problem:
        raise StrictJsonError(
            "INVALID_JSON", f"invalid JSON: {problem.msg} at character {problem.pos + 1}"
        ) from None
    except RecursionError:
        raise StrictJsonError("TOO_DEEP", f"nested deeper than {max_depth} levels") from None
    except ValueError as problem:  # e.g. an integer of more than 4300 digits
        raise StrictJsonError("INVALID_JSON", f"invalid JSON: {problem}") from None
    # Only walk the value when the text holds an escape that could produce one.
    if "\\u0000" in text or _ESCAPED_SURROGATE.search(text):
        code = _bad_string_code(value)
        if code == "NUL_CHARACTER":
            raise StrictJsonError(code, "contains a NUL character (\\u0000)")
        if code == "INVALID_UNICODE":
            raise StrictJsonError(code, "contains a lone UTF-16 surrogate escape")
    return value


def _json_type_name(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def command_from_json_text(text: str, *, line: int, max_depth: int) -> ImportRecord:
    """One NDJSON line or JSON array element -> command or line error."""
    try:
        value = parse_strict_json(text, max_depth=max_depth)
    except StrictJsonError as problem:
        return LineError(
            line=line, code=problem.code, message=f"line {line}: {problem.detail}", raw=text
        )
    if not isinstance(value, dict):
        return LineError(
            line=line,
            code="INVALID_COMMAND",
            message=f"line {line}: a command must be a JSON object, got {_json_type_name(value)}",
            raw=text,
        )
    return command_from_mapping(value, line=line)


# --------------------------------------------------------------------------- byte lines


def _resolve_encoding(name: str) -> str:
    """The codec name to decode with; refuses unknown or non-ASCII-compatible ones."""
    try:
        codec = codecs.lookup(name)
    except LookupError:
        raise FileError("UNKNOWN_ENCODING", f"unknown encoding {name!r}") from None
    if codec.name in ("utf-8", "utf-8-sig"):
        return "utf-8"  # the BOM is stripped by hand at offset 0
    probe = b'\n\r\t ,;|"[]{}:.0aZ'
    try:
        ascii_compatible = probe.decode(codec.name) == probe.decode("ascii")
    except UnicodeDecodeError:
        ascii_compatible = False
    if not ascii_compatible:
        raise FileError(
            "UNSUPPORTED_ENCODING",
            f"encoding {name!r} is not supported: use UTF-8 or a one-byte encoding such as latin-1",
        )
    return codec.name


def _check_not_utf16(head: bytes) -> None:
    if head.startswith(_UTF16_BOMS):
        raise FileError(
            "UNSUPPORTED_ENCODING",
            "the file is UTF-16 (it starts with a UTF-16 byte order mark): save it as UTF-8",
        )


def _open_binary(path: str) -> IO[bytes]:
    try:
        return open(path, "rb")
    except OSError as problem:
        raise FileError("UNREADABLE_FILE", f"cannot read the file: {problem.strerror}") from None


@dataclass(frozen=True)
class _PhysicalLine:
    content: bytes | None  # without its line ending; None when longer than the limit
    consumed: int  # bytes read, line ending included


def _read_bounded_line(stream: IO[bytes], limit: int) -> _PhysicalLine | None:
    """The next line, never holding more than limit + 2 bytes of it; None at end of file."""
    data = stream.readline(limit + 2)
    if not data:
        return None
    consumed = len(data)
    if not data.endswith(b"\n") and consumed == limit + 2:
        while True:  # drain the rest of the over-long line in bounded pieces
            rest = stream.readline(_READ_CHUNK)
            consumed += len(rest)
            if not rest or rest.endswith(b"\n"):
                break
        return _PhysicalLine(None, consumed)
    if data.endswith(b"\n"):
        data = data[:-1]
    if data.endswith(b"\r"):
        data = data[:-1]
    if len(data) > limit:
        return _PhysicalLine(None, consumed)
    return _PhysicalLine(data, consumed)


def _skip_bom(stream: IO[bytes], encoding: str) -> int:
    """Consume a UTF-8 BOM at the start of the file; returns the offset after it."""
    head = stream.read(4)
    _check_not_utf16(head)
    if encoding == "utf-8" and head.startswith(_UTF8_BOM):
        stream.seek(len(_UTF8_BOM))
        return len(_UTF8_BOM)
    stream.seek(0)
    return 0


# --------------------------------------------------------------------------- readers


class Reader:
    """An import file as a stream of records; iterate it as often as needed."""

    format: FileFormat
    delimiter: str | None = None
    headers: list[str] | None = None

    def __init__(self, path: str, options: ReaderOptions) -> None:
        self.path = path
        self.options = options
        # Byte offset after the last yielded record: pass it back as at_offset.
        self.position: int | None = None

    def __iter__(self) -> Iterator[ImportRecord]:
        return self.iterate()

    def iterate(
        self, *, after_line: int = 0, at_offset: int | None = None
    ) -> Iterator[ImportRecord]:
        """Records whose line is after `after_line`.

        With `at_offset` (a `position` saved while yielding line `after_line`)
        reading starts at that byte, so the skipped part is not even read.
        """
        raise NotImplementedError


class NdjsonReader(Reader):
    format = FileFormat.NDJSON

    def __init__(self, path: str, options: ReaderOptions) -> None:
        super().__init__(path, options)
        self._encoding = _resolve_encoding(options.encoding)
        with _open_binary(path) as stream:
            self.position = _skip_bom(stream, self._encoding)

    def iterate(
        self, *, after_line: int = 0, at_offset: int | None = None
    ) -> Iterator[ImportRecord]:
        with _open_binary(self.path) as stream:
            if at_offset is None:
                offset = _skip_bom(stream, self._encoding)
                line = 0
            else:
                stream.seek(at_offset)
                offset, line = at_offset, after_line
            while (physical := _read_bounded_line(stream, self.options.max_line_bytes)) is not None:
                line += 1
                offset += physical.consumed
                if line <= after_line:
                    continue  # resuming: counted, not parsed
                record = self._record(physical, line)
                if record is not None:
                    self.position = offset
                    yield record

    def _record(self, physical: _PhysicalLine, line: int) -> ImportRecord | None:
        if physical.content is None:
            return _too_long(line, self.options.max_line_bytes)
        try:
            text = physical.content.decode(self._encoding)
        except UnicodeDecodeError as problem:
            return _undecodable(line, physical.content, problem, self._encoding)
        if not text.strip():
            return None  # blank lines are allowed and still counted
        return command_from_json_text(text, line=line, max_depth=self.options.max_depth)


def _too_long(line: int, limit: int) -> LineError:
    return LineError(
        line=line,
        code="LINE_TOO_LONG",
        message=f"line {line}: longer than {limit} bytes",
    )


def _undecodable(
    line: int, content: bytes, problem: UnicodeDecodeError, encoding: str
) -> LineError:
    return LineError(
        line=line,
        code="INVALID_ENCODING",
        message=f"line {line}: byte {problem.start + 1} is not valid {encoding}",
        raw=content,
    )


# ----------------------------------------------------------------- JSON array splitter


@dataclass(frozen=True)
class _ArrayElement:
    text: bytes | None  # None when longer than the limit (dropped while scanning)
    end_offset: int  # offset of the "," or "]" that ends it


# Outside the array and between elements: the next structural byte.
_STRUCTURAL = re.compile(rb'[\[\]{},"]')
# Inside an element: skip in one match everything that cannot change the
# element's extent (plain bytes and whole strings); commas matter only at the
# top level. A string that goes on past the chunk stops the run at its quote.
_COMPLETE_STRING = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
_SKIP_IN_ELEMENT = re.compile(rb'(?:[^"\[\]{},]++|' + _COMPLETE_STRING + rb")*+", re.DOTALL)
_SKIP_IN_NESTED = re.compile(rb'(?:[^"\[\]{}]++|' + _COMPLETE_STRING + rb")*+", re.DOTALL)
_STRING_STOP = re.compile(rb'["\\]')


class _JsonArraySplitter:
    """Cuts a top-level JSON array into element texts, one chunk at a time.

    Only brackets and strings are understood; each element is then parsed by
    the strict parser, so a broken element is a line error as long as its
    brackets and quotes balance. JSON's structural characters are ASCII and
    never occur inside a UTF-8 multi-byte sequence, so bytes can be scanned.
    """

    def __init__(self, stream: IO[bytes], *, offset: int, resume: bool, max_bytes: int) -> None:
        self.stream = stream
        self.base = offset  # file offset of the current chunk's first byte
        self.max_bytes = max_bytes
        self.depth = 1 if resume else 0  # 1 = inside the top-level array
        self.awaiting_separator = resume  # resuming right after an element
        self.closed = False
        self.in_string = False
        self.escape_pending = False
        self._start_element(after_comma=False)

    def _start_element(self, *, after_comma: bool) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.too_long = False
        self.has_content = False
        self.after_comma = after_comma

    def _keep(self, piece: bytes) -> None:
        if self.too_long:
            return
        self.size += len(piece)
        if self.size > self.max_bytes:
            self.too_long = True
            self.parts = []  # drop it: memory stays bounded whatever the element's size
        else:
            self.parts.append(piece)

    def _finish_element(self, end_offset: int) -> _ArrayElement:
        text = None if self.too_long else b"".join(self.parts)
        return _ArrayElement(text, end_offset)

    def elements(self) -> Iterator[_ArrayElement]:
        while chunk := self.stream.read(_READ_CHUNK):
            yield from self._scan(chunk)
            self.base += len(chunk)
        if self.in_string or self.depth > 0:
            raise FileError("INVALID_JSON", "the JSON array is not closed: the file ends inside it")
        if not self.closed:
            raise FileError("NOT_AN_ARRAY", "the file is empty: expected a JSON array")

    def _scan(self, chunk: bytes) -> Iterator[_ArrayElement]:
        pos, end = 0, len(chunk)
        self.element_from = 0  # where the current element's bytes start in this chunk
        if self.escape_pending:
            self.escape_pending = False
            pos = 1
        while pos < end:
            if self.in_string:
                pos = self._scan_string(chunk, pos)
            elif self.closed or self.depth == 0 or self.awaiting_separator:
                pos = self._scan_outside_element(chunk, pos)
            else:
                skip = _SKIP_IN_ELEMENT if self.depth == 1 else _SKIP_IN_NESTED
                run = skip.match(chunk, pos)
                assert run is not None  # the pattern also matches the empty run
                run_end = run.end()
                if not self.has_content and chunk[pos:run_end].strip():
                    self.has_content = True
                if run_end < end:
                    element = self._element_byte(chunk, run_end)
                    if element is not None:
                        yield element
                pos = run_end + 1
        if self.depth >= 1 and not self.closed and not self.awaiting_separator:
            self._keep(chunk[self.element_from : end])

    def _scan_string(self, chunk: bytes, pos: int) -> int:
        """Inside a string that began in an earlier chunk: where it ends."""
        stop = _STRING_STOP.search(chunk, pos)
        if stop is None:
            return len(chunk)
        if chunk[stop.start()] == 0x22:  # the closing quote
            self.in_string = False
            return stop.end()
        if stop.end() < len(chunk):  # a backslash: skip the escaped byte
            return stop.end() + 1
        self.escape_pending = True
        return len(chunk)

    def _scan_outside_element(self, chunk: bytes, pos: int) -> int:
        """Before the array, after it, or between an element and its separator."""
        found = _STRUCTURAL.search(chunk, pos)
        gap_end = found.start() if found else len(chunk)
        self._expect_whitespace(chunk[pos:gap_end], self.base + pos)
        if found is None:
            return len(chunk)
        byte, at = chunk[gap_end], gap_end
        if self.closed:
            self._fail_trailing(self.base + at)
        if self.depth == 0:
            if byte != 0x5B:  # "["
                raise FileError("NOT_AN_ARRAY", "the file must hold a JSON array of commands")
            self.depth = 1
        elif byte == 0x2C:  # "," after the element we resumed behind
            self.awaiting_separator = False
            self._start_element(after_comma=True)
        elif byte == 0x5D:  # "]"
            self.depth, self.closed = 0, True
        else:
            raise FileError("INVALID_JSON", f"expected ',' or ']' at byte {self.base + at + 1}")
        self.element_from = at + 1
        return at + 1

    def _element_byte(self, chunk: bytes, at: int) -> _ArrayElement | None:
        """Handle a bracket, a top-level comma, or the quote of an unfinished string."""
        byte = chunk[at]
        if self.depth == 1 and byte in (0x2C, 0x5D):  # "," or "]" ends the element
            self._keep(chunk[self.element_from : at])
            element = None
            if self.has_content or self.after_comma:
                element = self._finish_element(self.base + at)
            if byte == 0x2C:
                self._start_element(after_comma=True)
                self.element_from = at + 1
            else:
                self.depth, self.closed = 0, True
            return element
        self.has_content = True
        if byte == 0x22:
            self.in_string = True  # a string that goes on in the next chunk
        elif byte in (0x5B, 0x7B):
            self.depth += 1
        elif byte in (0x5D, 0x7D) and self.depth > 1:
            self.depth -= 1
        # a "}" at depth 1 is a broken element: the strict parser reports it
        return None

    def _expect_whitespace(self, gap: bytes, offset: int) -> None:
        if gap.strip():
            if self.closed:
                self._fail_trailing(offset)
            if self.depth == 0:
                raise FileError("NOT_AN_ARRAY", "the file must hold a JSON array of commands")
            raise FileError("INVALID_JSON", f"expected ',' or ']' at byte {offset + 1}")

    def _fail_trailing(self, offset: int) -> None:
        raise FileError(
            "INVALID_JSON", f"unexpected data after the closing ']' at byte {offset + 1}"
        )


class JsonArrayReader(Reader):
    """A JSON file holding one array of command objects; line = element index from 1."""

    format = FileFormat.JSON

    def __init__(self, path: str, options: ReaderOptions) -> None:
        super().__init__(path, options)
        self._encoding = _resolve_encoding(options.encoding)
        with _open_binary(path) as stream:
            start = _skip_bom(stream, self._encoding)
            head = stream.read(_SNIFF_BYTES).lstrip()
        if not head:
            raise FileError("NOT_AN_ARRAY", "the file is empty: expected a JSON array")
        if not head.startswith(b"["):
            raise FileError("NOT_AN_ARRAY", "the file must hold a JSON array of commands")
        self.position = start

    def iterate(
        self, *, after_line: int = 0, at_offset: int | None = None
    ) -> Iterator[ImportRecord]:
        with _open_binary(self.path) as stream:
            if at_offset is None:
                offset, line = _skip_bom(stream, self._encoding), 0
            else:
                stream.seek(at_offset)
                offset, line = at_offset, after_line
            splitter = _JsonArraySplitter(
                stream,
                offset=offset,
                resume=at_offset is not None,
                max_bytes=self.options.max_line_bytes,
            )
            for element in splitter.elements():
                line += 1
                if line <= after_line:
                    continue
                self.position = element.end_offset
                yield self._record(element, line)

    def _record(self, element: _ArrayElement, line: int) -> ImportRecord:
        if element.text is None:
            return _too_long(line, self.options.max_line_bytes)
        try:
            text = element.text.decode(self._encoding).strip()
        except UnicodeDecodeError as problem:
            return _undecodable(line, element.text, problem, self._encoding)
        if not text:
            return LineError(
                line=line,
                code="INVALID_JSON",
                message=f"line {line}: empty element (a doubled or trailing comma)",
                raw="",
            )
        return command_from_json_text(text, line=line, max_depth=self.options.max_depth)


# --------------------------------------------------------------------------- flat files


@dataclass(frozen=True)
class FlatColumn:
    header: str  # as written in the file
    role: str  # "command" | "profile" | "annotation"
    name: str = ""  # command column name
    path: tuple[str, ...] = ()  # profile column: keys from the top of user_profile
    suffix: str | None = None


class _CellProblem(Exception):
    pass


def _column_label(index: int, header: str) -> str:
    return f"column {index + 1} ({header!r})"


def parse_header(raw_headers: Iterable[object]) -> list[FlatColumn]:
    """Header cells -> columns; raises FileError for a header that cannot be read."""
    headers = ["" if cell is None else str(cell).strip() for cell in raw_headers]
    while headers and headers[-1] == "":
        headers.pop()  # trailing empty cells (a trailing delimiter, an Excel habit)
    if not headers:
        raise FileError("NO_HEADER", "the first line must be a header naming the columns", line=1)
    columns = [_parse_header_cell(index, header) for index, header in enumerate(headers)]
    _check_headers_do_not_clash(columns)
    return columns


def _parse_header_cell(index: int, header: str) -> FlatColumn:
    if header == "":
        raise FileError("INVALID_HEADER", f"{_column_label(index, header)} has no name", line=1)
    if header in ANNOTATION_KEYS:
        return FlatColumn(header=header, role="annotation", name=header)
    if header.startswith("["):
        path, suffix = _parse_path_header(index, header)
        return FlatColumn(header=header, role="profile", path=path, suffix=suffix)
    name, suffix = _split_suffix(header)
    if name in RESERVED_COLUMNS:
        # A suffix on a command column changes nothing: its reading is fixed.
        return FlatColumn(header=header, role="command", name=name)
    segments = tuple(name.split("."))
    if "" in segments:
        raise FileError(
            "INVALID_HEADER",
            f"{_column_label(index, header)}: empty key in a dotted name",
            line=1,
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
        raise FileError(
            "INVALID_HEADER",
            f"{_column_label(index, header)}: a header starting with '[' must be a JSON "
            'array of keys, optionally followed by a type suffix, e.g. ["a.b"]:int',
            line=1,
        )
    return tuple(path), suffix


def _check_headers_do_not_clash(columns: list[FlatColumn]) -> None:
    seen: dict[object, str] = {}
    for column in columns:
        key: object = column.name if column.role != "profile" else column.path
        if key in seen:
            raise FileError(
                "DUPLICATE_HEADER",
                f"columns {seen[key]!r} and {column.header!r} name the same field",
                line=1,
            )
        seen[key] = column.header
    leaves = {column.path: column.header for column in columns if column.role == "profile"}
    for path, header in leaves.items():
        for cut in range(1, len(path)):
            if path[:cut] in leaves:
                raise FileError(
                    "HEADER_CONFLICT",
                    f"columns {leaves[path[:cut]]!r} and {header!r} clash: the first sets a "
                    "value where the second needs an object",
                    line=1,
                )


# Conversions of one cell. Text cells (CSV, and XLSX text) go through
# _value_from_text; XLSX typed cells through _value_from_typed_cell.

_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _bool_from_text(text: str) -> bool:
    flag = parse_bool_word(text)
    if flag is not None:
        return flag
    raise _CellProblem(f"{describe_value(text)} is not a boolean (true/false, 1/0, yes/no)")


def _value_from_text(text: str, suffix: str | None, max_depth: int) -> Any:
    if suffix is None or suffix == "str":
        return text
    stripped = text.strip()
    if suffix == "int":
        if not _INTEGER.fullmatch(stripped) or len(stripped) > 4000:
            raise _CellProblem(f"{describe_value(text)} is not an integer")
        return int(stripped)
    if suffix == "float":
        if not _DECIMAL.fullmatch(stripped):
            raise _CellProblem(f"{describe_value(text)} is not a number")
        number = float(stripped)
        if math.isinf(number):
            raise _CellProblem(f"{describe_value(text)} is too large for a number")
        return number
    if suffix == "bool":
        return _bool_from_text(text)
    try:
        return parse_strict_json(text, max_depth=max_depth)
    except StrictJsonError as problem:
        raise _CellProblem(problem.detail) from None


def _normalise_typed_cell(value: Any, number_format: str = "General") -> Any:
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


def _text_of_typed_cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _value_from_typed_cell(value: Any, suffix: str | None, max_depth: int) -> Any:
    """An XLSX cell (already normalised) under a column suffix."""
    if isinstance(value, str):
        return _value_from_text(value, suffix, max_depth)
    if suffix is None or suffix == "json":
        return value
    if suffix == "str":
        return _text_of_typed_cell(value)
    if suffix == "bool":
        if isinstance(value, bool):
            return value
        if value in (0, 1):
            return bool(value)
        raise _CellProblem(f"{describe_value(value)} is not a boolean")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _CellProblem(f"{describe_value(value)} is not a number")
    if suffix == "float":
        return float(value)
    if isinstance(value, float):  # integral floats were made ints already
        raise _CellProblem(f"{describe_value(value)} is not an integer")
    return value


def _set_path(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value


@dataclass(frozen=True)
class _RowCell:
    column: FlatColumn
    index: int
    value: Any  # str for CSV; normalised cell value for XLSX; None when empty
    is_text: bool


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
    if all(_is_empty(value) for value in values):
        return None
    raw = {
        column.header: values[index] if index < len(values) else None
        for index, column in enumerate(columns)
        if column.role != "annotation"
    }
    count_problem = _cell_count_problem(columns, values, line, typed)
    if count_problem is not None:
        return replace(count_problem, raw=raw)
    cells = [
        _RowCell(column, index, values[index] if index < len(values) else None, not typed)
        for index, column in enumerate(columns)
    ]
    try:
        mapping = _mapping_from_cells(cells, options)
    except _RowProblem as problem:
        header = problem.cell.column.header
        return LineError(
            line=line,
            code=problem.code,
            message=f"line {line}, {_column_label(problem.cell.index, header)}: {problem.detail}",
            field=header,
            identifier=_identifier_label_of_row(columns, values),
            raw=raw,
        )
    return command_from_mapping(mapping, line=line, default_operation=Operation.UPSERT, raw=raw)


def _identifier_label_of_row(columns: list[FlatColumn], values: list[Any]) -> str:
    identifier_cells = {
        column.name: _text_of_typed_cell(value)
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
            message=f"line {line}: {len(values)} cells for {len(columns)} header columns",
        )
    return None


def _mapping_from_cells(cells: list[_RowCell], options: ReaderOptions) -> dict[str, Any]:
    mapping: dict[str, Any] = {}
    profile: dict[str, Any] = {}
    for cell in cells:
        if cell.column.role == "annotation" or _is_empty(cell.value):
            if cell.value == "" and _keeps_empty_string(cell.column, options):
                _set_path(profile, cell.column.path, "")
            continue
        if isinstance(cell.value, str) and "\x00" in cell.value:
            raise _RowProblem("NUL_CHARACTER", cell, "contains a NUL character")
        if cell.column.role == "command":
            mapping[cell.column.name] = _command_cell_value(cell)
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


def _command_cell_value(cell: _RowCell) -> Any:
    name, value = cell.column.name, cell.value
    if name in BOOLEAN_COLUMNS:
        if isinstance(value, bool):
            return value
        try:
            return _bool_from_text(_text_of_typed_cell(value))
        except _CellProblem as problem:
            raise _RowProblem("INVALID_CELL", cell, str(problem)) from None
    text = _text_of_typed_cell(value)
    if name in IDENTIFIER_COLUMNS and text.startswith("'"):
        text = text[1:]  # the spreadsheet "this is text" mark, see the module docstring
    return text


def _profile_cell_value(cell: _RowCell, options: ReaderOptions) -> Any:
    column, value = cell.column, cell.value
    try:
        if column.suffix is None and column.path == ("$compartment_id",):
            text = _text_of_typed_cell(value).strip()
            # "1606" and 1606 both name compartment 1606; render the integer.
            return int(text) if _INTEGER.fullmatch(text) and len(text) < 20 else value
        if column.suffix is None and column.path == ("$user_account_id",):
            return _text_of_typed_cell(value)
        if cell.is_text:
            return _value_from_text(value, column.suffix, options.max_depth)
        return _value_from_typed_cell(value, column.suffix, options.max_depth)
    except _CellProblem as problem:
        raise _RowProblem("INVALID_CELL", cell, str(problem)) from None


# --------------------------------------------------------------------------- CSV


def _choose_delimiter(sample: str) -> str:
    """The candidate that splits the header and agrees best with the sampled rows.

    Ranked by: splits the header at all, every sampled row has the header's
    cell count, how many rows do, how many columns; ties go to the earlier
    candidate, so a one-column file is comma-separated. Candidates that leave
    a quoted cell followed by something else than themselves (strict parsing)
    are out, unless that rules out all of them (a sloppily quoted file).
    """
    lines = sample.splitlines(keepends=True)
    for strict in (True, False):
        scores = {
            delimiter: score
            for delimiter in CSV_DELIMITERS
            if (score := _delimiter_score(lines, delimiter, strict)) is not None
        }
        if any(score[0] for score in scores.values()):
            # max keeps the first of equal scores, and CSV_DELIMITERS starts with ","
            return max(scores, key=lambda delimiter: scores[delimiter])
    return ","


def _delimiter_score(lines: list[str], delimiter: str, strict: bool) -> tuple | None:
    consumed = 0

    def fed_lines() -> Iterator[str]:
        nonlocal consumed
        for line in lines:
            consumed += 1
            yield line

    rows: list[list[str]] = []
    try:
        for row in csv.reader(fed_lines(), delimiter=delimiter, strict=strict):
            if row:
                rows.append(row)
            if len(rows) > 20:
                break
    except csv.Error:
        if consumed < len(lines):
            return None  # the sample's end may cut a quoted cell: only earlier errors count
    if not rows:
        return None
    width = len(rows[0])
    sampled = rows[1:]
    matching = sum(1 for row in sampled if len(row) == width)
    return (width > 1, matching == len(sampled), matching, width)


def _complete_lines(sample: bytes, whole_file: bool) -> bytes:
    if whole_file:
        return sample
    cut = sample.rfind(b"\n")
    return sample[: cut + 1] if cut >= 0 else sample


class _CsvLineSource:
    """Decoded physical lines for csv.reader, keeping the byte offset and line counts.

    csv.reader pulls lines only until the record in hand is complete, so after
    a record `offset` is exactly where the next record starts.
    """

    def __init__(
        self, stream: IO[bytes], *, encoding: str, offset: int, records_before: int, limit: int
    ) -> None:
        self.stream = stream
        self.encoding = encoding
        self.offset = offset
        self.limit = limit
        self.records_done = records_before
        self.record_bytes = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        data = self.stream.readline(self.limit + 2)
        if not data:
            raise StopIteration
        line = self.records_done + 1
        self.offset += len(data)
        self.record_bytes += len(data)
        # csv.reader ends a record at the end of each string it is given, so a
        # cut line must stop here rather than be fed in pieces.
        cut_line = len(data) == self.limit + 2 and not data.endswith(b"\n")
        if cut_line or self.record_bytes > self.limit + 2:
            raise FileError(
                "LINE_TOO_LONG",
                f"line {line}: longer than {self.limit} bytes (an unclosed quote?)",
                line=line,
            )
        try:
            return data.decode(self.encoding)
        except UnicodeDecodeError as problem:
            raise FileError(
                "INVALID_ENCODING",
                f"line {line}: byte {problem.start + 1} of the line is not valid "
                f"{self.encoding}; say which encoding the file uses",
                line=line,
            ) from None

    def record_finished(self) -> None:
        self.records_done += 1
        self.record_bytes = 0


class CsvReader(Reader):
    format = FileFormat.CSV
    delimiter: str

    def __init__(self, path: str, options: ReaderOptions) -> None:
        super().__init__(path, options)
        self._encoding = _resolve_encoding(options.encoding)
        if options.delimiter is not None and len(options.delimiter) != 1:
            raise FileError("INVALID_DELIMITER", "the delimiter must be one character")
        # csv's default field limit (128 KB) would cut a legitimate long cell.
        csv.field_size_limit(max(csv.field_size_limit(), options.max_line_bytes))
        with _open_binary(path) as stream:
            start = _skip_bom(stream, self._encoding)
            sample = stream.read(_SNIFF_BYTES)
            self.delimiter = options.delimiter or self._sniff(sample)
            stream.seek(start)
            source = self._line_source(stream, start, 0)
            try:
                header = next(csv.reader(source, delimiter=self.delimiter), None)
            except csv.Error as problem:
                raise FileError("INVALID_CSV", f"line 1: {problem}", line=1) from None
        if header is None:
            raise FileError("NO_HEADER", "the file is empty: expected a header line", line=1)
        self.columns = parse_header(header)
        self.headers = [column.header for column in self.columns]
        self._data_offset = source.offset
        self.position = source.offset

    def _sniff(self, sample: bytes) -> str:
        whole_file = len(sample) < _SNIFF_BYTES
        text = _complete_lines(sample, whole_file).decode(self._encoding, errors="replace")
        return _choose_delimiter(text)

    def _line_source(self, stream: IO[bytes], offset: int, records_before: int) -> _CsvLineSource:
        return _CsvLineSource(
            stream,
            encoding=self._encoding,
            offset=offset,
            records_before=records_before,
            limit=self.options.max_line_bytes,
        )

    def iterate(
        self, *, after_line: int = 0, at_offset: int | None = None
    ) -> Iterator[ImportRecord]:
        with _open_binary(self.path) as stream:
            if at_offset is None:
                offset, records_before = self._data_offset, 1  # the header is line 1
            else:
                offset, records_before = at_offset, after_line
            stream.seek(offset)
            source = self._line_source(stream, offset, records_before)
            rows = csv.reader(source, delimiter=self.delimiter)
            while True:
                try:
                    cells = next(rows)
                except StopIteration:
                    return
                except csv.Error as problem:
                    line = source.records_done + 1
                    raise FileError("INVALID_CSV", f"line {line}: {problem}", line=line) from None
                source.record_finished()
                line = source.records_done
                if line <= after_line:
                    continue
                record = row_to_record(
                    self.columns, cells, line=line, options=self.options, typed=False
                )
                if record is not None:
                    self.position = source.offset
                    yield record


# --------------------------------------------------------------------------- XLSX


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


def _unreadable_workbook(problem: BaseException) -> FileError:
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


def _load_first_sheet(path: str) -> Any:
    import openpyxl

    if not openpyxl.DEFUSEDXML:
        # Without defusedxml openpyxl parses XML entities: refuse rather than risk it.
        raise FileError("XLSX_UNAVAILABLE", "reading XLSX needs the defusedxml package")
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as problem:  # openpyxl raises many kinds for a broken workbook
        raise _unreadable_workbook(problem) from None
    if not workbook.worksheets:
        workbook.close()
        raise FileError("INVALID_XLSX", "the workbook has no sheet")
    return workbook


def _xlsx_cell_value(cell: Any) -> Any:
    if getattr(cell, "data_type", None) == "e":
        return _XlsxErrorValue(str(cell.value))
    return _normalise_typed_cell(cell.value, getattr(cell, "number_format", "General") or "General")


class _XlsxErrorValue(str):
    """A formula error such as #DIV/0!: a line error, never a value."""


class XlsxReader(Reader):
    format = FileFormat.XLSX

    def __init__(self, path: str, options: ReaderOptions) -> None:
        super().__init__(path, options)
        check_xlsx_zip(path, options)
        workbook = _load_first_sheet(path)
        try:
            first_row = next(workbook.worksheets[0].iter_rows(max_row=1), ())
            header = [_xlsx_cell_value(cell) for cell in first_row]
        except FileError:
            raise
        except Exception as problem:
            raise _unreadable_workbook(problem) from None
        finally:
            workbook.close()
        if any(isinstance(value, _XlsxErrorValue) for value in header):
            raise FileError("INVALID_HEADER", "a header cell holds a formula error", line=1)
        self.columns = parse_header(
            None if value is None else _text_of_typed_cell(value) for value in header
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
            raise _unreadable_workbook(problem) from None

    def _record(self, values: list[Any], line: int) -> ImportRecord | None:
        for index, value in enumerate(values[: len(self.columns)]):
            if isinstance(value, _XlsxErrorValue):
                header = self.columns[index].header
                return LineError(
                    line=line,
                    code="INVALID_CELL",
                    message=f"line {line}, {_column_label(index, header)}: the cell holds the "
                    f"formula error {value}",
                    field=header,
                    identifier=_identifier_label_of_row(self.columns, values),
                    raw={
                        column.header: values[i] if i < len(values) else None
                        for i, column in enumerate(self.columns)
                        if column.role != "annotation"
                    },
                )
        return row_to_record(self.columns, values, line=line, options=self.options, typed=True)
