"""JSON array reading: elements numbered from 1, structural damage, resuming, flat memory."""

from __future__ import annotations

import tracemalloc

import pytest

from imports.readers import FileError, FileFormat, open_reader
from profiles.commands import EmailIdentifier, ProfileCommand
from tests.imports.readers.helpers import (
    codes,
    ndjson_line,
    past_the_encoding_sample,
    read,
    write_text,
)


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


def test_json_invalid_utf8_in_an_element_past_the_first_64_kb_is_a_line_error(tmp_path):
    path = tmp_path / "bad.json"
    good = ndjson_line().encode()
    filler, n = past_the_encoding_sample(good + b",")
    path.write_bytes(b"[" + filler + good.replace(b'"h"', b'"\xc3("') + b"," + good + b"]")
    assert codes(read(path, FileFormat.JSON))[-2:] == [(n + 1, "INVALID_ENCODING"), (n + 2, "OK")]


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


def test_json_count_is_the_elements_broken_or_not(tmp_path):
    reader = open_reader(
        write_json(tmp_path, "[" + ndjson_line() + ', 5, {"a": }, ' + ndjson_line() + "]"),
        FileFormat.JSON,
    )
    assert reader.count_records() == 4 == len(list(reader))


def test_json_count_of_an_unclosed_array_is_unknown(tmp_path):
    reader = open_reader(write_json(tmp_path, "[" + ndjson_line() + ","), FileFormat.JSON)
    assert reader.count_records() is None
