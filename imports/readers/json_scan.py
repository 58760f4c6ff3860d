"""Following JSON's strings and brackets through bytes read in pieces, without parsing.

The readers cut records out of a byte stream with it: `json_array` the elements of an
array, `ndjson` the objects of a stream (one a line, or pretty-printed over several). Only
strings and brackets are understood: each record is then parsed alone by the strict parser,
which reports whatever the scan let through (a `]` closing a `{`, a bad token). JSON's
structural characters are ASCII and never occur inside a UTF-8 multi-byte sequence (nor in
any ASCII-compatible one-byte encoding), so bytes can be scanned.
"""

from __future__ import annotations

import re

# A whole string, escapes included. A string that goes on past the piece does not match.
COMPLETE_STRING = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
# Everything that cannot change the depth, skipped in one match: plain bytes and whole
# strings. The run stops at a bracket, or at the quote of a string the piece does not close.
_SKIP_NESTED = re.compile(rb'(?:[^"\[\]{}]++|' + COMPLETE_STRING + rb")*+", re.DOTALL)
_OPENERS = re.compile(rb"[\[{]++")
_CLOSERS = re.compile(rb"[\]}]++")
_STRING_STOP = re.compile(rb'["\\]')
_QUOTE = 0x22
_WHOLE_STRINGS = re.compile(COMPLETE_STRING, re.DOTALL)
# For `is_one_object`: what to delete to keep quotes and brackets, and brackets as
# parentheses (the depth is all a walk counts).
_NOT_STRUCTURAL = bytes(byte for byte in range(256) if byte not in b'"[]{}')
_AS_PARENTHESES = bytes.maketrans(b"[]{}", b"()()")


def is_one_object(text: bytes) -> bool:
    """Whether `text` is one object and white space: its first `{` closes at its last `}`.

    What walking it would find, told by a few passes in C: counting needs no more.
    """
    text = text.strip()
    if text[:1] != b"{" or text[-1:] != b"}":
        return False
    if b"\\" in text:
        skeleton = _WHOLE_STRINGS.sub(b"", text).translate(None, _NOT_STRUCTURAL)
    else:  # without escapes every quote opens or closes a string: drop strings by pairs
        skeleton = text.translate(None, _NOT_STRUCTURAL).replace(b'""', b"")
        if b'"' in skeleton:  # strings holding brackets
            pieces = text.translate(None, _NOT_STRUCTURAL).split(b'"')
            skeleton = b"".join(pieces[::2]) if len(pieces) % 2 else b'"'
    if b'"' in skeleton:
        return False  # a string left open: let the walk tell
    inside = skeleton.translate(_AS_PARENTHESES)[1:-1]
    while b"()" in inside:
        inside = inside.replace(b"()", b"")
    return not inside


_BRACKETS = re.compile(rb"[\[\]{}]")


def expects_value(text: bytes) -> bool:
    """Whether JSON text cut off after `text` expects a value next: its last byte outside
    strings and white space is `:` or `[`, or `,` inside an array. A string left open, or
    anything else last, expects no value."""
    skeleton = _WHOLE_STRINGS.sub(b'""', text)
    if skeleton.count(b'"') % 2:
        return False
    last = skeleton.rstrip()[-1:]
    if last in (b":", b"["):
        return True
    if last != b",":
        return False
    open_brackets: list[bytes] = []
    for bracket in _BRACKETS.findall(skeleton):
        if bracket in b"[{":
            open_brackets.append(bracket)
        elif open_brackets:
            open_brackets.pop()
    return open_brackets[-1:] == [b"["]


class BracketWalker:
    """The depth of brackets, and whether a string is open, carried from piece to piece."""

    def __init__(self, depth: int = 0) -> None:
        self.depth = depth
        self.in_string = False
        self.escape_pending = False  # the last piece ended on a backslash inside a string

    def walk(self, piece: bytes, pos: int = 0, *, down_to: int | None = None) -> int:
        """Follow `piece` from `pos`; returns where the walk stopped.

        With `down_to`, stops right after the closing bracket that brings the depth down to
        it (at once when the depth is there already, outside a string); else at the end of
        the piece. A closing bracket at depth 0 is passed over: the parser reports it.
        """
        end = len(piece)
        if self.escape_pending and pos < end:
            self.escape_pending = False
            pos += 1  # the escaped byte
        while pos < end:
            if self.in_string:
                pos = self._string_end(piece, pos)
                continue
            if down_to is not None and self.depth <= down_to:
                return pos
            stop = _SKIP_NESTED.match(piece, pos).end()  # type: ignore[union-attr]
            if stop == end:
                return end
            if piece[stop] == _QUOTE:
                self.in_string = True
                pos = stop + 1
            elif (opened := _OPENERS.match(piece, stop)) is not None:
                self.depth += opened.end() - stop
                pos = opened.end()
            else:
                closed = _CLOSERS.match(piece, stop)
                assert closed is not None  # the run stops only at a quote or a bracket
                count = closed.end() - stop
                if down_to is not None and self.depth - count <= down_to:
                    closing = self.depth - down_to  # the bracket that reaches down_to
                    self.depth = down_to
                    return stop + closing
                self.depth = max(self.depth - count, 0)
                pos = closed.end()
        return pos

    def end_line(self) -> None:
        """A line ends: JSON strings never hold a raw line break, so none is open any more."""
        self.in_string = False
        self.escape_pending = False

    def _string_end(self, piece: bytes, pos: int) -> int:
        """Inside a string that began in an earlier piece: where it ends."""
        stop = _STRING_STOP.search(piece, pos)
        if stop is None:
            return len(piece)
        if piece[stop.start()] == _QUOTE:
            self.in_string = False
            return stop.end()
        if stop.end() < len(piece):  # a backslash: skip the escaped byte
            return stop.end() + 1
        self.escape_pending = True
        return len(piece)


class BoundedBytes:
    """The bytes of one record, kept while they fit in `max_bytes`; past that only counted."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.clear()

    def clear(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.too_long = False

    def keep(self, piece: bytes) -> None:
        self.grow(len(piece))
        if not self.too_long:
            self.parts.append(piece)

    def grow(self, size: int) -> None:
        """Count `size` more bytes; past the limit, drop what was kept (memory stays bounded)."""
        if self.too_long:
            return
        self.size += size
        if self.size > self.max_bytes:
            self.too_long = True
            self.parts = []

    def take(self) -> bytes | None:
        """The record's bytes, or None when it went past the limit."""
        return None if self.too_long else b"".join(self.parts)
