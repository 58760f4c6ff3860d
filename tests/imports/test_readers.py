from __future__ import annotations

import datetime as dt
import json
import tracemalloc
import zipfile

import openpyxl
import pytest

from imports.readers import (
    FileError,
    FileFormat,
    ReaderOptions,
    open_reader,
)
from profiles.commands import (
    AccountIdentifier,
    EmailIdentifier,
    LineError,
    Operation,
    ProfileCommand,
    UserAgentIdentifier,
)

# --------------------------------------------------------------------------- helpers


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


# --------------------------------------------------------------------------- NDJSON


def test_ndjson_lines_become_commands_with_physical_line_numbers(tmp_path):
    records = read_ndjson(
        tmp_path,
        [
            ndjson_line(user_profile={"a": 1}),
            "",
            "   ",
            ndjson_line(
                operation="DELETE", email_hash=None, user_agent_id="vec:1", user_profile=None
            ),
        ],
    )
    assert [(r.line, r.operation, r.identifier) for r in records] == [
        (1, Operation.UPSERT, EmailIdentifier("h")),
        (4, Operation.DELETE, UserAgentIdentifier("vec:1")),
    ]
    assert records[0].user_profile == {"a": 1}


def test_ndjson_requires_the_operation(tmp_path):
    record = only(read_ndjson(tmp_path, ['{"email_hash":"h","user_profile":{}}']))
    assert record.code == "MISSING_OPERATION"


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ('{"operation":"UPSERT",', "INVALID_JSON"),
        (
            '{"operation":"UPSERT","email_hash":"h","email_hash":"i","user_profile":{}}',
            "DUPLICATE_KEY",
        ),
        (
            '{"operation":"UPSERT","email_hash":"h","user_profile":{"n":{"a":1,"a":2}}}',
            "DUPLICATE_KEY",
        ),
        ('{"operation":"UPSERT","email_hash":"h","user_profile":{"n":NaN}}', "NON_FINITE_NUMBER"),
        (
            '{"operation":"UPSERT","email_hash":"h","user_profile":{"n":-Infinity}}',
            "NON_FINITE_NUMBER",
        ),
        ('{"operation":"UPSERT","email_hash":"h","user_profile":{"n":1e999}}', "NON_FINITE_NUMBER"),
        (
            '{"operation":"UPSERT","email_hash":"h","user_profile":{"n":"a\\u0000b"}}',
            "NUL_CHARACTER",
        ),
        ('{"operation":"UPSERT","email_hash":"h","user_profile":{"a\\u0000":1}}', "NUL_CHARACTER"),
        (
            '{"operation":"UPSERT","email_hash":"h","user_profile":{"n":"\\ud800"}}',
            "INVALID_UNICODE",
        ),
        ("[1, 2]", "INVALID_COMMAND"),
        ('"UPSERT"', "INVALID_COMMAND"),
        ("null", "INVALID_COMMAND"),
    ],
)
def test_ndjson_strict_json_rules_are_line_errors(tmp_path, line, code):
    records = read_ndjson(tmp_path, [ndjson_line(), line, ndjson_line()])
    assert codes(records) == [(1, "OK"), (2, code), (3, "OK")]
    assert records[1].message.startswith("line 2")
    assert records[1].raw == line


def test_escaped_backslash_before_u0000_is_not_a_nul(tmp_path):
    line = '{"operation":"UPSERT","email_hash":"h","user_profile":{"n":"a\\\\u0000"}}'
    record = only(read_ndjson(tmp_path, [line]))
    assert record.user_profile == {"n": "a\\u0000"}


def test_surrogate_pair_escape_is_a_valid_character(tmp_path):
    line = '{"operation":"UPSERT","email_hash":"h","user_profile":{"n":"\\ud83d\\ude00"}}'
    assert only(read_ndjson(tmp_path, [line])).user_profile == {"n": "\U0001f600"}


def test_raw_nul_byte_in_a_line_is_a_nul_character_error(tmp_path):
    path = tmp_path / "nul.ndjson"
    path.write_bytes(b'{"operation":"UPSERT","email_hash":"h","user_profile":{"n":"a\x00"}}\n')
    assert codes(read(path, FileFormat.NDJSON)) == [(1, "NUL_CHARACTER")]


def test_ten_thousand_deep_line_is_a_too_deep_error_not_a_crash(tmp_path):
    deep = (
        '{"operation":"UPSERT","email_hash":"h","user_profile":{"a":'
        + "[" * 10_000
        + "]" * 10_000
        + "}}"
    )
    records = read_ndjson(tmp_path, [deep, ndjson_line()])
    assert codes(records) == [(1, "TOO_DEEP"), (2, "OK")]


