"""What every reader shares: the reader interface, its options, and the file-level error.

`open_reader(path, fmt, options)` checks what can be checked up front (encoding,
header, zip sizes) and raises `FileError` for a file-level problem; iterating
the reader yields a `ProfileCommand` or a `LineError` per record, in file order.
A file-level problem found later (undecodable CSV bytes on line 90 000, an
unclosed JSON array) raises `FileError` from the iteration: the commands already
yielded stay valid, the execution fails.

Memory stays flat whatever the file size: NDJSON and CSV are read line by line
with a bounded `readline`, JSON arrays and NDJSON objects spread over several
lines are cut out by a byte scanner (`json_scan`) that never holds more than one
record, and XLSX goes through openpyxl's read-only mode after a zip-size check.

Resuming: `reader.position` is the byte offset after the last yielded record
(NDJSON, JSON, CSV; None for XLSX). `reader.iterate(after_line=N, at_offset=P)`
restarts there without parsing what comes before (NDJSON counts the line breaks
before P: a record spread over several lines is numbered by its first one); with
`after_line` alone the records up to line N are read but not parsed.

Counting: `reader.count_records()` is the number of records a fast pass over the
file finds (blank lines and empty rows left out), or None when that is not cheap
to know (XLSX) or the file cannot be read that far.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from imports.column_mapping import ColumnMapping
from imports.formats import FileFormat
from profiles.commands import LineError, ProfileCommand
from profiles.strict_json import MAX_JSON_DEPTH


class FileError(Exception):
    """A file-level problem: the whole execution fails with this code and message."""

    def __init__(self, code: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line


def _setting(name: str, default: int) -> Any:
    """A cap read from Django's settings when the options are made (README, Configuration)."""

    def read() -> int:
        from django.conf import settings

        return int(getattr(settings, name, default))

    return field(default_factory=read)


@dataclass(frozen=True)
class ReaderOptions:
    encoding: str = "utf-8"  # "utf-8" accepts an optional BOM
    delimiter: str | None = None  # CSV: None = sniff among , ; \t |
    empty_cell_is_empty_string: bool = False
    max_line_bytes: int = 1_000_000
    max_depth: int = MAX_JSON_DEPTH  # parse-level bound; validation names a deeper field
    max_xlsx_uncompressed_bytes: int = 500_000_000
    # Deflate tops out near 1:1000; real sheets compress 5 to 50 times.
    max_xlsx_compression_ratio: int = 500
    # CSV/XLSX: the document import's headers → SPEC §3 columns; NDJSON/JSON do not read it.
    column_mapping: ColumnMapping | None = None
    # The caps of hostile files, each a setting (README, Configuration).
    max_columns: int = _setting("IMPORT_MAX_COLUMNS", 16_000)
    max_cells_per_row: int = _setting("IMPORT_MAX_CELLS_PER_ROW", 16_384)
    max_xlsx_shared_strings: int = _setting("IMPORT_XLSX_MAX_SHARED_STRINGS", 1_000_000)
    max_xlsx_shared_strings_bytes: int = _setting(
        "IMPORT_XLSX_MAX_SHARED_STRINGS_BYTES", 64 * 1024 * 1024
    )


ImportRecord = ProfileCommand | LineError


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

    def count_records(self) -> int | None:
        """The number of records, when it is cheap to know before applying; else None.

        A file that cannot be read to its end gives None: iterating it reports why.
        """
        try:
            return self._count_records()
        except (FileError, OSError, UnicodeError, ValueError):
            return None

    def _count_records(self) -> int | None:
        return None
