"""CSV: the SPEC §3 flat layout in delimited text; line = record number, the header is line 1.

Rules chosen here (not in the SPEC):

- CSV delimiter: chosen by parsing the first 64 KB with each candidate
  (, ; tab |) and keeping the one that splits the header into columns, one of
  them a command column's name, and gives every sampled row the header's cell
  count (then: more such rows, more columns, the earlier candidate). A
  candidate that leaves a quoted cell followed by anything but itself is out. csv.Sniffer guesses from character
  frequencies and is misled by free text (a `;` inside a comment column) and
  by quoted cells holding other candidates, which this check is not.
- A malformed record is a line error and the file goes on, as in NDJSON: bytes
  the encoding cannot decode past the first 64 KB (INVALID_ENCODING, the row's
  cells kept with U+FFFD in their place; in the first 64 KB they say the file is
  in another encoding and fail it: text.encoding_checked), a bare CR inside an unquoted cell (INVALID_CSV), one
  physical line longer than `max_line_bytes` (LINE_TOO_LONG, read in bounded
  pieces and dropped). Only a record that spreads over several physical lines
  past `max_line_bytes` (an unclosed quote) fails the file (LINE_TOO_LONG): where
  the next record starts cannot be known. The runner's message then says which
  lines were applied.
- A quoted cell still open at the end of the file (an unclosed quote, the rest of
  the file shorter than `max_line_bytes`) is a line error (INVALID_CSV) at the
  record's first line, keeping that physical line; the physical lines after it
  are read again as records, the stray quote taken as the typo it was. Never
  one silent cell holding the rest of the file.
- A cell holding a line break makes one record of several physical lines: the
  line number counts records, not physical lines.
- A file whose first 64 KB hold CR line endings and no LF (classic Mac OS, Excel for Mac's
  "CSV (Macintosh)") is read with each CR as a line end (in an ASCII-compatible encoding).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import IO, Any

from imports.flat_layout import RESERVED_COLUMNS
from imports.formats import FileFormat
from imports.readers.base import FileError, ImportRecord, Reader, ReaderOptions
from imports.readers.flat_rows import columns_of_header, row_to_record
from imports.readers.text import (
    SNIFF_BYTES,
    drain_line,
    encoding_checked,
    line_too_long,
    open_binary,
    resolve_encoding,
    skip_bom,
)
from profiles.commands import LineError

CSV_DELIMITERS = (",", ";", "\t", "|")
_END = object()


def _choose_delimiter(sample: str) -> str:
    """The candidate that splits the header and agrees best with the sampled rows.

    Ranked by: splits the header at all, gives a header cell that is a command
    column's name (`email_hash`, `operation`…: a file needs one, and a header
    such as `email_hash;note (a, b, c)` split at its commas has none), every
    sampled row has the header's cell count, how many rows do, how many
    columns; ties go to the earlier candidate, so a one-column file is
    comma-separated. Candidates that leave a quoted cell followed by something
    else than themselves (strict parsing) are out, unless that rules out all of
    them (a sloppily quoted file).
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
    names_a_column = any(cell.strip() in RESERVED_COLUMNS for cell in rows[0])
    return (width > 1, names_a_column, matching == len(sampled), matching, width)


def _complete_lines(sample: bytes, whole_file: bool) -> bytes:
    if whole_file:
        return sample
    cut = sample.rfind(b"\n")
    return sample[: cut + 1] if cut >= 0 else sample


class _CarriageReturnsAsLineFeeds(io.RawIOBase):
    """A raw file read with every CR byte as LF (for files whose lines end in CR alone)."""

    def __init__(self, raw: io.RawIOBase) -> None:
        self.raw = raw

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int | None:
        count = self.raw.readinto(buffer)
        if count:
            view = memoryview(buffer).cast("B")
            view[:count] = bytes(view[:count]).replace(b"\r", b"\n")
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def close(self) -> None:
        self.raw.close()
        super().close()


class _LineTooLong(Exception):
    """One physical line over the limit, drained: a line error, the file goes on."""


