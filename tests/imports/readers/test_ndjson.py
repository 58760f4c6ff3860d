"""NDJSON reading: physical lines, blank lines, encodings, resuming, flat memory, counting;
objects pretty-printed over several lines, numbered by the line where they start."""

from __future__ import annotations

import json
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imports.readers import FileError, FileFormat, ReaderOptions, open_reader
from imports.readers.json_scan import expects_value
from profiles.commands import EmailIdentifier, Operation, ProfileCommand, UserAgentIdentifier
from profiles.identifiers import AccountIdentifier
from tests.imports.readers.helpers import (
    codes,
    ndjson_line,
    only,
    past_the_encoding_sample,
    read,
    read_ndjson,
    write_text,
)

# A command as the platform's documentation prints it: one UPSERT over 17 lines.
DOCUMENTED_UPSERT = """{
  "operation": "UPSERT",
  "compartment_id": "1606",
  "user_account_id": "8541254132",
  "update_strategy": "PARTIAL_UPDATE",
  "user_profile": {
    "$compartment_id": 1606,
    "$user_account_id": "8541254132",
    "firstname": "David",
    "gender": 1,
    "nl": {
      "subscribed": true,
      "period": "MONTHLY"
    },
    "tags": ["a", "b"]
  }
}"""
DOCUMENTED_LINES = DOCUMENTED_UPSERT.count("\n") + 1


def pretty(**fields) -> str:
    return json.dumps(json.loads(ndjson_line(**fields)), indent=2)


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


def test_invalid_utf8_in_one_line_past_the_first_64_kb_is_a_line_error(tmp_path):
    path = tmp_path / "bad.ndjson"
    good = ndjson_line().encode()
    filler, n = past_the_encoding_sample(good + b"\n")
    path.write_bytes(filler + good.replace(b'"h"', b'"\xff"') + b"\n" + good + b"\n")
    records = read(path, FileFormat.NDJSON)
    assert codes(records)[n - 1 :] == [(n, "OK"), (n + 1, "INVALID_ENCODING"), (n + 2, "OK")]
    # Resumed just after the bad line (a checkpoint there), the same record follows.
    reader = open_reader(path, FileFormat.NDJSON)
    stream = reader.iterate()
    for _ in range(n + 1):
        next(stream)
    stream.close()
    resumed = open_reader(path, FileFormat.NDJSON).iterate(
        after_line=n + 1, at_offset=reader.position
    )
    assert list(resumed) == records[n + 1 :]


def test_a_file_in_another_encoding_than_declared_fails_before_any_line(tmp_path):
    """SPEC §4: a wrong encoding is a file-level problem, found in the first 64 KB."""
    path = tmp_path / "latin.ndjson"
    line = '{"operation": "UPSERT", "email_hash": "h", "user_profile": {"city": "Besançon"}}\n'
    path.write_bytes(line.encode("latin-1") * 3)
    with pytest.raises(FileError) as caught:
        read(path, FileFormat.NDJSON)
    assert (caught.value.code, caught.value.line) == ("INVALID_ENCODING", 1)
    assert "the file is not utf-8" in caught.value.message
    assert "say which encoding" in caught.value.message
    assert [r.user_profile for r in read(path, FileFormat.NDJSON, encoding="latin-1")] == [
        {"city": "Besançon"}
    ] * 3


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


def _read_peak(path, expected_commands: int) -> int:
    """The peak of Python allocations while reading the file through."""
    reader = open_reader(path, FileFormat.NDJSON)
    tracemalloc.start()
    try:
        count = sum(1 for record in reader if isinstance(record, ProfileCommand))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == expected_commands
    return peak


def _ndjson_read_peak(tmp_path, lines: int) -> tuple[int, int]:
    path = tmp_path / f"big-{lines}.ndjson"
    line = ndjson_line(user_profile={"firstname": "David", "tags": ["a", "b"], "nl": {"on": True}})
    with path.open("w") as out:
        for index in range(lines):
            out.write(line.replace('"h"', f'"h{index}"') + "\n")
    return _read_peak(path, lines), path.stat().st_size


def test_ndjson_is_read_with_flat_memory(tmp_path):
    small_peak, _ = _ndjson_read_peak(tmp_path, 5_000)
    large_peak, large_size = _ndjson_read_peak(tmp_path, 50_000)
    # Ten times the lines, not ten times the memory: the peak does not grow with the file.
    assert large_peak < 2 * small_peak + 64_000, (small_peak, large_peak)
    assert large_peak < large_size / 20, (large_peak, large_size)


def test_ndjson_count_is_the_non_blank_lines_broken_or_not(tmp_path):
    lines = [ndjson_line(), "", "{broken", "   ", ndjson_line(user_profile={"x": "y" * 50})]
    path = write_text(tmp_path, "count.ndjson", "\n".join(lines) + "\n")
    reader = open_reader(path, FileFormat.NDJSON, ReaderOptions(max_line_bytes=60))
    assert reader.count_records() == 3 == len(list(reader))