def test_depth_limit_counts_the_command_object(tmp_path):
    def nested(levels: int) -> str:
        # the command object (level 1), then `levels` objects, user_profile the first
        value = "1"
        for _ in range(levels):
            value = '{"k":' + value + "}"
        return '{"operation":"UPSERT","email_hash":"h","user_profile":' + value + "}"

    records = read_ndjson(tmp_path, [nested(4), nested(5)], max_depth=5)
    assert codes(records) == [(1, "OK"), (2, "TOO_DEEP")]


def test_brackets_inside_strings_do_not_count_as_depth(tmp_path):
    line = ndjson_line(user_profile={"text": "[[[[[[[[[[{{{{{{{{{{"})
    assert isinstance(only(read_ndjson(tmp_path, [line], max_depth=3)), ProfileCommand)


def test_line_longer_than_the_limit_is_a_line_error(tmp_path):
    long_line = ndjson_line(user_profile={"blob": "x" * 5000})
    records = read_ndjson(tmp_path, [ndjson_line(), long_line, ndjson_line()], max_line_bytes=1000)
    assert codes(records) == [(1, "OK"), (2, "LINE_TOO_LONG"), (3, "OK")]


def test_line_exactly_at_the_limit_is_read(tmp_path):
    line = ndjson_line()
    path = write_text(tmp_path, "crlf.ndjson", line + "\r\n" + line)
    assert codes(read(path, FileFormat.NDJSON, max_line_bytes=len(line))) == [(1, "OK"), (2, "OK")]


def test_invalid_utf8_in_one_line_is_a_line_error(tmp_path):
    path = tmp_path / "bad.ndjson"
    good = ndjson_line().encode()
    path.write_bytes(good + b"\n" + good.replace(b'"h"', b'"\xff"') + b"\n" + good + b"\n")
    records = read(path, FileFormat.NDJSON)
    assert codes(records) == [(1, "OK"), (2, "INVALID_ENCODING"), (3, "OK")]


def test_ndjson_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.ndjson"
    path.write_bytes(b"\xef\xbb\xbf" + ndjson_line().encode() + b"\n")
    assert codes(read(path, FileFormat.NDJSON)) == [(1, "OK")]


def test_ndjson_in_a_declared_latin1_encoding(tmp_path):
    path = write_text(
        tmp_path, "l1.ndjson", ndjson_line(user_profile={"city": "Orléans"}), "latin-1"
    )
    assert only(read(path, FileFormat.NDJSON, encoding="latin-1")).user_profile == {
        "city": "Orléans"
    }


def test_utf16_file_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "u16.ndjson"
    path.write_bytes(ndjson_line().encode("utf-16"))
    with pytest.raises(FileError) as caught:
        open_reader(path, FileFormat.NDJSON)
    assert caught.value.code == "UNSUPPORTED_ENCODING"
    assert "UTF-16" in caught.value.message


@pytest.mark.parametrize(
    ("encoding", "code"), [("klingon", "UNKNOWN_ENCODING"), ("utf-16", "UNSUPPORTED_ENCODING")]
)
def test_unusable_declared_encoding_fails_the_file(tmp_path, encoding, code):
    path = write_text(tmp_path, "x.ndjson", ndjson_line())
    with pytest.raises(FileError) as caught:
        open_reader(path, FileFormat.NDJSON, ReaderOptions(encoding=encoding))
    assert caught.value.code == code


def test_missing_file_fails_the_file(tmp_path):
    with pytest.raises(FileError) as caught:
        open_reader(tmp_path / "nope.ndjson", FileFormat.NDJSON)
    assert caught.value.code == "UNREADABLE_FILE"


def test_ndjson_resume_at_a_position_yields_the_same_remaining_records(tmp_path):
    lines = [ndjson_line(email_hash=f"h{i}") for i in range(10)]
    lines[4] = "{broken"
    lines.insert(6, "")
    path = write_text(tmp_path, "resume.ndjson", "\n".join(lines) + "\n")
    reader = open_reader(path, FileFormat.NDJSON)
    everything = list(reader.iterate())
    stream = reader.iterate()
    first_four = [next(stream) for _ in range(4)]
    checkpoint_line, checkpoint_offset = first_four[-1].line, reader.position
    stream.close()

    resumed = list(
        open_reader(path, FileFormat.NDJSON).iterate(
            after_line=checkpoint_line, at_offset=checkpoint_offset
        )
    )
    skipped = list(open_reader(path, FileFormat.NDJSON).iterate(after_line=checkpoint_line))
    assert resumed == everything[4:]
    assert skipped == everything[4:]


def test_resume_does_not_parse_the_skipped_lines(tmp_path):
    path = write_text(tmp_path, "r.ndjson", "{broken\n{broken\n" + ndjson_line() + "\n")
    assert codes(open_reader(path, FileFormat.NDJSON).iterate(after_line=2)) == [(3, "OK")]


