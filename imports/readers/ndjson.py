"""NDJSON: one command per physical line (SPEC.md §4); line = physical line number.

Blank lines are allowed, skipped and still counted. A line is parsed alone, so a
broken line (bad JSON, invalid bytes, over `max_line_bytes`) is a line error and
the lines around it are read as usual.
"""

from __future__ import annotations

from collections.abc import Iterator

from imports.formats import FileFormat
from imports.readers.base import ImportRecord, Reader, ReaderOptions
from imports.readers.text import (
    PhysicalLine,
    command_from_json_text,
    line_too_long,
    line_undecodable,
    open_binary,
    read_bounded_line,
    resolve_encoding,
    skip_bom,
)


class NdjsonReader(Reader):
    format = FileFormat.NDJSON

    def __init__(self, path: str, options: ReaderOptions) -> None:
        super().__init__(path, options)
        self._encoding = resolve_encoding(options.encoding)
        with open_binary(path) as stream:
            self.position = skip_bom(stream, self._encoding)

    def iterate(
        self, *, after_line: int = 0, at_offset: int | None = None
    ) -> Iterator[ImportRecord]:
        with open_binary(self.path) as stream:
            if at_offset is None:
                offset = skip_bom(stream, self._encoding)
                line = 0
            else:
                stream.seek(at_offset)
                offset, line = at_offset, after_line
            while (physical := read_bounded_line(stream, self.options.max_line_bytes)) is not None:
                line += 1
                offset += physical.consumed
                if line <= after_line:
                    continue  # resuming: counted, not parsed
                record = self._record(physical, line)
                if record is not None:
                    self.position = offset
                    yield record

    def _record(self, physical: PhysicalLine, line: int) -> ImportRecord | None:
        if physical.content is None:
            return line_too_long(line, self.options.max_line_bytes)
        try:
            text = physical.content.decode(self._encoding)
        except UnicodeDecodeError as problem:
            return line_undecodable(line, physical.content, problem, self._encoding)
        if not text.strip():
            return None  # blank lines are allowed and still counted
        return command_from_json_text(text, line=line, max_depth=self.options.max_depth)

    def _count_records(self) -> int:
        """Non-blank physical lines (an over-long line counts: it is a line error)."""
        count = 0
        with open_binary(self.path) as stream:
            skip_bom(stream, self._encoding)
            while (physical := read_bounded_line(stream, self.options.max_line_bytes)) is not None:
                if physical.content is None or physical.content.strip():
                    count += 1
        return count