def test_count_of_a_file_gone_since_it_was_opened_is_unknown(tmp_path):
    path = write_text(tmp_path, "gone.ndjson", ndjson_line() + "\n")
    reader = open_reader(path, FileFormat.NDJSON)
    path.unlink()
    assert reader.count_records() is None


# --------------------------------------------------------------------------- pretty-printed


def test_the_documented_pretty_printed_command_is_one_command_at_its_first_line(tmp_path):
    command = only(read_ndjson(tmp_path, [DOCUMENTED_UPSERT]))
    assert isinstance(command, ProfileCommand)
    assert (command.line, command.operation, command.identifier) == (
        1,
        Operation.UPSERT,
        AccountIdentifier("8541254132", 1606),
    )
    assert command.update_strategy == "PARTIAL_UPDATE"
    assert command.user_profile == json.loads(DOCUMENTED_UPSERT)["user_profile"]


def test_two_documented_commands_in_a_row_are_numbered_by_their_first_lines(tmp_path):
    assert DOCUMENTED_LINES == 17
    in_a_row = read_ndjson(tmp_path, [DOCUMENTED_UPSERT, DOCUMENTED_UPSERT])
    assert codes(in_a_row) == [(1, "OK"), (18, "OK")]
    with_blank_lines = read_ndjson(tmp_path, ["", DOCUMENTED_UPSERT, "", "  ", DOCUMENTED_UPSERT])
    assert codes(with_blank_lines) == [(2, "OK"), (21, "OK")]
    assert with_blank_lines[0].user_profile == with_blank_lines[1].user_profile


def test_one_line_and_pretty_printed_records_mix(tmp_path):
    records = read_ndjson(
        tmp_path,
        [
            ndjson_line(email_hash="a"),
            pretty(email_hash="b", user_profile={"n": {"deep": [1, {"k": "}"}]}}),
            ndjson_line(email_hash="c") + "  " + ndjson_line(email_hash="d") + " ",
            '{"operation": "UPSERT", "email_hash": "e",',
            '  "user_profile": {}} ' + ndjson_line(email_hash="f"),
            ndjson_line(email_hash="g") + " {",
            '"operation": "DELETE", "email_hash": "h"',
            "}",
        ],
    )
    assert [(r.line, r.identifier.email_hash) for r in records] == [
        (1, "a"),
        (2, "b"),
        (16, "c"),
        (16, "d"),
        (17, "e"),
        (18, "f"),
        (19, "g"),
        (19, "h"),
    ]
    assert records[1].user_profile == {"n": {"deep": [1, {"k": "}"}]}}


def test_an_error_inside_a_pretty_printed_object_is_reported_at_its_first_line(tmp_path):
    bad_field = pretty(operation="MERGE", user_profile={"a": 1})
    bad_json = pretty(user_profile={"a": 1, "b": 2}).replace('"a": 1', '"a": 1,,')
    records = read_ndjson(tmp_path, [ndjson_line(), bad_field, bad_json, DOCUMENTED_UPSERT])
    first_bad_json = 2 + bad_field.count("\n") + 1
    assert codes(records) == [
        (1, "OK"),
        (2, "INVALID_OPERATION"),
        (first_bad_json, "INVALID_JSON"),
        (first_bad_json + bad_json.count("\n") + 1, "OK"),
    ]
    assert records[1].message.startswith("line 2")
    assert records[1].raw["operation"] == "MERGE"  # the object, for the failed-lines file
    # The message names the physical line where the parser stopped.
    assert records[2].message.startswith(f"line {first_bad_json}: invalid JSON")
    assert f"on line {first_bad_json + 4}, character 12" in records[2].message
    assert records[2].raw == bad_json


def test_invalid_bytes_inside_a_pretty_printed_object_are_reported_at_its_first_line(tmp_path):
    path = tmp_path / "bytes.ndjson"
    broken = pretty(user_profile={"city": "Paris"}).encode().replace(b"Paris", b"Par\xffs")
    filler, n = past_the_encoding_sample(ndjson_line().encode() + b"\n")
    path.write_bytes(filler + broken + b"\n" + ndjson_line().encode())
    assert codes(read(path, FileFormat.NDJSON))[n - 1 :] == [
        (n, "OK"),
        (n + 1, "INVALID_ENCODING"),
        (n + 1 + broken.count(b"\n") + 1, "OK"),
    ]