def _ndjson_read_peak(tmp_path, lines: int) -> tuple[int, int]:
    path = tmp_path / f"big-{lines}.ndjson"
    line = ndjson_line(user_profile={"firstname": "David", "tags": ["a", "b"], "nl": {"on": True}})
    with path.open("w") as out:
        for index in range(lines):
            out.write(line.replace('"h"', f'"h{index}"') + "\n")
    reader = open_reader(path, FileFormat.NDJSON)
    tracemalloc.start()
    try:
        count = sum(1 for record in reader if isinstance(record, ProfileCommand))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == lines
    return peak, path.stat().st_size


def test_ndjson_is_read_with_flat_memory(tmp_path):
    small_peak, _ = _ndjson_read_peak(tmp_path, 5_000)
    large_peak, large_size = _ndjson_read_peak(tmp_path, 50_000)
    # Ten times the lines, not ten times the memory: the peak does not grow with the file.
    assert large_peak < 2 * small_peak + 64_000, (small_peak, large_peak)
    assert large_peak < large_size / 20, (large_peak, large_size)


# --------------------------------------------------------------------------- JSON array


def write_json(tmp_path, text: str):
    return write_text(tmp_path, "in.json", text)


def test_json_array_elements_are_numbered_from_one(tmp_path):
    elements = [ndjson_line(email_hash="a"), '{"x": 1}', "5", ndjson_line(email_hash="b")]
    records = read(write_json(tmp_path, "[\n" + ",\n".join(elements) + "\n]\n"), FileFormat.JSON)
    assert codes(records) == [(1, "OK"), (2, "UNKNOWN_FIELD"), (3, "INVALID_COMMAND"), (4, "OK")]
    assert [r.identifier for r in records if isinstance(r, ProfileCommand)] == [
        EmailIdentifier("a"),
        EmailIdentifier("b"),
    ]


def test_json_strings_holding_brackets_and_commas_do_not_split_elements(tmp_path):
    tricky = ndjson_line(user_profile={"s": 'a,]}["\\', "t": "}"})
    records = read(write_json(tmp_path, f"[{tricky},{tricky}]"), FileFormat.JSON)
    assert [r.user_profile for r in records] == [{"s": 'a,]}["\\', "t": "}"}] * 2


def test_json_broken_element_is_a_line_error_and_reading_goes_on(tmp_path):
    text = (
        "["
        + ",".join([ndjson_line(), '{"a": }', '{"a":1,"a":2}', "[[[[[[]]]]]]", ndjson_line()])
        + "]"
    )
    records = read(write_json(tmp_path, text), FileFormat.JSON, max_depth=4)
    assert codes(records) == [
        (1, "OK"),
        (2, "INVALID_JSON"),
        (3, "DUPLICATE_KEY"),
        (4, "TOO_DEEP"),
        (5, "OK"),
    ]


def test_json_ten_thousand_deep_element_is_too_deep(tmp_path):
    text = "[" + "[" * 10_000 + "]" * 10_000 + "," + ndjson_line() + "]"
    assert codes(read(write_json(tmp_path, text), FileFormat.JSON)) == [(1, "TOO_DEEP"), (2, "OK")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[]", []),
        ("  [ ]  \n", []),
        ("[" + ndjson_line() + ",]", [(1, "OK"), (2, "INVALID_JSON")]),
        (
            "[" + ndjson_line() + ",," + ndjson_line() + "]",
            [(1, "OK"), (2, "INVALID_JSON"), (3, "OK")],
        ),
    ],
)
def test_json_empty_arrays_and_stray_commas(tmp_path, text, expected):
    assert codes(read(write_json(tmp_path, text), FileFormat.JSON)) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ('{"operation": "UPSERT"}', "NOT_AN_ARRAY"),
        ("", "NOT_AN_ARRAY"),
        ("   ", "NOT_AN_ARRAY"),
        ("x[]", "NOT_AN_ARRAY"),
    ],
)
def test_json_file_that_is_not_an_array_fails_the_file(tmp_path, text, code):
    with pytest.raises(FileError) as caught:
        open_reader(write_json(tmp_path, text), FileFormat.JSON)
    assert caught.value.code == code


@pytest.mark.parametrize("text", ["[" + ndjson_line(), '[{"a": "unclosed', "[] []", "[1] x"])
def test_json_structural_damage_fails_the_file(tmp_path, text):
    with pytest.raises(FileError) as caught:
        read(write_json(tmp_path, text), FileFormat.JSON)
    assert caught.value.code == "INVALID_JSON"


def test_json_element_over_the_limit_is_skipped_without_being_kept(tmp_path):
    big = ndjson_line(user_profile={"blob": "x" * 300_000, "list": list(range(20_000))})
    text = f"[{ndjson_line()},{big},{ndjson_line()}]"
    records = read(write_json(tmp_path, text), FileFormat.JSON, max_line_bytes=10_000)
    assert codes(records) == [(1, "OK"), (2, "LINE_TOO_LONG"), (3, "OK")]


