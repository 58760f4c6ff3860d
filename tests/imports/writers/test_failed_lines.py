"""The failed-lines file: source format and encoding, `_line` and `_error`, fixed lines re-import."""

from __future__ import annotations

import csv
import io
import json

import openpyxl
import pytest

from imports.formats import FileFormat
from imports.readers import ReaderOptions, open_reader
from profiles.commands import LineError
from tests.imports.readers.helpers import past_the_encoding_sample
from tests.imports.writers.helpers import (
    as_commands,
    failed_file,
    file_holding,
    read_bytes,
    xlsx_rows,
)

NDJSON_SOURCE = (
    "\n".join(
        [
            '{"operation":"UPSERT","email_hash":"h1","user_profile":{"a":1}}',
            '{"operation":"UPSRT","email_hash":"h2","user_profile":{"a":2,"b":[1,{"c":null}]}}',
            '{"operation":"UPSERT","email_hash":"h3","user_profile":{"a":3,}}',
            '{"operation":"UPSRT","user_account_id":"x","compartment_id":1606,"user_profile":{}}',
            '{"operation":"DELETE","email_hash":"h5"}',
        ]
    )
    + "\n"
)


@pytest.mark.parametrize("fmt", [FileFormat.NDJSON, FileFormat.JSON])
def test_failed_json_lines_keep_the_record_and_add_line_and_error(fmt):
    source = (
        NDJSON_SOURCE
        if fmt is FileFormat.NDJSON
        else "[" + NDJSON_SOURCE.strip().replace("\n", ",\n") + "]"
    )
    errors = [r for r in read_bytes(source.encode(), fmt) if isinstance(r, LineError)]
    failed = failed_file(errors, fmt)

    entries = json.loads(failed) if fmt is FileFormat.JSON else map(json.loads, failed.splitlines())
    assert [(entry["_line"], entry["_error"]) for entry in entries] == [
        (error.line, error.message) for error in errors
    ]
    again = read_bytes(failed, fmt)
    assert [(e.code, e.identifier) for e in again] == [
        (errors[0].code, errors[0].identifier),
        ("UNKNOWN_FIELD", ""),  # the one that did not parse holds its text under _raw
        (errors[2].code, errors[2].identifier),
    ]
    assert again[1].raw["_raw"] == errors[1].raw


@pytest.mark.parametrize("fmt", [FileFormat.NDJSON, FileFormat.JSON])
def test_fixed_failed_json_lines_reimport_as_the_intended_commands(fmt):
    source = (
        NDJSON_SOURCE
        if fmt is FileFormat.NDJSON
        else "[" + NDJSON_SOURCE.strip().replace("\n", ",\n") + "]"
    )
    errors = [r for r in read_bytes(source.encode(), fmt) if isinstance(r, LineError)]
    failed = failed_file(errors, fmt).replace(b"UPSRT", b"UPSERT")
    entries = json.loads(failed) if fmt is FileFormat.JSON else map(json.loads, failed.splitlines())
    # Staff replace the entry of the record that did not parse by its fixed text.
    texts = [
        entry["_raw"].replace('"a":3,}', '"a":3}') if "_raw" in entry else json.dumps(entry)
        for entry in entries
    ]
    fixed = ("[" + ",\n".join(texts) + "]" if fmt is FileFormat.JSON else "\n".join(texts)).encode()

    intended = [
        r
        for r in read_bytes(
            source.replace("UPSRT", "UPSERT").replace('"a":3,}', '"a":3}').encode(), fmt
        )
        if r.line in (2, 3, 4)
    ]
    assert as_commands(read_bytes(fixed, fmt)) == as_commands(intended)


def test_failed_ndjson_line_too_long_keeps_only_line_and_error():
    source = (
        b'{"operation":"UPSERT","email_hash":"h","user_profile":{"blob":"' + b"x" * 2000 + b'"}}\n'
    )
    errors = read_bytes(source, FileFormat.NDJSON, max_line_bytes=100)
    assert json.loads(failed_file(errors, FileFormat.NDJSON)) == {
        "_line": 1,
        "_error": errors[0].message,
    }


def test_failed_ndjson_lines_are_written_in_the_source_encoding():
    source = '{"operation":"UPSRT","email_hash":"h","user_profile":{"ville":"Orléans"}}\n'
    errors = read_bytes(source.encode("latin-1"), FileFormat.NDJSON, encoding="latin-1")
    failed = failed_file(errors, FileFormat.NDJSON, encoding="latin-1")
    again = only_error(read_bytes(failed, FileFormat.NDJSON, encoding="latin-1"))
    assert again.raw["user_profile"] == {"ville": "Orléans"}


def only_error(records):
    assert len(records) == 1 and isinstance(records[0], LineError), records
    return records[0]


