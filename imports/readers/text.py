"""Bytes to text, shared by the readers: encodings, the BOM, bounded lines, JSON records.

Rules chosen here (not in the SPEC):

- Encodings must be ASCII-compatible (UTF-8, Latin-1, cp1252, ...): lines are
  cut on bytes. A UTF-16 file is refused with a message saying so.
- UTF-8 accepts an optional BOM, stripped by hand at offset 0 (so byte offsets
  stay those of the file).
- Invalid UTF-8 inside one NDJSON line (or JSON element) is a line error
  INVALID_ENCODING: the rest of the file is fine. In CSV it is a FileError,
  because a wrong encoding usually spoils every row.
- A line is read with a bounded `readline`: one longer than `max_line_bytes` is
  drained in bounded pieces and reported (LINE_TOO_LONG), never held whole.
- NDJSON lines and JSON array elements are parsed as strict JSON
  (`imports.strict_json`); a value that is not an object is INVALID_COMMAND.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import IO, Any

from imports.readers.base import FileError, ImportRecord
from imports.strict_json import StrictJsonError, parse_strict_json
from profiles.commands import LineError, command_from_mapping

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


@dataclass(frozen=True)
class PhysicalLine:
    content: bytes | None  # without its line ending; None when longer than the limit
    consumed: int  # bytes read, line ending included


def read_bounded_line(stream: IO[bytes], limit: int) -> PhysicalLine | None:
    """The next line, never holding more than limit + 2 bytes of it; None at end of file."""
    data = stream.readline(limit + 2)
    if not data:
        return None
    consumed = len(data)
    if not data.endswith(b"\n") and consumed == limit + 2:
        while True:  # drain the rest of the over-long line in bounded pieces
            rest = stream.readline(READ_CHUNK)
            consumed += len(rest)
            if not rest or rest.endswith(b"\n"):
                break
        return PhysicalLine(None, consumed)
    if data.endswith(b"\n"):
        data = data[:-1]
    if data.endswith(b"\r"):
        data = data[:-1]
    if len(data) > limit:
        return PhysicalLine(None, consumed)
    return PhysicalLine(data, consumed)


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
