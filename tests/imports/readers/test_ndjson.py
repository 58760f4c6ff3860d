"""NDJSON reading: physical lines, blank lines, encodings, resuming, flat memory, counting."""

from __future__ import annotations

import tracemalloc

from imports.readers import FileFormat, ReaderOptions, open_reader
from profiles.commands import EmailIdentifier, Operation, ProfileCommand, UserAgentIdentifier
from tests.imports.readers.helpers import codes, ndjson_line, only, read, read_ndjson, write_text


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
