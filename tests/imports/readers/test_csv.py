"""CSV reading: the SPEC §3 flat layout, delimiter sniffing, encodings, resuming."""

from __future__ import annotations

import pytest

from imports.readers import FileError, FileFormat, ReaderOptions, open_reader
from profiles.commands import AccountIdentifier, EmailIdentifier, Operation
from tests.imports.readers.helpers import (
    codes,
    only,
    past_the_encoding_sample,
    read,
    read_csv,
    read_ndjson,
    write_text,
)


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
        ("tags:json", "[1,"),  # the strict JSON reader's other codes: below
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


def test_a_wrong_cell_count_is_worded_as_counts_are(tmp_path):
    (error,) = read_csv(tmp_path, "email_hash\nh1,x\n")
    assert error.message == "line 2: 2 cells for 1 header column"


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
    assert (caught.value.code, caught.value.line) == ("INVALID_ENCODING", 1)
    assert "of line 1 " in caught.value.message


def test_csv_undecodable_bytes_past_the_first_64_kb_are_a_line_error_and_the_file_goes_on(
    tmp_path,
):
    path = tmp_path / "late.csv"
    filler, n = past_the_encoding_sample(b"h0,1\n")
    path.write_bytes(b"email_hash,a\n" + filler + b"h2,\xe9\nh3,1\n")
    records = list(open_reader(path, FileFormat.CSV))
    assert codes(records)[-2:] == [(n + 2, "INVALID_ENCODING"), (n + 3, "OK")]
    assert records[-2].message.startswith(f"line {n + 2}: byte 4 ")
    assert records[-2].raw == {"email_hash": "h2", "a": "\ufffd"}


def test_csv_in_another_encoding_than_declared_fails_before_any_row(tmp_path):
    """SPEC §4: a wrong encoding is a file-level problem (here: Latin-1 read as UTF-8)."""
    path = write_text(tmp_path, "l1.csv", "email_hash,city\nw1,Besançon\nw2,Besançon\n", "latin-1")
    with pytest.raises(FileError) as caught:
        open_reader(path, FileFormat.CSV)
    assert (caught.value.code, caught.value.line) == ("INVALID_ENCODING", 2)
    assert caught.value.message.startswith("the file is not utf-8: byte 9 of line 2 ")


def test_csv_bare_carriage_return_in_an_unquoted_cell_is_a_line_error(tmp_path):
    path = tmp_path / "cr.csv"
    path.write_bytes(b"email_hash,a\nh1,1\nh2,x\ry\nh3,1\n")
    records = list(open_reader(path, FileFormat.CSV))
    assert codes(records) == [(2, "OK"), (3, "INVALID_CSV"), (4, "OK")]
    assert records[1].message.startswith("line 3: new-line character seen in unquoted field")


def test_csv_one_line_over_the_limit_is_a_line_error_read_in_pieces(tmp_path):
    text = "email_hash,a\nh1,1\nh2," + "x" * 5000 + "\nh3,1\n"
    records = read_csv(tmp_path, text, max_line_bytes=1000)
    assert codes(records) == [(2, "OK"), (3, "LINE_TOO_LONG"), (4, "OK")]


def test_csv_resume_after_line_errors_yields_the_same_records(tmp_path):
    path = tmp_path / "mixed.csv"
    filler, n = past_the_encoding_sample(b"h0,1\n")
    path.write_bytes(b"email_hash,a\n" + filler + b"h1,1\nh2,x\ry\nh3,\xe9\nh4,1\nh5,2\n")
    everything = list(open_reader(path, FileFormat.CSV))
    assert codes(everything)[n + 1 : n + 3] == [(n + 3, "INVALID_CSV"), (n + 4, "INVALID_ENCODING")]
    reader = open_reader(path, FileFormat.CSV)
    stream = reader.iterate()
    for _ in range(n + 3):
        last = next(stream)
    stream.close()
    resumed = open_reader(path, FileFormat.CSV).iterate(
        after_line=last.line, at_offset=reader.position
    )
    assert list(resumed) == everything[n + 3 :]


def test_csv_header_wider_than_the_column_cap_fails_before_any_row(tmp_path):
    header = "email_hash," + ",".join(f"c{i}" for i in range(50))
    with pytest.raises(FileError) as caught:
        read_csv(tmp_path, header + "\nh1\n", max_columns=20)
    assert (caught.value.code, caught.value.line) == ("TOO_MANY_COLUMNS", 1)
    assert "51 columns, over the limit of 20 (IMPORT_MAX_COLUMNS)" in caught.value.message


def test_csv_row_over_the_cell_cap_is_a_line_error_keeping_no_cells(tmp_path):
    text = "email_hash,a\nh1," + "," * 40 + "\nh2,1\n"
    records = read_csv(tmp_path, text, max_cells_per_row=30)
    assert codes(records) == [(2, "TOO_MANY_CELLS"), (3, "OK")]
    assert records[0].raw is None
    assert records[0].message == (
        "line 2: the row has 42 cells, over the limit of 30 (IMPORT_MAX_CELLS_PER_ROW)"
    )


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


def test_csv_headers_are_reported_trimmed(tmp_path):
    reader = open_reader(
        write_text(tmp_path, "h.csv", " email_hash , age:int ,,\nh,1,,\n"), FileFormat.CSV
    )
    assert reader.headers == ["email_hash", "age:int"]
    assert only(list(reader)).user_profile == {"age": 1}


def test_csv_count_is_the_non_empty_records_after_the_header(tmp_path):
    reader = open_reader(
        write_text(tmp_path, "count.csv", 'email_hash;note\nh1;"two\nlines"\n\n;\nh2;x\n'),
        FileFormat.CSV,
    )
    assert reader.count_records() == 2 == len(list(reader))


