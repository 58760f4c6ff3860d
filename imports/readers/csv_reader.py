"""CSV: the SPEC §3 flat layout in delimited text; line = record number, the header is line 1.

Rules chosen here (not in the SPEC):

- CSV delimiter: chosen by parsing the first 64 KB with each candidate
  (, ; tab |) and keeping the one that splits the header into columns and
  gives every sampled row the header's cell count (then: more such rows, more
  columns, the earlier candidate). A candidate that leaves a quoted cell
  followed by anything but itself is out. csv.Sniffer guesses from character
  frequencies and is misled by free text (a `;` inside a comment column) and
  by quoted cells holding other candidates, which this check is not.
- Undecodable bytes fail the file (INVALID_ENCODING naming the line): a wrong
  encoding usually spoils every row. Broken quoting is INVALID_CSV; a record
  longer than `max_line_bytes` (an unclosed quote?) is LINE_TOO_LONG.
- A cell holding a line break makes one record of several physical lines: the
  line number counts records, not physical lines.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import IO

from imports.formats import FileFormat
from imports.readers.base import FileError, ImportRecord, Reader, ReaderOptions
from imports.readers.flat_rows import columns_of_header, row_to_record
from imports.readers.text import SNIFF_BYTES, open_binary, resolve_encoding, skip_bom

CSV_DELIMITERS = (",", ";", "\t", "|")


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
        self._encoding = resolve_encoding(options.encoding)
        if options.delimiter is not None and len(options.delimiter) != 1:
            raise FileError("INVALID_DELIMITER", "the delimiter must be one character")
        # csv's default field limit (128 KB) would cut a legitimate long cell.
        csv.field_size_limit(max(csv.field_size_limit(), options.max_line_bytes))
        with open_binary(path) as stream:
            start = skip_bom(stream, self._encoding)
            sample = stream.read(SNIFF_BYTES)
            self.delimiter = options.delimiter or self._sniff(sample)
            stream.seek(start)
            source = self._line_source(stream, start, 0)
            try:
                header = next(csv.reader(source, delimiter=self.delimiter), None)
            except csv.Error as problem:
                raise FileError("INVALID_CSV", f"line 1: {problem}", line=1) from None
        if header is None:
            raise FileError("NO_HEADER", "the file is empty: expected a header line", line=1)
        self.columns = columns_of_header(header, options.column_mapping)
        self.headers = [column.header for column in self.columns]
        self._data_offset = source.offset
        self.position = source.offset

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

    def iterate(
        self, *, after_line: int = 0, at_offset: int | None = None
    ) -> Iterator[ImportRecord]:
        with open_binary(self.path) as stream:
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

    def _count_records(self) -> int | None:
        """Non-empty records after the header (undecodable bytes replaced, not refused)."""
        with open_binary(self.path) as stream:
            skip_bom(stream, self._encoding)
            text = io.TextIOWrapper(stream, encoding=self._encoding, errors="replace", newline="")
            rows = csv.reader(text, delimiter=self.delimiter or ",")
            try:
                count = sum(1 for cells in rows if any(cells))
            except csv.Error:
                return None
        return max(0, count - 1)  # the header