def test_an_object_left_open_at_the_end_of_the_file_is_a_line_error_at_its_first_line(tmp_path):
    unclosed = DOCUMENTED_UPSERT[: DOCUMENTED_UPSERT.rindex("}")]
    records = read_ndjson(tmp_path, [ndjson_line(), DOCUMENTED_UPSERT, unclosed])
    assert codes(records) == [(1, "OK"), (2, "OK"), (19, "INVALID_JSON")]
    assert records[2].message == (
        "line 19: the object that starts on this line is not closed before the end of the file"
    )
    reader = open_reader(tmp_path / "in.ndjson", FileFormat.NDJSON)
    assert reader.count_records() == 3


def test_a_line_starting_with_a_brace_ends_an_object_left_open(tmp_path):
    records = read_ndjson(
        tmp_path,
        [
            '{"operation": "UPSERT", "email_hash": "a",',
            '  "user_profile": {"nested": {"x": 1}',
            "",
            DOCUMENTED_UPSERT,
        ],
    )
    assert codes(records) == [(1, "INVALID_JSON"), (4, "OK")]
    assert records[0].message.endswith("is not closed before line 4, where an object starts")
    assert records[0].raw == '{"operation": "UPSERT", "email_hash": "a",\n  "user_profile": ' + (
        '{"nested": {"x": 1}'
    )


def test_objects_printed_without_indent_keep_their_nested_objects(tmp_path):
    """`json.dumps(…, indent=0)` starts nested objects in the first column too: where the
    object expects a value (after `:`, `[`, or `,` in an array), such a `{` nests."""
    audit = {
        "operation": "UPSERT",
        "email_hash": "PV1",
        "user_profile": {"audit": [{"operation": "DELETE", "email_hash": "VICTIM"}, {"n": 2}]},
    }
    contracts = {
        "operation": "UPSERT",
        "email_hash": "c",
        "user_profile": {"contracts": [{"id": "c1"}, {"id": "c2"}], "o": {"p": {}}},
    }
    value_below_its_key = '{"operation": "UPSERT", "email_hash": "k", "user_profile":\n{"a": 1}}'
    records = read_ndjson(
        tmp_path,
        [
            json.dumps(audit, indent=0),
            json.dumps(contracts, indent=0),
            value_below_its_key,
            ndjson_line(email_hash="last"),
        ],
    )
    assert json.dumps(audit, indent=0).count("\n{") == 2
    second = 1 + json.dumps(audit, indent=0).count("\n") + 1
    third = second + json.dumps(contracts, indent=0).count("\n") + 1
    assert codes(records) == [(1, "OK"), (second, "OK"), (third, "OK"), (third + 2, "OK")]
    assert records[0].user_profile == audit["user_profile"]
    assert records[1].user_profile == contracts["user_profile"]
    assert records[2].user_profile == {"a": 1}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b'{"a":', True),
        (b'{"a": [', True),
        (b'{"a": [1, ', True),
        (b'{"a": [{"b": 1},\n', True),
        (b'{"a": 1,', False),  # an object's next member is a key
        (b'{"a": [1], ', False),
        (b'{"a": "x,', False),  # a string left open
        (b'{"a": "[,"', False),
        (b'{"a": "\\\\", "b":', True),  # an escaped backslash ends the string
        (b'{"a": "\\", "b":', False),  # an escaped quote does not
        (b'{"a": {"b": 1}', False),
    ],
)
def test_an_object_expects_a_value_only_after_a_colon_a_bracket_or_an_array_comma(text, expected):
    assert expects_value(text) is expected


def test_a_broken_token_in_an_open_object_is_named_rather_than_the_cut(tmp_path):
    records = read_ndjson(tmp_path, ["{broken", "  more", ndjson_line()])
    assert codes(records) == [(1, "INVALID_JSON"), (3, "OK")]
    assert "Expecting property name enclosed in double quotes" in records[0].message


def test_a_line_holding_more_than_objects_stays_one_record(tmp_path):
    records = read_ndjson(
        tmp_path, [ndjson_line() + " x", ndjson_line() + "}", "}", "  ]", ndjson_line()]
    )
    assert codes(records) == [
        (1, "INVALID_JSON"),
        (2, "INVALID_JSON"),
        (3, "INVALID_JSON"),
        (4, "INVALID_JSON"),
        (5, "OK"),
    ]
    assert records[1].raw == ndjson_line() + "}"


