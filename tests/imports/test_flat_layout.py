"""The SPEC §3 flat layout both ways: headers and cell codecs read back what they write."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imports.flat_layout import (
    BOOL,
    FLOAT,
    INT,
    JSON,
    STR,
    TYPE_SUFFIXES,
    UNTYPED,
    CellError,
    FlatColumn,
    HeaderError,
    codec_for,
    codec_of_value,
    is_plain_string,
    parse_header,
    render_header,
)
from imports.readers.xlsx import normalise_typed_cell
from tests.imports.writers.helpers import typed

MAX_DEPTH = 32
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=10)
KEYS = TEXT | st.sampled_from(
    [
        "a",
        "a.b",
        ".",
        ":",
        "x:int",
        "age:INT",
        "[x]",
        '"q"',
        " a",
        "",
        "=1+1",
        "-",
        "'q",
        "a\nb",
        "operation",
        "compartment_id",
        "force_replace",
        "_line",
        "_error",
        "$compartment_id",
        "$user_account_id",
        "$k",
    ]
)
PATHS = st.lists(KEYS, min_size=1, max_size=4).map(tuple)
SUFFIXES = st.sampled_from([None, *sorted(TYPE_SUFFIXES)])


# --------------------------------------------------------------------------- headers


@given(PATHS, SUFFIXES)
def test_a_rendered_header_parses_back_to_its_path_and_suffix(path, suffix):
    header = render_header(path, suffix)
    assert parse_header([header]) == [
        FlatColumn(header=header, role="profile", path=path, suffix=suffix)
    ]


@pytest.mark.parametrize(
    ("path", "suffix", "header"),
    [
        (("newsletter", "subscribed"), "bool", "newsletter.subscribed:bool"),
        (("firstname",), None, "firstname"),
        (("$compartment_id",), "str", "$compartment_id:str"),
        (("my.key", "x"), "int", '["my.key","x"]:int'),
        (("x:int",), None, '["x:int"]'),
        (("operation",), "json", '["operation"]:json'),
        (("operation", "x"), None, "operation.x"),
        (("_line",), None, '["_line"]'),
        ((" a",), None, '[" a"]'),
        (("=1",), None, '["=1"]'),
        (("",), None, '[""]'),
    ],
)
def test_headers_are_dotted_unless_a_key_needs_the_json_array_form(path, suffix, header):
    assert render_header(path, suffix) == header


def test_reserved_and_annotation_headers_are_not_profile_columns():
    columns = parse_header(["operation", "email_hash:int", "_line", "$user_account_id"])
    assert [(c.role, c.name, c.path) for c in columns] == [
        ("command", "operation", ()),
        ("command", "email_hash", ()),
        ("annotation", "_line", ()),
        ("profile", "", ("$user_account_id",)),
    ]


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ([], "NO_HEADER"),
        (["", " "], "NO_HEADER"),
        (["", "a"], "INVALID_HEADER"),
        (["a..b"], "INVALID_HEADER"),
        (['["a"]:integer'], "INVALID_HEADER"),
        (["a", "a:int"], "DUPLICATE_HEADER"),
        (["a", "a.b"], "HEADER_CONFLICT"),
    ],
)
def test_a_header_that_cannot_be_read_is_a_header_error(headers, code):
    with pytest.raises(HeaderError) as caught:
        parse_header(headers)
    assert caught.value.code == code


# --------------------------------------------------------------------------- cells

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)  # JSON integers are read within 64 bits
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
            children,
            max_size=3,
        )
    ),
    max_leaves=10,
)
CODEC_VALUES = [
    (UNTYPED, st.text().filter(is_plain_string)),
    (STR, st.text()),
    (INT, st.integers()),
    (FLOAT, st.floats(allow_nan=False, allow_infinity=False)),
    (BOOL, st.booleans()),
    (JSON, JSON_VALUES),
]

CODEC_IDS = [type(codec).__name__ for codec, _ in CODEC_VALUES]


def same(left, right) -> bool:
    """Equal with types and the sign of zero: 1, 1.0, True and -0.0, 0.0 all differ."""
    return repr(typed(left)) == repr(typed(right))


@pytest.mark.parametrize(("codec", "values"), CODEC_VALUES, ids=CODEC_IDS)
def test_every_codec_reads_back_the_text_cell_it_renders(codec, values):
    @given(values)
    def check(value):
        cell = codec.render(value)
        assert isinstance(cell, str)
        assert same(codec.clean(cell, max_depth=MAX_DEPTH), value)

    check()


@pytest.mark.parametrize(("codec", "values"), CODEC_VALUES, ids=CODEC_IDS)
def test_every_codec_reads_back_the_xlsx_cell_it_renders(codec, values):
    @given(values)
    def check(value):
        cell = normalise_typed_cell(codec.render(value, typed=True))  # as openpyxl reads it
        assert same(codec.clean(cell, max_depth=MAX_DEPTH), value)

    check()


@pytest.mark.parametrize(
    ("value", "codec"),
    [
        (True, BOOL),
        (3, INT),
        (3.0, FLOAT),
        ("David", UNTYPED),
        ("=1+1", JSON),
        ("", JSON),
        (" ", JSON),
        ("a\rb", JSON),
        (None, JSON),
        ([1], JSON),
        ({}, JSON),
    ],
)
def test_an_export_column_takes_the_codec_its_values_need(value, codec):
    assert codec_of_value(value) is codec


@pytest.mark.parametrize(
    ("suffix", "cell", "message"),
    [
        ("int", "4.5", "'4.5' is not an integer"),
        ("int", 4.5, "4.5 is not an integer"),
        ("int", True, "True is not a number"),
        ("float", "x", "'x' is not a number"),
        ("float", "1e999", "'1e999' is too large for a number"),
        ("bool", "maybe", "'maybe' is not a boolean (true/false, 1/0, yes/no)"),
        ("bool", 2, "2 is not a boolean"),
        ("json", "{", "invalid JSON: Expecting property name enclosed in double quotes"),
    ],
)
def test_a_cell_that_does_not_convert_says_why(suffix, cell, message):
    with pytest.raises(CellError) as caught:
        codec_for(suffix).clean(cell, max_depth=MAX_DEPTH)
    assert str(caught.value).startswith(message)


def test_untyped_and_str_cells_differ_only_on_native_cells():
    assert UNTYPED.clean(" 7 ", max_depth=MAX_DEPTH) == STR.clean(" 7 ", max_depth=MAX_DEPTH)
    assert UNTYPED.clean(7, max_depth=MAX_DEPTH) == 7
    assert STR.clean(7, max_depth=MAX_DEPTH) == "7"
    assert STR.clean(False, max_depth=MAX_DEPTH) == "false"