def test_failed_ndjson_undecodable_line_is_written_back_as_its_text():
    bad = b'{"operation":"UPSERT","email_hash":"\xff","user_profile":{}}'
    # Past the first 64 KB, where a bad byte is its line's error, not the file's encoding.
    filler, _ = past_the_encoding_sample(
        b'{"operation":"UPSERT","email_hash":"ok","user_profile":{}}\n'
    )
    errors = [
        e for e in read_bytes(filler + bad + b"\n", FileFormat.NDJSON) if isinstance(e, LineError)
    ]
    entry = json.loads(failed_file(errors, FileFormat.NDJSON))
    assert entry["_raw"] == bad.decode("utf-8", errors="replace") and entry["_error"]


CSV_SOURCE = (
    "operation;email_hash;name;age:int;nl.on:bool\n"
    "UPSERT;h1;Zoé;1;yes\n"
    "UPSRT;h2;Zoé;2;no\n"
    "UPSERT;h3;Léa;x;\n"
    'UPSERT;h4;"a;b";4;true\n'
)


def test_failed_csv_lines_add_two_columns_in_the_source_layout():
    source = CSV_SOURCE.encode("latin-1")
    reader_errors = [
        r
        for r in read_bytes(source, FileFormat.CSV, encoding="latin-1")
        if isinstance(r, LineError)
    ]
    with file_holding(source, ".csv") as path:
        reader = open_reader(path, FileFormat.CSV, ReaderOptions(encoding="latin-1"))
        headers, delimiter = reader.headers, reader.delimiter
    failed = failed_file(
        reader_errors, FileFormat.CSV, headers=headers, delimiter=delimiter, encoding="latin-1"
    )

    rows = list(csv.reader(io.StringIO(failed.decode("latin-1")), delimiter=";"))
    assert rows[0] == [*headers, "_line", "_error"]
    assert rows[1][:5] == ["UPSRT", "h2", "Zoé", "2", "no"]
    assert rows[1][5:] == ["3", reader_errors[0].message]
    assert rows[2][:6] == ["UPSERT", "h3", "Léa", "x", "", "4"]


def test_fixed_failed_csv_lines_reimport_as_the_intended_commands():
    source = CSV_SOURCE.encode()
    errors = [r for r in read_bytes(source, FileFormat.CSV) if isinstance(r, LineError)]
    failed = failed_file(
        errors, FileFormat.CSV, headers=CSV_SOURCE.split("\n")[0].split(";"), delimiter=";"
    )
    fixed = failed.replace(b'"UPSRT"', b'"UPSERT"').replace(b'"x"', b'"3"')

    intended = read_bytes(
        CSV_SOURCE.replace("UPSRT", "UPSERT").replace(";x;", ";3;").encode(), FileFormat.CSV
    )
    assert as_commands(read_bytes(fixed, FileFormat.CSV)) == as_commands(intended[1:3])


def test_failed_csv_without_headers_takes_them_from_the_rows():
    errors = [
        r for r in read_bytes(CSV_SOURCE.encode(), FileFormat.CSV) if isinstance(r, LineError)
    ]
    rows = list(csv.reader(io.StringIO(failed_file(errors, FileFormat.CSV).decode())))
    assert rows[0] == [
        "operation",
        "email_hash",
        "name",
        "age:int",
        "nl.on:bool",
        "_line",
        "_error",
    ]


def test_failed_xlsx_lines_keep_cell_types_and_reimport():
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in [
        ["operation", "email_hash", "age:int", "vip", "formula", "_line", "_error"],
        ["UPSRT", "h1", 42, True, "=1+1", 9, "old error"],
        ["UPSERT", "h2", 3.5, False, "#N/A", None, None],
    ]:
        sheet.append(row)
    source = io.BytesIO()
    workbook.save(source)
    errors = read_bytes(source.getvalue(), FileFormat.XLSX)
    assert [e.code for e in errors] == ["INVALID_OPERATION", "INVALID_CELL", "INVALID_CELL"][
        : len(errors)
    ]

    with file_holding(source.getvalue(), ".xlsx") as path:
        headers = open_reader(path, FileFormat.XLSX).headers
    failed = failed_file(errors, FileFormat.XLSX, headers=headers)
    rows = xlsx_rows(failed)
    assert rows[0] == ["operation", "email_hash", "age:int", "vip", "formula", "_line", "_error"]
    assert rows[1][:4] == ["UPSRT", "h1", 42, True]
    assert rows[1][5] == 2
    assert rows[2][4] == "#N/A"  # written back as the text it was, not as an error cell
    again = read_bytes(failed, FileFormat.XLSX)
    assert [(e.code, e.identifier) for e in again] == [(e.code, e.identifier) for e in errors]
