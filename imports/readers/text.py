"""Bytes to text, shared by the readers: encodings, the BOM, bounded lines, JSON records.

Rules chosen here (not in the SPEC):

- Encodings must be ASCII-compatible (UTF-8, Latin-1, cp1252, ...): lines are
  cut on bytes. A UTF-16 file is refused with a message saying so.
- UTF-8 accepts an optional BOM, stripped by hand at offset 0 (so byte offsets
  stay those of the file).
- A byte the declared encoding cannot decode in the file's first 64 KB says the
  file is in another encoding (SPEC §4): a FileError before anything is written
  (`encoding_checked`). Past them, it is the line error INVALID_ENCODING of its
  record (NDJSON line, JSON element, CSV row): the lines before it read well.
- A line is read with a bounded `readline`: one longer than `max_line_bytes` is
  drained in bounded pieces and reported (LINE_TOO_LONG), never held whole.
- NDJSON records and JSON array elements are parsed as strict JSON
  (`profiles.strict_json`); a value that is not an object is INVALID_COMMAND.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from typing import IO, Any, NamedTuple

from imports.readers.base import FileError, ImportRecord
from profiles.commands import LineError, command_from_mapping
from profiles.strict_json import StrictJsonError, parse_strict_json

_UTF8_BOM = codecs.BOM_UTF8
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
READ_CHUNK = 1 << 16
SNIFF_BYTES = 1 << 16


def resolve_encoding(name: str) -> str:
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


def open_binary(path: str) -> IO[bytes]:
    try:
        return open(path, "rb")
    except OSError as problem:
        raise FileError("UNREADABLE_FILE", f"cannot read the file: {problem.strerror}") from None


class PhysicalLine(NamedTuple):  # a tuple: one is built for every line read
    content: bytes | None  # without its line ending; None when longer than the limit
    consumed: int  # bytes read, line ending included
    head: bytes = b""  # a line over the limit: its first bytes, the only ones read
    goes_on: bool = False  # a line over the limit whose rest `drain_line` reads


def read_bounded_line(stream: IO[bytes], limit: int) -> PhysicalLine | None:
    """The next line, never holding more than limit + 2 bytes of it; None at end of file.

    A line over the limit comes back without content: its first limit + 2 bytes are `head`
    and, when it goes on past them, `drain_line` reads the rest.
    """
    data = stream.readline(limit + 2)
    if not data:
        return None
    consumed = len(data)
    if not data.endswith(b"\n") and consumed == limit + 2:
        return PhysicalLine(None, consumed, head=data, goes_on=True)
    content = data[:-1] if data.endswith(b"\n") else data
    if content.endswith(b"\r"):
        content = content[:-1]
    if len(content) > limit:
        return PhysicalLine(None, consumed, head=data)
    return PhysicalLine(content, consumed)


def drain_line(stream: IO[bytes], on_piece: Callable[[bytes], object] | None = None) -> int:
    """Read the rest of an over-long line in bounded pieces, each handed to `on_piece` and
    dropped; returns the number of bytes read, line ending included."""
    consumed = 0
    while True:
        piece = stream.readline(READ_CHUNK)
        consumed += len(piece)
        if on_piece is not None and piece:
            on_piece(piece)
        if not piece or piece.endswith(b"\n"):
            return consumed


def line_breaks_before(stream: IO[bytes], offset: int) -> int:
    """How many line breaks the file holds before `offset` (a streaming count, nothing kept);
    leaves the stream at `offset`."""
    stream.seek(0)
    count, left = 0, offset
    while left > 0:
        chunk = stream.read(min(READ_CHUNK * 16, left))
        if not chunk:
            break
        count += chunk.count(b"\n")
        left -= len(chunk)
    stream.seek(offset)
    return count


def encoding_checked(sample: bytes, encoding: str, *, whole_file: bool) -> None:
    """SPEC §4: a file in another encoding than the one declared fails before anything is
    written. Its first SNIFF_BYTES are the evidence: a byte there that the encoding cannot
    decode fails the file (INVALID_ENCODING); one further on is a line error of its line, the
    lines before it having been valid. A character cut by the sample's end is no evidence. A
    UTF-8 byte order mark in a file declared in another encoding is evidence too: latin-1 would
    read it as the first header's `ï»¿`."""
    if encoding != "utf-8" and sample.startswith(_UTF8_BOM):
        raise FileError(
            "INVALID_ENCODING",
            f"the file is not {encoding}: it starts with a UTF-8 byte order mark; upload it as "
            "UTF-8",
            line=1,
        )
    try:
        sample.decode(encoding)
    except UnicodeDecodeError as problem:
        if not whole_file and problem.reason == "unexpected end of data":
            return
        line_start = sample.rfind(b"\n", 0, problem.start) + 1
        line = sample.count(b"\n", 0, problem.start) + 1
        raise FileError(
            "INVALID_ENCODING",
            f"the file is not {encoding}: byte {problem.start - line_start + 1} of line {line} "
            "cannot be read in it; say which encoding the file uses (e.g. latin-1, cp1252)",
            line=line,
        ) from None