def test_json_invalid_utf8_in_an_element_is_a_line_error(tmp_path):
    path = tmp_path / "bad.json"
    good = ndjson_line().encode()
    path.write_bytes(b"[" + good + b"," + good.replace(b'"h"', b'"\xc3("') + b"," + good + b"]")
    assert codes(read(path, FileFormat.JSON)) == [(1, "OK"), (2, "INVALID_ENCODING"), (3, "OK")]


def test_json_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf[" + ndjson_line().encode() + b"]")
    assert codes(read(path, FileFormat.JSON)) == [(1, "OK")]


def test_json_elements_spanning_read_chunks_are_whole(tmp_path):
    # Strings with escapes and brackets straddling the 64 KB read size.
    elements = [
        ndjson_line(
            email_hash=f"h{i}", user_profile={"s": '\\"[,' * (i * 997 % 9000), "n": [i, {"k": "}"}]}
        )
        for i in range(200)
    ]
    records = read(write_json(tmp_path, "[" + ",".join(elements) + "]"), FileFormat.JSON)
    assert [r.identifier.email_hash for r in records] == [f"h{i}" for i in range(200)]
    assert records[57].user_profile["s"] == '\\"[,' * (57 * 997 % 9000)


def test_json_resume_at_a_position_yields_the_same_remaining_records(tmp_path):
    elements = [ndjson_line(email_hash=f"h{i}") for i in range(8)]
    elements[2] = '{"bad": }'
    path = write_json(tmp_path, "[\n  " + ",\n  ".join(elements) + "\n]\n")
    reader = open_reader(path, FileFormat.JSON)
    everything = list(reader)
    for stop_after in (1, 3, 8):
        reader = open_reader(path, FileFormat.JSON)
        stream = reader.iterate()
        for _ in range(stop_after):
            next(stream)
        offset = reader.position
        stream.close()
        resumed = list(
            open_reader(path, FileFormat.JSON).iterate(after_line=stop_after, at_offset=offset)
        )
        assert resumed == everything[stop_after:]
        assert (
            list(open_reader(path, FileFormat.JSON).iterate(after_line=stop_after))
            == everything[stop_after:]
        )


def test_json_array_is_read_with_flat_memory(tmp_path):
    path = tmp_path / "big.json"
    element = ndjson_line(
        user_profile={"firstname": "David", "tags": ["a", "b"], "nl": {"on": True}}
    )
    with path.open("w") as out:
        out.write("[")
        out.write(",\n".join(element.replace('"h"', f'"h{i}"') for i in range(20_000)))
        out.write("]")
    size = path.stat().st_size
    reader = open_reader(path, FileFormat.JSON)
    tracemalloc.start()
    try:
        count = sum(1 for record in reader if isinstance(record, ProfileCommand))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 20_000
    assert peak < size / 10, (peak, size)


# --------------------------------------------------------------------------- CSV


def test_csv_columns_build_the_command_and_the_profile(tmp_path):
    text = (
        "operation,compartment_id,user_account_id,firstname,age:int,score:float,"
        "nl.subscribed:bool,nl.period,tags:json,zip:str,$compartment_id,$user_account_id\n"
        'UPSERT,1606,c1,David,42,1.5,yes,MONTHLY,"[""a""]",01200,1606,c1\n'
    )
    record = only(read_csv(tmp_path, text))
    assert record.line == 2
    assert record.identifier == AccountIdentifier("c1", 1606)
    assert record.user_profile == {
        "firstname": "David",
        "age": 42,
        "score": 1.5,
        "nl": {"subscribed": True, "period": "MONTHLY"},
        "tags": ["a"],
        "zip": "01200",
        "$compartment_id": 1606,
        "$user_account_id": "c1",
    }


def test_csv_without_operation_column_defaults_to_upsert(tmp_path):
    record = only(read_csv(tmp_path, "email_hash,firstname\nh1,David\n"))
    assert (record.operation, record.identifier) == (Operation.UPSERT, EmailIdentifier("h1"))


def test_csv_empty_cell_means_absent_key(tmp_path):
    record = only(read_csv(tmp_path, "email_hash,firstname,nl.a,nl.b\nh1,,,x\n"))
    assert record.user_profile == {"nl": {"b": "x"}}


def test_csv_empty_cell_can_mean_empty_string(tmp_path):
    record = only(
        read_csv(tmp_path, "email_hash,firstname,age:int\nh1,,\n", empty_cell_is_empty_string=True)
    )
    assert record.user_profile == {"firstname": ""}


