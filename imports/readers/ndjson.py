"""NDJSON: one command a line, or JSON objects spread over several lines (SPEC.md §4).

A record's line is the physical line where it starts. The reader cuts the file into
records with `NdjsonSplitter`, then parses each alone (strict JSON, `text`). How a file is
cut (rules chosen here, also in docs/rules.md):

- A line that parses alone is one record, as NDJSON is usually written (the fast path).
  Blank lines are skipped and still counted.
- A line that does not, but starts an object (`{` after optional white space), goes on
  until that object closes: its strings and brackets are followed on the bytes
  (`json_scan`), and the lines up to the closing one join it. Objects separated by white
  space on one line are one record each, numbered by that line; a line that holds anything
  else besides (a stray `}`, text after an object) stays one record, a line error.
- An object still open when a line starts with `{` in its first column, or when the file
  ends, is a line error at its first line, and that `{` line starts afresh: pretty-printers
  indent everything inside the top-level object, so such a line starts the next command.
  Unless the object expects a value there (after `:`, `[`, or `,` in an array): then the
  `{` opens a nested object, as printers that do not indent (`indent=0`) write it.
- A record over `max_line_bytes` (one line, or an object over several) is LINE_TOO_LONG
  at its first line. Its bytes are followed, not kept, so reading goes on right after it.

`position` is the byte offset after the last record yielded: after its line, or right
after it when another object follows on that line. Resuming there counts the line breaks
before it (a streaming pass, nothing parsed), since an object spread over several lines
ends on a later line than the one it is numbered by.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import IO, NamedTuple

from imports.formats import FileFormat
from imports.readers.base import ImportRecord, Reader, ReaderOptions
from imports.readers.json_scan import BoundedBytes, BracketWalker, expects_value, is_one_object
from imports.readers.text import (
    SNIFF_BYTES,
    PhysicalLine,
    command_from_json_text,
    drain_line,
    encoding_checked,
    line_breaks_before,
    line_too_long,
    line_undecodable,
    open_binary,
    read_bounded_line,
    resolve_encoding,
    skip_bom,
    unclosed_object_error,
)
from profiles.commands import LineError

_OPEN_BRACE = 0x7B
_NOT_SPACE = re.compile(rb"\S")


class SourceRecord(NamedTuple):  # a tuple: one is built for every record
    """One record as cut from the file, before parsing."""

    line: int  # the physical line where it starts
    text: bytes | None  # None when over max_line_bytes: not kept
    end_offset: int  # the byte offset after it, where a resumed read starts
    closed: bool = True  # False: an object cut short by the next `{` line or the end of file
    cut_by: int | None = None  # the line that cut it short; None for the end of the file
    parsed: ImportRecord | None = None  # the fast path's result for a whole line


# Parses one line alone (the fast path); None when the line is not to be parsed.
LineParser = Callable[[bytes, int], ImportRecord | None]


class NdjsonSplitter:
    """Cuts an NDJSON stream into records, one bounded physical line at a time."""

    def __init__(
        self,
        stream: IO[bytes],
        *,
        offset: int,
        lines_before: int,
        max_bytes: int,
        parse_line: LineParser | None = None,
    ) -> None:
        self.stream = stream
        self.offset = offset  # file offset of the next byte to read
        self.line = lines_before  # the physical line being read, once it is read
        self.max_bytes = max_bytes
        self.parse_line = parse_line
        self.walker = BracketWalker()
        self.kept = BoundedBytes(max_bytes)
        self.open_line: int | None = None  # first line of the object being read
        self.blank_lines = 0  # blank lines inside that object, kept if it goes on

    def records(self) -> Iterator[SourceRecord]:
        while (physical := read_bounded_line(self.stream, self.max_bytes)) is not None:
            line_start = self.offset
            self.line += 1
            self.offset += physical.consumed
            content = physical.content
            if content is None:
                yield from self._long_line(physical, line_start)
                continue
            pos = 0
            if self.open_line is not None:
                if content[:1] == b"{" and not self._nests(content):
                    yield self._cut_short(cut_by=self.line, end_offset=line_start)
                else:
                    pos = self._follow_open(content)
                    if pos < 0:
                        continue  # the object goes on
                    if not content[pos:].strip():
                        yield self._close(end_offset=self.offset)
                        continue
                    yield self._close(end_offset=line_start + pos)
            yield from self._segment(content, pos, line_start)
        if self.open_line is not None:
            yield self._cut_short(cut_by=None, end_offset=self.offset)

    def _follow_open(self, content: bytes) -> int:
        """A line of the open object: where the object closes on it, or -1 when it goes on."""
        if not content.strip():
            self.blank_lines += 1  # kept only if the object goes on after it
            return -1
        pos = self.walker.walk(content, 0, down_to=0)
        breaks = 1 + self.blank_lines
        self.blank_lines = 0
        if self.kept.too_long or self.kept.size + breaks + pos > self.max_bytes:
            self.kept.grow(breaks + pos)  # dropped without building it
        else:
            self.kept.keep(b"\n" * breaks + content[:pos])
        if self.walker.depth > 0:
            self.walker.end_line()
            return -1
        return pos

    def _segment(self, content: bytes, pos: int, line_start: int) -> Iterator[SourceRecord]:
        """The records of a line from `pos`: the whole line, or what follows a record on it."""
        segment = content[pos:] if pos else content
        if not segment.strip():
            return
        parsed = self.parse_line(segment, self.line) if self.parse_line else None
        if parsed is None:
            if is_one_object(segment):  # counting or skipping: no need to parse
                yield SourceRecord(self.line, segment, self.offset)
                return
        elif not isinstance(parsed, LineError):
            yield SourceRecord(self.line, segment, self.offset, parsed=parsed)
            return
        layout = self._objects(content, pos)
        if layout is None:
            yield SourceRecord(self.line, segment, self.offset, parsed=parsed)
            return
        ends, open_from = layout
        start = pos
        for index, end in enumerate(ends):
            if index < len(ends) - 1 or open_from is not None:
                yield SourceRecord(self.line, content[start:end], line_start + end)
            else:  # the last one: to the end of the line, like a line parsed alone
                alone = parsed if len(ends) == 1 else None
                yield SourceRecord(self.line, content[start:], self.offset, parsed=alone)
            start = end
        if open_from is not None:
            self.open_line = self.line
            self.kept.keep(content[open_from:])
            self.walker.end_line()

    def _objects(self, content: bytes, pos: int) -> tuple[list[int], int | None] | None:
        """Where the objects of the line from `pos` end, and where one left open starts.

        None when the line holds anything else than objects and white space.
        """
        ends: list[int] = []
        start = pos
        while (found := _NOT_SPACE.search(content, start)) is not None:
            if content[found.start()] != _OPEN_BRACE:
                return None
            self.walker.depth = 1
            end = self.walker.walk(content, found.start() + 1, down_to=0)
            if self.walker.depth > 0:
                return ends, start
            ends.append(end)
            start = end
        return ends, None

    def _long_line(self, physical: PhysicalLine, line_start: int) -> Iterator[SourceRecord]:
        """A line over the limit: too long itself, or making the object it is part of so."""
        head = physical.head
        if self.open_line is not None and head[:1] == b"{" and not self._nests(head):
            yield self._cut_short(cut_by=self.line, end_offset=line_start)
        if self.open_line is None:
            self.open_line = self.line
            follow = head.lstrip()[:1] == b"{"  # an object that may go on past this line
            self.walker.depth = 0
        else:
            follow = True
        self.kept.grow(self.max_bytes + 1)
        if follow:
            self.walker.walk(head)
        if physical.goes_on:
            self.offset += drain_line(self.stream, self.walker.walk if follow else None)
        self.walker.end_line()
        if not follow or self.walker.depth == 0:
            yield self._close(end_offset=self.offset)

    def _close(self, *, end_offset: int) -> SourceRecord:
        assert self.open_line is not None
        record = SourceRecord(self.open_line, self.kept.take(), end_offset)
        self._forget_open()
        return record

    def _nests(self, content: bytes) -> bool:
        """Whether a line starting with `{` in its first column goes on the open object: the
        object, as read so far, expects a value there (printers that do not indent, such as
        `json.dumps(…, indent=0)`, put nested objects in the first column too)."""
        kept = self.kept.take()
        return kept is not None and expects_value(kept)

    def _cut_short(self, *, cut_by: int | None, end_offset: int) -> SourceRecord:
        assert self.open_line is not None
        text = self.kept.take()
        record = SourceRecord(self.open_line, text, end_offset, closed=False, cut_by=cut_by)
        self._forget_open()
        return record

    def _forget_open(self) -> None:
        self.open_line = None
        self.blank_lines = 0
        self.kept.clear()
        self.walker = BracketWalker()


class NdjsonReader(Reader):
    format = FileFormat.NDJSON

    def __init__(self, path: str, options: ReaderOptions) -> None:
        super().__init__(path, options)
        self._encoding = resolve_encoding(options.encoding)
        with open_binary(path) as stream:
            self.position = skip_bom(stream, self._encoding)
            sample = stream.read(SNIFF_BYTES)
        encoding_checked(sample, self._encoding, whole_file=len(sample) < SNIFF_BYTES)

    def iterate(
        self, *, after_line: int = 0, at_offset: int | None = None
    ) -> Iterator[ImportRecord]:
        with open_binary(self.path) as stream:
            start = skip_bom(stream, self._encoding)
            if at_offset is None or at_offset <= start:
                skip_to = after_line if at_offset is None else 0
                lines_before, offset = 0, start
            else:
                # Every record from at_offset on comes after the checkpoint, the rest of
                # its line included.
                skip_to = 0
                lines_before, offset = line_breaks_before(stream, at_offset), at_offset

            def parse_line(content: bytes, line: int) -> ImportRecord | None:
                return None if line <= skip_to else self._parse(content, line)

            splitter = NdjsonSplitter(
                stream,
                offset=offset,
                lines_before=lines_before,
                max_bytes=self.options.max_line_bytes,
                parse_line=parse_line,
            )
            for source in splitter.records():
                if source.line <= skip_to:
                    continue  # resuming by line number: cut, not parsed
                self.position = source.end_offset
                yield self._record(source)

    def _parse(self, content: bytes, line: int) -> ImportRecord:
        try:
            text = content.decode(self._encoding)
        except UnicodeDecodeError as problem:
            return line_undecodable(line, content, problem, self._encoding)
        return command_from_json_text(text, line=line, max_depth=self.options.max_depth)

    def _record(self, source: SourceRecord) -> ImportRecord:
        if source.parsed is not None:
            return source.parsed
        if source.text is None:
            return line_too_long(source.line, self.options.max_line_bytes)
        if source.closed:
            return self._parse(source.text, source.line)
        try:
            text = source.text.decode(self._encoding)
        except UnicodeDecodeError as problem:
            return line_undecodable(source.line, source.text, problem, self._encoding)
        return unclosed_object_error(
            text, line=source.line, max_depth=self.options.max_depth, cut_by=source.cut_by
        )

    def _count_records(self) -> int:
        """The records a read would yield, cut without being parsed (broken ones count)."""
        with open_binary(self.path) as stream:
            start = skip_bom(stream, self._encoding)
            splitter = NdjsonSplitter(
                stream,
                offset=start,
                lines_before=0,
                max_bytes=self.options.max_line_bytes,
            )
            return sum(1 for _ in splitter.records())