class _CsvLineSource:
    """Decoded physical lines for csv.reader, keeping the byte offset and line counts.

    csv.reader pulls lines only until the record in hand is complete, so after
    a record `offset` is exactly where the next record starts. The bytes of the
    record in hand are kept (at most `limit` + 2 of them) for its line error.
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
        self.record_start = offset
        self.record_data: list[bytes] = []
        self.undecodable: UnicodeDecodeError | None = None
        # The file ended inside the record in hand: csv.reader asks for more lines only
        # within a quoted cell, so that cell was never closed.
        self.unclosed = False

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if not self.record_bytes:
            self.record_start = self.offset
        data = self.stream.readline(self.limit + 2)
        if not data:
            self.unclosed = self.record_bytes > 0
            raise StopIteration
        line = self.records_done + 1
        self.offset += len(data)
        # csv.reader ends a record at the end of each string it is given, so a
        # cut line must stop here rather than be fed in pieces.
        cut_line = len(data) == self.limit + 2 and not data.endswith(b"\n")
        if cut_line and not self.record_bytes:
            self.offset += drain_line(self.stream)
            raise _LineTooLong()
        self.record_bytes += len(data)
        if cut_line or self.record_bytes > self.limit + 2:
            raise FileError(
                "LINE_TOO_LONG",
                f"line {line}: a record spread over several lines is longer than {self.limit} "
                "bytes (an unclosed quote?): the rest of the file cannot be read",
                line=line,
            )
        self.record_data.append(data)
        try:
            return data.decode(self.encoding)
        except UnicodeDecodeError as problem:
            if self.undecodable is None:
                self.undecodable = problem
            return data.decode(self.encoding, errors="replace")

    def record_text(self) -> str:
        return b"".join(self.record_data).decode(self.encoding, errors="replace")

    def record_finished(self) -> None:
        self.records_done += 1
        self.record_bytes = 0
        self.record_data = []
        self.undecodable = None
        self.unclosed = False

    def after_first_line(self) -> int:
        """The offset of the physical line after the record's first one (where reading goes on
        after an unclosed quote)."""
        return self.record_start + len(self.record_data[0])


class CsvReader(Reader):
    format = FileFormat.CSV
    delimiter: str

    def __init__(self, path: str, options: ReaderOptions) -> None:
        super().__init__(path, options)
        self._encoding = resolve_encoding(options.encoding)
        if options.delimiter is not None and len(options.delimiter) != 1:
            raise FileError("INVALID_DELIMITER", "the delimiter must be one character")
        # csv's default field limit (128 KB) would cut a legitimate long cell.
        csv.field_size_limit(max(csv.field_size_limit(), options.max_line_bytes))
        with open_binary(path) as stream:
            start = skip_bom(stream, self._encoding)
            sample = stream.read(SNIFF_BYTES)
        encoding_checked(sample, self._encoding, whole_file=len(sample) < SNIFF_BYTES)
        # Lines that end in CR alone (classic Mac OS, Excel for Mac's "CSV (Macintosh)") are
        # read with each CR as a line feed: the same number of bytes, so offsets hold.
        self._cr_lines = (
            b"\r" in sample and b"\n" not in sample and "\r".encode(self._encoding) == b"\r"
        )
        if self._cr_lines:
            sample = sample.replace(b"\r", b"\n")
        self.delimiter = options.delimiter or self._sniff(sample)
        with self._open() as stream:
            stream.seek(start)
            source = self._line_source(stream, start, 0)
            try:
                header = next(csv.reader(source, delimiter=self.delimiter), None)
            except csv.Error as problem:
                raise FileError("INVALID_CSV", f"line 1: {problem}", line=1) from None
            except _LineTooLong:
                raise FileError(
                    "LINE_TOO_LONG",
                    f"line 1: the header is longer than {options.max_line_bytes} bytes",
                    line=1,
                ) from None
        if source.unclosed:
            raise FileError(
                "INVALID_CSV", "line 1: a quoted cell of the header is never closed", line=1
            )
        if source.undecodable is not None:
            raise FileError(
                "INVALID_ENCODING",
                f"line 1: byte {source.undecodable.start + 1} of the header is not valid "
                f"{self._encoding}; say which encoding the file uses",
                line=1,
            )
        if header is None:
            raise FileError("NO_HEADER", "the file is empty: expected a header line", line=1)
        self.columns = columns_of_header(
            header, options.column_mapping, max_columns=options.max_columns
        )
        self.headers = [column.header for column in self.columns]
        self._data_offset = source.offset
        self.position = source.offset

    def _open(self) -> IO[bytes]:
        stream = open_binary(self.path)
        if not self._cr_lines:
            return stream
        return io.BufferedReader(_CarriageReturnsAsLineFeeds(stream.detach()))

    def _sniff(self, sample: bytes) -> str:
        whole_file = len(sample) < SNIFF_BYTES
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

    def _rows_at(
        self, stream: IO[bytes], offset: int, records_before: int
    ) -> tuple[_CsvLineSource, Iterator[list[str]]]:
        """The file's rows read from `offset`, the records before it counted."""
        stream.seek(offset)
        source = self._line_source(stream, offset, records_before)
        return source, csv.reader(source, delimiter=self.delimiter)

    def _rows_after_unclosed(
        self, stream: IO[bytes], source: _CsvLineSource
    ) -> tuple[_CsvLineSource, Iterator[list[str]]]:
        """After a quote never closed: its record counted, the rows from its second line."""
        return self._rows_at(stream, source.after_first_line(), source.records_done + 1)

    def iterate(
        self, *, after_line: int = 0, at_offset: int | None = None
    ) -> Iterator[ImportRecord]:
        with self._open() as stream:
            if at_offset is None:
                offset, records_before = self._data_offset, 1  # the header is line 1
            else:
                offset, records_before = at_offset, after_line
            source, rows = self._rows_at(stream, offset, records_before)
            while True:
                line = source.records_done + 1
                record = self._next_record(rows, source, line)
                if record is _END:
                    return
                if source.unclosed:
                    source, rows = self._rows_after_unclosed(stream, source)
                else:
                    source.record_finished()
                if line <= after_line or record is None:
                    continue
                self.position = source.offset
                yield record

    def _next_record(self, rows: Iterator[list[str]], source: _CsvLineSource, line: int) -> Any:
        """Record `line`: its command or line error, None for an empty row, _END at the end."""
        try:
            cells = next(rows)
        except StopIteration:
            return _END
        except _LineTooLong:
            return line_too_long(line, self.options.max_line_bytes)
        except csv.Error as problem:
            # csv.reader starts afresh at the next call: the file goes on.
            return LineError(
                line=line,
                code="INVALID_CSV",
                message=f"line {line}: {problem}",
                raw=source.record_text(),
            )
        if source.unclosed:
            first = source.record_data[0].decode(self._encoding, errors="replace")
            return LineError(
                line=line,
                code="INVALID_CSV",
                message=f"line {line}: a quoted cell opened on this line is never closed; the "
                "lines after it are read as records",
                raw=first,
            )
        record = row_to_record(self.columns, cells, line=line, options=self.options, typed=False)
        problem = source.undecodable
        if problem is None:
            return record
        return LineError(
            line=line,
            code="INVALID_ENCODING",
            message=f"line {line}: byte {problem.start + 1} of a line of the record is not "
            f"valid {self._encoding}; say which encoding the file uses",
            raw=getattr(record, "raw", None) or source.record_text(),
        )

    def _count_records(self) -> int | None:
        """Non-empty records after the header, read in bounded lines as `iterate` does (a
        50 MB line is never held whole); a malformed record counts as one."""
        count = 0
        with self._open() as stream:
            source, rows = self._rows_at(stream, self._data_offset, 1)
            while True:
                try:
                    cells = next(rows)
                except StopIteration:
                    return count
                except (_LineTooLong, csv.Error):
                    cells = ["malformed"]
                if source.unclosed:  # one line error, then the lines after it as `iterate`
                    source, rows = self._rows_after_unclosed(stream, source)
                    count += 1
                    continue
                source.record_finished()
                if any(cells):
                    count += 1