def test_an_object_over_the_limit_is_too_long_at_its_first_line_and_reading_goes_on(tmp_path):
    big = pretty(email_hash="big", user_profile={"items": [{"n": i} for i in range(40)]})
    long_line = ndjson_line(email_hash="long", user_profile={"x": "y" * 600})
    long_start = '{"operation": "UPSERT", "email_hash": "ls", "user_profile": {"x": "' + "y" * 600
    lines = [
        DOCUMENTED_UPSERT,  # line 1
        big,  # line 18: its nested objects start lines with an indented "{"
        long_line,
        long_start,  # a line over the limit that opens an object going on below
        '"}, "z": [1, {"a": 2}]}',
        ndjson_line(email_hash="last"),
    ]
    records = read_ndjson(tmp_path, lines, max_line_bytes=500)
    after_big = 18 + big.count("\n") + 1
    assert codes(records) == [
        (1, "OK"),
        (18, "LINE_TOO_LONG"),
        (after_big, "LINE_TOO_LONG"),
        (after_big + 1, "LINE_TOO_LONG"),
        (after_big + 3, "OK"),
    ]
    assert records[-1].identifier == EmailIdentifier("last")
    reader = open_reader(
        tmp_path / "in.ndjson", FileFormat.NDJSON, ReaderOptions(max_line_bytes=500)
    )
    assert reader.count_records() == 5


def test_pretty_printed_count_is_the_objects_not_the_lines(tmp_path):
    lines = [DOCUMENTED_UPSERT, "", ndjson_line() + " " + ndjson_line(), "{broken", "  ", pretty()]
    path = write_text(tmp_path, "count.ndjson", "\n".join(lines) + "\n")
    reader = open_reader(path, FileFormat.NDJSON)
    assert reader.count_records() == 5 == len(list(reader))


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text('{}[]",\\ a\n\té'),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text('{}"a', max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
_LAYOUTS = st.sampled_from(["one line", "indent 2", "indent 4", "after the previous one"])


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    commands=st.lists(
        st.tuples(
            st.dictionaries(
                st.text("ab$", min_size=1, max_size=3).filter(lambda k: not k.startswith("$")),
                _JSON_VALUES,
                max_size=3,
            ),
            _LAYOUTS,
            st.integers(0, 2),
        ),
        max_size=6,
    )
)
def test_well_formed_commands_are_read_whatever_their_layout(tmp_path, commands):
    text, expected = "", []
    for index, (profile, layout, blank_lines) in enumerate(commands):
        body = ndjson_line(email_hash=f"h{index}", user_profile=profile)
        if layout.startswith("indent"):
            body = json.dumps(json.loads(body), indent=int(layout[-1]))
        if layout == "after the previous one" and text:
            text = text.rstrip("\n") + " "
        expected.append((text.count("\n") + 1, f"h{index}", profile))
        text += body + "\n" + "\n" * blank_lines
    path = write_text(tmp_path, "layouts.ndjson", text)
    records = read(path, FileFormat.NDJSON)
    assert [(r.line, r.identifier.email_hash, r.user_profile) for r in records] == expected
    assert open_reader(path, FileFormat.NDJSON).count_records() == len(commands)


_ITEMS = st.sampled_from(
    [
        ndjson_line(email_hash="one"),
        pretty(email_hash="pretty", user_profile={"a": [1, {"b": "}{"}]}),
        ndjson_line(email_hash="x") + " " + ndjson_line(email_hash="y") + "  ",
        '{"operation": "UPSERT", "email_hash": "split",\n "user_profile": {}} '
        + ndjson_line(email_hash="after"),
        "",
        "   ",
        "{broken",
        pretty(email_hash="unclosed")[:-1],
        '{"operation": "UPSERT", "email_hash": "bad", "user_profile": {"a": NaN}}',
        "[1, 2]",
        pretty(email_hash="long", user_profile={"blob": "z" * 300}),
    ]
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(items=st.lists(_ITEMS, max_size=8), crlf=st.booleans())
def test_resuming_after_any_record_yields_the_same_remaining_records(tmp_path, items, crlf):
    text = ("\r\n" if crlf else "\n").join(items)
    path = tmp_path / "resume.ndjson"
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    options = ReaderOptions(max_line_bytes=250)
    reader = open_reader(path, FileFormat.NDJSON, options)
    everything, positions = [], []
    for record in reader.iterate():
        everything.append(record)
        positions.append(reader.position)
    assert positions == sorted(positions)
    assert reader.count_records() == len(everything)
    for index, (record, position) in enumerate(zip(everything, positions, strict=True)):
        resumed = open_reader(path, FileFormat.NDJSON, options).iterate(
            after_line=record.line, at_offset=position
        )
        assert list(resumed) == everything[index + 1 :]


def test_pretty_printed_ndjson_is_read_with_flat_memory(tmp_path):
    def peak(objects: int) -> tuple[int, int]:
        path = tmp_path / f"pretty-{objects}.ndjson"
        with path.open("w") as out:
            for index in range(objects):
                out.write(DOCUMENTED_UPSERT.replace("8541254132", f"a{index}") + "\n")
        return _read_peak(path, objects), path.stat().st_size

    small_peak, _ = peak(1_000)
    large_peak, large_size = peak(10_000)
    # Ten times the objects, not ten times the memory: one object is held at a time.
    assert large_peak < 2 * small_peak + 64_000, (small_peak, large_peak)
    assert large_peak < large_size / 20, (large_peak, large_size)