def test_csv_upsert_row_with_no_profile_cell_has_an_empty_profile(tmp_path):
    record = only(read_csv(tmp_path, "operation,email_hash,firstname\nUPSERT,h1,\n"))
    assert record.user_profile == {}


def test_csv_delete_row_with_no_profile_cell_has_no_profile(tmp_path):
    record = only(read_csv(tmp_path, "operation,user_account_id,firstname\ndelete,c1,\n"))
    assert (record.operation, record.user_profile) == (Operation.DELETE, None)


@pytest.mark.parametrize(
    ("header", "cell", "value"),
    [
        ("v:bool", "TRUE", True),
        ("v:bool", "No", False),
        ("v:bool", "0", False),
        ("v:int", " -12 ", -12),
        ("v:float", "1e3", 1000.0),
        ("v:float", "-.5", -0.5),
        ("v:json", '{"a":null}', {"a": None}),
        ("v:str", " 007 ", " 007 "),
        ("v", "  keep spaces ", "  keep spaces "),
        ("V:INT", "3", 3),
    ],
)
def test_csv_typed_cells_convert(tmp_path, header, cell, value):
    record = only(read_csv(tmp_path, f"email_hash\t{header}\nh\t{cell}\n"))
    assert list(record.user_profile.values()) == [value]


@pytest.mark.parametrize(
    ("header", "cell"),
    [
        ("age:int", "abc"),
        ("age:int", "1.0"),
        ("age:int", "1_000"),
        ("score:float", "nan"),
        ("score:float", "inf"),
        ("score:float", "1e999"),
        ("ok:bool", "maybe"),
        ("tags:json", "[1,"),
        ("tags:json", '{"a":1,"a":2}'),
        ("tags:json", "NaN"),
    ],
)
def test_csv_cell_that_does_not_convert_is_a_line_error_naming_the_column(tmp_path, header, cell):
    records = read_csv(tmp_path, f"email_hash;{header}\nh1;{cell}\nh2;\n")
    assert codes(records) == [(2, "INVALID_CELL"), (3, "OK")]
    assert records[0].field == header
    assert f"line 2, column 2 ('{header}')" in records[0].message
    assert records[0].identifier == "email_hash=h1"
    assert records[0].raw == {"email_hash": "h1", header: cell}


def test_csv_good_rows_come_through_around_bad_ones(tmp_path):
    text = "operation,email_hash,age:int\nUPSERT,h1,1\nUPSERT,,2\nUPSRT,h3,3\nUPSERT,h4,x\nUPSERT,h5,5\n"
    assert codes(read_csv(tmp_path, text)) == [
        (2, "OK"),
        (3, "MISSING_IDENTIFIER"),
        (4, "INVALID_OPERATION"),
        (5, "INVALID_CELL"),
        (6, "OK"),
    ]


def test_csv_line_error_keeps_the_row_for_the_failed_lines_file(tmp_path):
    record = only(read_csv(tmp_path, "operation,email_hash,name\nUPSRT,h1,Zoé\n"))
    assert record.raw == {"operation": "UPSRT", "email_hash": "h1", "name": "Zoé"}


def test_csv_row_with_wrong_cell_count_is_a_line_error(tmp_path):
    text = "email_hash,a,b\nh1,1\nh2,1,2,3\nh3,1,2,\nh4,1,2\n"
    assert codes(read_csv(tmp_path, text)) == [
        (2, "WRONG_CELL_COUNT"),
        (3, "WRONG_CELL_COUNT"),
        (4, "OK"),
        (5, "OK"),
    ]


def test_csv_blank_rows_are_skipped_but_counted(tmp_path):
    assert codes(read_csv(tmp_path, "email_hash,a\n\nh1,1\n,\nh2,2\n")) == [(3, "OK"), (5, "OK")]


def test_csv_multiline_cell_counts_as_one_line(tmp_path):
    records = read_csv(tmp_path, 'email_hash,note\nh1,"two\nlines"\nh2,x\n')
    assert [(r.line, r.user_profile["note"]) for r in records] == [(2, "two\nlines"), (3, "x")]


def test_csv_nul_character_in_a_cell_is_a_line_error(tmp_path):
    assert codes(read_csv(tmp_path, "email_hash,a\nh1,x\x00y\nh2,1\n")) == [
        (2, "NUL_CHARACTER"),
        (3, "OK"),
    ]


def test_csv_merge_option_columns_are_read_as_booleans(tmp_path):
    records = read_csv(
        tmp_path,
        "email_hash,force_replace,merge_objects,update_strategy\nh1,false,1,\nh2,,,PARTIAL_DELETE\nh3,perhaps,,\n",
    )
    assert (records[0].force_replace, records[0].merge_objects, records[0].update_strategy) == (
        False,
        True,
        None,
    )
    assert (records[1].force_replace, records[1].update_strategy) == (None, "PARTIAL_DELETE")
    assert (records[2].code, records[2].field) == ("INVALID_CELL", "force_replace")


