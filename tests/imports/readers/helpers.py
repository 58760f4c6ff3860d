"""Building import files and reading them back, for the reader tests."""

from __future__ import annotations

import json

import openpyxl

from imports.readers import FileFormat, ReaderOptions, open_reader
from profiles.commands import LineError


def ndjson_line(**fields) -> str:
    command = {"operation": "UPSERT", "email_hash": "h", "user_profile": {}}
    command.update(fields)
    return json.dumps(command)


def write_text(tmp_path, name: str, text: str, encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def read(path, fmt: FileFormat, **options):
    return list(open_reader(path, fmt, ReaderOptions(**options)))


def read_ndjson(tmp_path, lines: list[str], **options):
    return read(
        write_text(tmp_path, "in.ndjson", "\n".join(lines) + "\n"), FileFormat.NDJSON, **options
    )


def read_csv(tmp_path, text: str, **options):
    return read(write_text(tmp_path, "in.csv", text), FileFormat.CSV, **options)


def codes(records) -> list[tuple[int, str]]:
    return [(r.line, r.code if isinstance(r, LineError) else "OK") for r in records]


def only(records):
    assert len(records) == 1, records
    return records[0]


def write_xlsx(tmp_path, rows: list[list], name: str = "in.xlsx"):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    path = tmp_path / name
    workbook.save(path)
    return path


def past_the_encoding_sample(line: bytes) -> tuple[bytes, int]:
    """Copies of a valid `line` (with its newline) filling the first 64 KB, where the readers
    check the declared encoding (a bad byte there fails the file), so that a bad byte after
    them is one line's problem: the bytes, and how many lines they are."""
    from imports.readers.text import SNIFF_BYTES

    count = SNIFF_BYTES // len(line) + 1
    return line * count, count
