"""Shared text handling: strict JSON records, bounded lines, encodings, unreadable files."""

from __future__ import annotations

import codecs

import pytest

from imports.readers import FileError, FileFormat, ReaderOptions, open_reader
from profiles.commands import ProfileCommand
from tests.imports.readers.helpers import codes, ndjson_line, only, read, read_ndjson, write_text


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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": "open', "invalid JSON: Unterminated string starting at character 7"),
        ('{"a": "x\ty"}', "invalid JSON: Invalid control character at character 9"),
        ('{"a": }', "invalid JSON: Expecting value at character 7"),
    ],
)
def test_an_invalid_json_message_names_the_character_once(text, message):
    from profiles.strict_json import StrictJsonError, parse_strict_json

    with pytest.raises(StrictJsonError) as raised:
        parse_strict_json(text, max_depth=32)
    assert raised.value.detail == message


@pytest.mark.parametrize(
    ("number", "fits"),
    [
        (2**63 - 1, True),
        (-(2**63), True),  # signed 64 bits: one more below zero than above
        (2**63, False),
        (-(2**63) - 1, False),
    ],
)
def test_integers_are_read_within_signed_64_bits(number, fits):
    from profiles.strict_json import StrictJsonError, parse_strict_json

    text = f'{{"a": {number}}}'
    if fits:
        assert parse_strict_json(text, max_depth=32) == {"a": number}
    else:
        with pytest.raises(StrictJsonError) as refused:
            parse_strict_json(text, max_depth=32)
        assert refused.value.code == "INVALID_NUMBER"


@pytest.mark.parametrize(
    ("fmt", "name"), [(FileFormat.CSV, "in.csv"), (FileFormat.NDJSON, "in.ndjson")]
)
def test_a_utf8_bom_in_a_file_declared_latin1_fails_the_file(tmp_path, fmt, name):
    """Read as latin-1 the BOM would be the first header's `ï»¿` (every line then lacks its
    identifier): the file is UTF-8, and says so before anything is read."""
    text = "email_hash,a\nh1,é\n" if fmt is FileFormat.CSV else ndjson_line() + "\n"
    path = tmp_path / name
    path.write_bytes(codecs.BOM_UTF8 + text.encode())
    with pytest.raises(FileError) as caught:
        list(open_reader(path, fmt, ReaderOptions(encoding="latin-1")))
    assert caught.value.code == "INVALID_ENCODING" and "UTF-8" in caught.value.message
    assert len(list(open_reader(path, fmt, ReaderOptions(encoding="utf-8")))) == 1