def test_csv_leading_apostrophe_of_an_identifier_is_dropped(tmp_path):
    record = only(read_csv(tmp_path, "user_account_id,note\n'=007,'kept\n"))
    assert record.identifier == AccountIdentifier("=007", None)
    assert record.user_profile == {"note": "'kept"}


def test_csv_dollar_compartment_id_reads_as_an_integer(tmp_path):
    record = only(read_csv(tmp_path, "email_hash,$compartment_id,$user_account_id\nh,1606,0042\n"))
    assert record.user_profile == {"$compartment_id": 1606, "$user_account_id": "0042"}


def test_csv_bracket_header_names_keys_with_dots_and_reserved_names(tmp_path):
    text = 'email_hash,"[""a.b"", ""c""]:int","[""operation""]","[""_line""]:json"\nh,1,x,[2]\n'
    record = only(read_csv(tmp_path, text))
    assert record.user_profile == {"a.b": {"c": 1}, "operation": "x", "_line": [2]}


def test_csv_annotation_columns_are_ignored(tmp_path):
    record = only(read_csv(tmp_path, "email_hash,a,_line,_error\nh,1,7,bad thing\n"))
    assert record.user_profile == {"a": "1"}


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("email_hash,a,a", "DUPLICATE_HEADER"),
        ("email_hash,a:int,a:str", "DUPLICATE_HEADER"),
        ('email_hash,a.b,"[""a"",""b""]"', "DUPLICATE_HEADER"),
        ("email_hash,email_hash", "DUPLICATE_HEADER"),
        ("email_hash,a,a.b", "HEADER_CONFLICT"),
        ("email_hash,a.b.c,a.b", "HEADER_CONFLICT"),
        ("email_hash,,a", "INVALID_HEADER"),
        ("email_hash,a..b", "INVALID_HEADER"),
        ("email_hash,:int", "INVALID_HEADER"),
        ('email_hash,"[1]"', "INVALID_HEADER"),
        ('email_hash,"[""a""]:date"', "INVALID_HEADER"),
    ],
)
def test_csv_bad_header_fails_the_file_naming_the_columns(tmp_path, header, code):
    with pytest.raises(FileError) as caught:
        read_csv(tmp_path, header + "\n")
    assert caught.value.code == code
    assert caught.value.line == 1


def test_csv_trailing_empty_header_cells_are_ignored(tmp_path):
    assert codes(read_csv(tmp_path, "email_hash,a,,\nh,1,,\n")) == [(2, "OK")]


@pytest.mark.parametrize("text", ["", "\n"])
def test_csv_without_header_fails_the_file(tmp_path, text):
    with pytest.raises(FileError) as caught:
        read_csv(tmp_path, text)
    assert caught.value.code == "NO_HEADER"


def test_csv_header_only_file_has_no_commands(tmp_path):
    assert read_csv(tmp_path, "email_hash,a\n") == []


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_csv_delimiter_is_sniffed(tmp_path, delimiter):
    rows = [
        ["operation", "email_hash", "note", "age:int"],
        ["UPSERT", "h1", "a, b; c | d", "3"],
        ["UPSERT", "h2", "x", "4"],
    ]
    lines = [
        delimiter.join(f'"{cell}"' if any(d in cell for d in ",;\t|") else cell for cell in row)
        for row in rows
    ]
    path = write_text(tmp_path, "s.csv", "\n".join(lines) + "\n")
    reader = open_reader(path, FileFormat.CSV)
    records = list(reader)
    assert reader.delimiter == delimiter
    assert [r.user_profile for r in records] == [
        {"note": "a, b; c | d", "age": 3},
        {"note": "x", "age": 4},
    ]


def test_csv_sniffing_is_not_fooled_by_free_text(tmp_path):
    text = "email_hash,comment\nh1,one; two; three\nh2,four; five; six\n"
    reader = open_reader(write_text(tmp_path, "c.csv", text), FileFormat.CSV)
    assert reader.delimiter == ","
    assert [r.user_profile["comment"] for r in reader] == ["one; two; three", "four; five; six"]


def test_csv_single_column_falls_back_to_comma(tmp_path):
    reader = open_reader(write_text(tmp_path, "c.csv", "email_hash\nh1\n"), FileFormat.CSV)
    assert reader.delimiter == ","
    assert codes(reader) == [(2, "OK")]


def test_csv_declared_delimiter_wins(tmp_path):
    reader = open_reader(
        write_text(tmp_path, "c.csv", "email_hash;a,b\nh;1,2\n"),
        FileFormat.CSV,
        ReaderOptions(delimiter=";"),
    )
    assert only(list(reader)).user_profile == {"a,b": "1,2"}


