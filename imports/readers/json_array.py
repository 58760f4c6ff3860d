"""A JSON file holding one array of command objects; line = element index from 1.

The array is cut into elements by a byte scanner (`JsonArraySplitter`) that
never holds more than one element, so memory stays flat whatever the file size;
each element is then parsed alone by the strict parser. A broken element is a
line error as long as its brackets and quotes balance; structural damage (an
unclosed array, data after the closing `]`, a file that is not an array) is a
FileError. An empty element (a doubled or trailing comma) is a line error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from imports.formats import FileFormat
from imports.readers.base import FileError, ImportRecord, Reader, ReaderOptions
from imports.readers.json_scan import COMPLETE_STRING, BoundedBytes, BracketWalker
from imports.readers.text import (
    READ_CHUNK,
    SNIFF_BYTES,
    command_from_json_text,
    encoding_checked,
    line_too_long,
    line_undecodable,
    open_binary,
    resolve_encoding,
    skip_bom,
)
from profiles.commands import LineError


@dataclass(frozen=True)
class ArrayElement:
    text: bytes | None  # None when longer than the limit (dropped while scanning)
    end_offset: int  # offset of the "," or "]" that ends it


# Outside the array and between elements: the next structural byte.
_STRUCTURAL = re.compile(rb'[\[\]{},"]')
# At the element's own level: skip in one match everything that cannot change the
# element's extent (plain bytes and whole strings). Deeper, `BracketWalker` follows.
_SKIP_IN_ELEMENT = re.compile(rb'(?:[^"\[\]{},]++|' + COMPLETE_STRING + rb")*+", re.DOTALL)


class JsonArraySplitter:
    """Cuts a top-level JSON array into element texts, one chunk at a time.

    Only brackets and strings are understood (`json_scan`); each element is then parsed by
    the strict parser, so a broken element is a line error as long as its brackets and
    quotes balance.
    """

    def __init__(self, stream: IO[bytes], *, offset: int, resume: bool, max_bytes: int) -> None:
        self.stream = stream
        self.base = offset  # file offset of the current chunk's first byte
        # Depth 1 = inside the top-level array, at the level of its elements.
        self.walker = BracketWalker(depth=1 if resume else 0)
        self.element = BoundedBytes(max_bytes)
        self.awaiting_separator = resume  # resuming right after an element
        self.closed = False
        self._start_element(after_comma=False)

    def _start_element(self, *, after_comma: bool) -> None:
        self.element.clear()
        self.has_content = False
        self.after_comma = after_comma

    def _finish_element(self, end_offset: int) -> ArrayElement:
        return ArrayElement(self.element.take(), end_offset)

    def elements(self) -> Iterator[ArrayElement]:
        while chunk := self.stream.read(READ_CHUNK):
            yield from self._scan(chunk)
            self.base += len(chunk)
        if self.walker.in_string or self.walker.depth > 0:
            raise FileError("INVALID_JSON", "the JSON array is not closed: the file ends inside it")
        if not self.closed:
            raise FileError("NOT_AN_ARRAY", "the file is empty: expected a JSON array")

    def _scan(self, chunk: bytes) -> Iterator[ArrayElement]:
        pos, end = 0, len(chunk)
        self.element_from = 0  # where the current element's bytes start in this chunk
        walker = self.walker
        while pos < end:
            if walker.in_string or walker.depth > 1:
                pos = walker.walk(chunk, pos, down_to=1)
            elif self.closed or walker.depth == 0 or self.awaiting_separator:
                pos = self._scan_outside_element(chunk, pos)
            else:
                run = _SKIP_IN_ELEMENT.match(chunk, pos)
                assert run is not None  # the pattern also matches the empty run
                run_end = run.end()
                if not self.has_content and chunk[pos:run_end].strip():
                    self.has_content = True
                if run_end < end:
                    element = self._element_byte(chunk, run_end)
                    if element is not None:
                        yield element
                pos = run_end + 1
        if walker.depth >= 1 and not self.closed and not self.awaiting_separator:
            self.element.keep(chunk[self.element_from : end])

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
        if self.walker.depth == 0:
            if byte != 0x5B:  # "["
                raise FileError("NOT_AN_ARRAY", "the file must hold a JSON array of commands")
            self.walker.depth = 1
        elif byte == 0x2C:  # "," after the element we resumed behind
            self.awaiting_separator = False
            self._start_element(after_comma=True)
        elif byte == 0x5D:  # "]"
            self.walker.depth, self.closed = 0, True
        else:
            raise FileError("INVALID_JSON", f"expected ',' or ']' at byte {self.base + at + 1}")
        self.element_from = at + 1
        return at + 1

    def _element_byte(self, chunk: bytes, at: int) -> ArrayElement | None:
        """At the element's level: a comma or "]" ends it, a quote or bracket goes deeper."""
        byte = chunk[at]
        if byte in (0x2C, 0x5D):  # "," or "]" ends the element
            self.element.keep(chunk[self.element_from : at])
            element = None
            if self.has_content or self.after_comma:
                element = self._finish_element(self.base + at)
            if byte == 0x2C:
                self._start_element(after_comma=True)
                self.element_from = at + 1
            else:
                self.walker.depth, self.closed = 0, True
            return element
        self.has_content = True
        if byte == 0x22:
            self.walker.in_string = True  # a string that goes on in the next chunk
        elif byte in (0x5B, 0x7B):
            self.walker.depth += 1
        # a "}" at depth 1 is a broken element: the strict parser reports it
        return None

    def _expect_whitespace(self, gap: bytes, offset: int) -> None:
        if gap.strip():
            if self.closed:
                self._fail_trailing(offset)
            if self.walker.depth == 0:
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
        self._encoding = resolve_encoding(options.encoding)
        with open_binary(path) as stream:
            start = skip_bom(stream, self._encoding)
            head = stream.read(SNIFF_BYTES)
        encoding_checked(head, self._encoding, whole_file=len(head) < SNIFF_BYTES)
        head = head.lstrip()
        if not head:
            raise FileError("NOT_AN_ARRAY", "the file is empty: expected a JSON array")
        if not head.startswith(b"["):
            raise FileError("NOT_AN_ARRAY", "the file must hold a JSON array of commands")
        self.position = start

    def iterate(
        self, *, after_line: int = 0, at_offset: int | None = None
    ) -> Iterator[ImportRecord]:
        with open_binary(self.path) as stream:
            if at_offset is None:
                offset, line = skip_bom(stream, self._encoding), 0
            else:
                stream.seek(at_offset)
                offset, line = at_offset, after_line
            splitter = JsonArraySplitter(
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

    def _count_records(self) -> int:
        """The elements of the array, scanned without being parsed."""
        with open_binary(self.path) as stream:
            start = skip_bom(stream, self._encoding)
            splitter = JsonArraySplitter(
                stream, offset=start, resume=False, max_bytes=self.options.max_line_bytes
            )
            return sum(1 for _ in splitter.elements())

    def _record(self, element: ArrayElement, line: int) -> ImportRecord:
        if element.text is None:
            return line_too_long(line, self.options.max_line_bytes)
        try:
            text = element.text.decode(self._encoding).strip()
        except UnicodeDecodeError as problem:
            return line_undecodable(line, element.text, problem, self._encoding)
        if not text:
            return LineError(
                line=line,
                code="INVALID_JSON",
                message=f"line {line}: empty element (a doubled or trailing comma)",
                raw="",
            )
        return command_from_json_text(text, line=line, max_depth=self.options.max_depth)