@pytest.mark.parametrize(
    "rows",
    ["", "h1;1\n", "h1;x, y, z\n", "h1;x, y\nh2;z\n"],
    ids=["header-only", "one-row", "row-with-as-many-commas", "two-rows"],
)
def test_a_semicolon_file_whose_header_holds_commas_is_sniffed_as_semicolon(tmp_path, rows):
    text = "email_hash;note (a, b, c)\n" + rows
    reader = open_reader(write_text(tmp_path, "semi.csv", text), FileFormat.CSV)
    assert reader.delimiter == ";"
    assert reader.headers == ["email_hash", "note (a, b, c)"]
    assert all(set(record.user_profile) == {"note (a, b, c)"} for record in reader)


def test_csv_quote_still_open_at_the_end_is_a_line_error_and_the_lines_after_it_are_read(
    tmp_path,
):
    """Not one cell silently holding the rest of the file: the record's first line is the
    error, the stray quote a typo, and the lines after it are records again."""
    path = write_text(tmp_path, "q.csv", 'email_hash,note\nq1,"5 inch screen\nq2,ok\nq3,fine\n')
    reader = open_reader(path, FileFormat.CSV)
    records = list(reader.iterate())
    assert codes(records) == [(2, "INVALID_CSV"), (3, "OK"), (4, "OK")]
    assert records[0].message == (
        "line 2: a quoted cell opened on this line is never closed; the lines after it are "
        "read as records"
    )
    assert records[0].raw == 'q1,"5 inch screen\n'
    assert records[2].user_profile == {"note": "fine"}
    assert reader.count_records() == 3
    # Resumed just after the error, the same records follow.
    stream = reader.iterate()
    next(stream)
    stream.close()
    resumed = open_reader(path, FileFormat.CSV).iterate(after_line=2, at_offset=reader.position)
    assert list(resumed) == records[1:]


def test_csv_header_with_a_quote_never_closed_fails_the_file(tmp_path):
    path = write_text(tmp_path, "h.csv", 'email_hash,"note\nq1,x\n')
    with pytest.raises(FileError) as caught:
        open_reader(path, FileFormat.CSV)
    assert (caught.value.code, caught.value.line) == ("INVALID_CSV", 1)


def test_csv_lines_ending_in_cr_alone_are_read_as_lines(tmp_path):
    """Classic Mac OS and Excel for Mac's "CSV (Macintosh)" end lines with CR alone: read as
    line ends (a bare CR inside a CRLF or LF file stays a line error), resumable at a
    position, and counted."""
    rows = [f'h{i};"note\r{i}";{i if i != 3 else "x"}' for i in range(6)]
    path = tmp_path / "mac.csv"
    path.write_bytes(("email_hash;note;age:int\r" + "\r".join(rows) + "\r").encode("cp1252"))
    reader = open_reader(path, FileFormat.CSV, ReaderOptions(encoding="cp1252"))
    assert (reader.delimiter, reader.headers) == (";", ["email_hash", "note", "age:int"])
    records = list(reader)
    assert codes(records) == [
        (2, "OK"),
        (3, "OK"),
        (4, "OK"),
        (5, "INVALID_CELL"),
        (6, "OK"),
        (7, "OK"),
    ]
    assert records[0].identifier == EmailIdentifier("h0")
    assert records[0].user_profile == {"note": "note\n0", "age": 0}
    assert reader.count_records() == 6
    stream = reader.iterate()
    for _ in range(2):
        last = next(stream)
    stream.close()
    resumed = open_reader(path, FileFormat.CSV, ReaderOptions(encoding="cp1252")).iterate(
        after_line=last.line, at_offset=reader.position
    )
    assert list(resumed) == records[2:]


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("NaN", "NON_FINITE_NUMBER"),
        ("[" * 70 + "]" * 70, "TOO_DEEP"),
        ('{"a": 1, "a": 2}', "DUPLICATE_KEY"),
        ("1" * 30, "INVALID_NUMBER"),
        ('"\\ud800"', "INVALID_UNICODE"),
        ("{bad", "INVALID_CELL"),
    ],
)
def test_a_json_cell_gets_the_code_an_ndjson_line_gets_for_the_same_value(tmp_path, value, code):
    """docs/rules.md: the same code for the same problem on every path (a syntax error is the
    cell's INVALID_CELL, as a column that does not convert)."""
    quoted = '"' + value.replace('"', '""') + '"'
    (error,) = read_csv(tmp_path, f"email_hash,v:json\nh1,{quoted}\n")
    assert (error.code, error.field) == (code, "v:json")
    if code != "INVALID_CELL":
        line = f'{{"operation": "UPSERT", "email_hash": "h1", "user_profile": {{"v": {value}}}}}'
        assert read_ndjson(tmp_path, [line])[0].code == code


@pytest.mark.parametrize("header", ["age:integer", "ok:Boolean", "tags:array", "name:string"])
def test_a_type_spelled_as_other_tools_spell_it_fails_the_header(tmp_path, header):
    """`age:integer` meant a type: refused with SPEC §3's spelling, as a column mapping refuses
    it, rather than read as a key holding ":"."""
    with pytest.raises(FileError) as caught:
        read_csv(tmp_path, f"email_hash,{header}\nh1,1\n")
    assert caught.value.code == "INVALID_HEADER"
    assert "use :int, :float, :bool, :json or :str" in caught.value.message


def test_a_key_holding_a_colon_is_still_read_when_no_type_was_meant(tmp_path):
    record = only(read_csv(tmp_path, 'email_hash,time:zone,"[""age:integer""]"\nh1,CET,3\n'))
    assert record.user_profile == {"time:zone": "CET", "age:integer": "3"}