def skip_bom(stream: IO[bytes], encoding: str) -> int:
    """Consume a UTF-8 BOM at the start of the file; returns the offset after it."""
    head = stream.read(4)
    _check_not_utf16(head)
    if encoding == "utf-8" and head.startswith(_UTF8_BOM):
        stream.seek(len(_UTF8_BOM))
        return len(_UTF8_BOM)
    stream.seek(0)
    return 0


def line_too_long(line: int, limit: int) -> LineError:
    return LineError(
        line=line,
        code="LINE_TOO_LONG",
        message=f"line {line}: longer than {limit} bytes",
    )


def line_undecodable(
    line: int, content: bytes, problem: UnicodeDecodeError, encoding: str
) -> LineError:
    return LineError(
        line=line,
        code="INVALID_ENCODING",
        message=f"line {line}: byte {problem.start + 1} is not valid {encoding}",
        raw=content,
    )


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
    """One NDJSON record or JSON array element -> command or line error.

    A record spread over several lines (NDJSON) starts on `line`: a syntax error inside it
    names the physical line and character where the parser stopped.
    """
    try:
        value = parse_strict_json(text, max_depth=max_depth)
    except StrictJsonError as problem:
        return _json_line_error(problem, text, line)
    if not isinstance(value, dict):
        return LineError(
            line=line,
            code="INVALID_COMMAND",
            message=f"line {line}: a command must be a JSON object, got {_json_type_name(value)}",
            raw=text,
        )
    return command_from_mapping(value, line=line)


def unclosed_object_error(text: str, *, line: int, max_depth: int, cut_by: int | None) -> LineError:
    """An NDJSON object still open when the next one starts (line `cut_by`) or the file ends.

    The parser's own error is given when it stops inside the text (a bad token, a duplicate
    key): that is where the object went wrong. Stopping at its end only means it is cut short.
    """
    try:
        parse_strict_json(text, max_depth=max_depth)
    except StrictJsonError as problem:
        cut_short = problem.position is not None and problem.position >= len(text.rstrip())
        if not cut_short:
            return _json_line_error(problem, text, line)
    until = "the end of the file" if cut_by is None else f"line {cut_by}, where an object starts"
    return LineError(
        line=line,
        code="INVALID_JSON",
        message=f"line {line}: the object that starts on this line is not closed before {until}",
        raw=text,
    )


def _json_line_error(problem: StrictJsonError, text: str, line: int) -> LineError:
    detail = problem.detail
    if problem.position is not None and "\n" in text[: problem.position]:
        before = text[: problem.position]
        where = line + before.count("\n")
        column = problem.position - before.rfind("\n")
        detail = f"invalid JSON: {problem.reason} on line {where}, character {column}"
    return LineError(line=line, code=problem.code, message=f"line {line}: {detail}", raw=text)