def test_csv_utf8_bom_is_stripped(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffemail_hash,prénom\nh1,Zoé\n".encode())
    reader = open_reader(path, FileFormat.CSV)
    assert reader.headers == ["email_hash", "prénom"]
    assert only(list(reader)).user_profile == {"prénom": "Zoé"}


def test_csv_latin1_with_declared_encoding(tmp_path):
    path = write_text(tmp_path, "l1.csv", "email_hash;prénom\nh1;Zoé\n", "latin-1")
    assert only(read(path, FileFormat.CSV, encoding="latin-1")).user_profile == {"prénom": "Zoé"}


def test_csv_undecodable_bytes_fail_the_file_naming_the_line(tmp_path):
    path = write_text(tmp_path, "l1.csv", "email_hash;prénom\nh1;Zoé\nh2;Zoé\n", "latin-1")
    with pytest.raises(FileError) as caught:
        read(path, FileFormat.CSV)
    assert caught.value.code == "INVALID_ENCODING"
    assert caught.value.message.startswith("line 1:")


def test_csv_undecodable_bytes_later_in_the_file_name_their_line(tmp_path):
    path = tmp_path / "late.csv"
    path.write_bytes(b"email_hash,a\nh1,1\nh2,1\nh3,\xe9\n")
    records = []
    with pytest.raises(FileError) as caught:
        records.extend(open_reader(path, FileFormat.CSV))
    assert caught.value.line == 4
    assert codes(records) == [(2, "OK"), (3, "OK")]


def test_csv_unclosed_quote_does_not_swallow_the_file(tmp_path):
    text = 'email_hash,a\nh1,"never closed\n' + "h,1\n" * 2000
    with pytest.raises(FileError) as caught:
        read_csv(tmp_path, text, max_line_bytes=1000)
    assert caught.value.code == "LINE_TOO_LONG"


def test_csv_resume_at_a_position_yields_the_same_remaining_records(tmp_path):
    text = "email_hash,note,age:int\n" + "".join(
        f'h{i},"multi\nline {i}",{i if i != 5 else "x"}\n' for i in range(10)
    )
    path = write_text(tmp_path, "r.csv", text)
    everything = list(open_reader(path, FileFormat.CSV))
    reader = open_reader(path, FileFormat.CSV)
    stream = reader.iterate()
    for _ in range(4):
        last = next(stream)
    stream.close()
    resumed = list(
        open_reader(path, FileFormat.CSV).iterate(after_line=last.line, at_offset=reader.position)
    )
    assert resumed == everything[4:]
    assert list(open_reader(path, FileFormat.CSV).iterate(after_line=last.line)) == everything[4:]


# --------------------------------------------------------------------------- XLSX


def test_xlsx_cells_keep_their_types(tmp_path):
    path = write_xlsx(
        tmp_path,
        [
            [
                "operation",
                "compartment_id",
                "user_account_id",
                "name",
                "age",
                "score",
                "vip",
                "born",
                "seen",
                "zip:str",
            ],
            [
                "UPSERT",
                1606,
                12345,
                "David",
                42.0,
                2.5,
                True,
                dt.date(1990, 5, 17),
                dt.datetime(2024, 1, 2, 3, 4, 5),
                1200,
            ],
        ],
    )
    record = only(read(path, FileFormat.XLSX))
    assert record.line == 2
    assert record.identifier == AccountIdentifier("12345", 1606)
    assert record.user_profile == {
        "name": "David",
        "age": 42,
        "score": 2.5,
        "vip": True,
        "born": "1990-05-17",
        "seen": "2024-01-02T03:04:05",
        "zip": "1200",
    }


def test_xlsx_header_suffixes_convert_cell_values(tmp_path):
    path = write_xlsx(
        tmp_path,
        [
            ["email_hash", "a:int", "b:float", "c:bool", "d:json", "e:int", "f.g:bool"],
            ["h1", 3.0, 3, 1, '{"x":[1]}', "17", "yes"],
            ["h2", 3.5, None, None, None, None, None],
            ["h3", None, "abc", None, None, None, None],
            ["h4", None, None, 2, None, None, None],
        ],
    )
    records = read(path, FileFormat.XLSX)
    assert records[0].user_profile == {
        "a": 3,
        "b": 3.0,
        "c": True,
        "d": {"x": [1]},
        "e": 17,
        "f": {"g": True},
    }
    assert isinstance(records[0].user_profile["b"], float)
    assert [(r.line, r.code, r.field) for r in records[1:]] == [
        (3, "INVALID_CELL", "a:int"),
        (4, "INVALID_CELL", "b:float"),
        (5, "INVALID_CELL", "c:bool"),
    ]


def test_xlsx_empty_rows_are_skipped_but_counted(tmp_path):
    path = write_xlsx(tmp_path, [["email_hash", "a"], ["h1", 1], [], [None, None], ["h2", 2]])
    assert codes(read(path, FileFormat.XLSX)) == [(2, "OK"), (5, "OK")]


def test_xlsx_rows_keep_their_sheet_row_numbers_across_gaps(tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet["A1"], sheet["A2"], sheet["A6"], sheet["A9"] = "email_hash", "h2", "h6", "h9"
    path = tmp_path / "gaps.xlsx"
    workbook.save(path)
    assert codes(read(path, FileFormat.XLSX)) == [(2, "OK"), (6, "OK"), (9, "OK")]
    assert codes(open_reader(path, FileFormat.XLSX).iterate(after_line=3)) == [(6, "OK"), (9, "OK")]


def test_csv_headers_are_reported_trimmed(tmp_path):
    reader = open_reader(
        write_text(tmp_path, "h.csv", " email_hash , age:int ,,\nh,1,,\n"), FileFormat.CSV
    )
    assert reader.headers == ["email_hash", "age:int"]
    assert only(list(reader)).user_profile == {"age": 1}


def test_xlsx_formula_error_cell_is_a_line_error(tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["email_hash", "ratio"])
    sheet.append(["h1", "#DIV/0!"])  # openpyxl stores an error cell for this text
    sheet.append(["h2", 0.5])
    path = tmp_path / "err.xlsx"
    workbook.save(path)
    records = read(path, FileFormat.XLSX)
    assert [(r.line, getattr(r, "code", "OK")) for r in records] == [(2, "INVALID_CELL"), (3, "OK")]
    assert "#DIV/0!" in records[0].message


def test_xlsx_skip_resumes_after_a_line(tmp_path):
    path = write_xlsx(tmp_path, [["email_hash"], *[[f"h{i}"] for i in range(6)]])
    everything = read(path, FileFormat.XLSX)
    assert list(open_reader(path, FileFormat.XLSX).iterate(after_line=4)) == everything[3:]
    with pytest.raises(ValueError):
        list(open_reader(path, FileFormat.XLSX).iterate(after_line=4, at_offset=100))


def test_xlsx_header_rules_are_the_csv_ones(tmp_path):
    path = write_xlsx(tmp_path, [["email_hash", "a", "a.b"], ["h", 1, 2]])
    with pytest.raises(FileError) as caught:
        open_reader(path, FileFormat.XLSX)
    assert caught.value.code == "HEADER_CONFLICT"


def test_xlsx_empty_sheet_has_no_header(tmp_path):
    path = write_xlsx(tmp_path, [])
    with pytest.raises(FileError) as caught:
        open_reader(path, FileFormat.XLSX)
    assert caught.value.code == "NO_HEADER"


def test_xlsx_that_is_not_a_zip_is_refused(tmp_path):
    path = write_text(tmp_path, "fake.xlsx", "email_hash\nh1\n")
    with pytest.raises(FileError) as caught:
        open_reader(path, FileFormat.XLSX)
    assert caught.value.code == "INVALID_XLSX"


def bomb_xlsx(tmp_path, inflated_bytes: int):
    """A real workbook plus one highly compressible part."""
    path = write_xlsx(tmp_path, [["email_hash"], ["h1"]], name="bomb.xlsx")
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/padding.bin", b"\0" * inflated_bytes)
    return path


def test_xlsx_zip_bomb_is_refused_by_its_compression_ratio(tmp_path):
    path = bomb_xlsx(tmp_path, 20_000_000)
    with pytest.raises(FileError) as caught:
        open_reader(path, FileFormat.XLSX)
    assert caught.value.code == "FILE_TOO_LARGE"
    assert "zip bomb" in caught.value.message


def test_xlsx_over_the_uncompressed_limit_is_refused(tmp_path):
    path = write_xlsx(tmp_path, [["email_hash"], *[[f"h{i}"] for i in range(2000)]])
    with pytest.raises(FileError) as caught:
        open_reader(path, FileFormat.XLSX, ReaderOptions(max_xlsx_uncompressed_bytes=20_000))
    assert caught.value.code == "FILE_TOO_LARGE"


def test_xlsx_xml_is_parsed_with_defusedxml(tmp_path):
    assert openpyxl.DEFUSEDXML is True
    source = write_xlsx(tmp_path, [["email_hash"], ["h1"]], name="source.xlsx")
    path = tmp_path / "entities.xlsx"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as patched:
        for entry in original.infolist():
            data = original.read(entry.filename)
            if entry.filename == "xl/worksheets/sheet1.xml":
                # entity expansion, the "billion laughs" shape
                data = (
                    b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>' + data
                )
            patched.writestr(entry, data)
    with pytest.raises(FileError) as caught:
        open_reader(path, FileFormat.XLSX)
    assert caught.value.code == "INVALID_XLSX"
    assert "forbidden XML" in caught.value.message
