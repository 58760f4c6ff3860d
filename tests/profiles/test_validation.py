"""The profile object validator: addresses, reserved keys, and every error code."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profiles.validation import (
    MAX_DEPTH,
    MAX_PROFILE_BYTES,
    ProfileAddress,
    PropertyError,
    normalize_key,
    split_profile_object,
    validate_custom_properties,
)


def nested(depth: int) -> dict:
    """An object `depth` containers deep, built without recursion."""
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def error_of(props: object) -> PropertyError:
    with pytest.raises(PropertyError) as caught:
        validate_custom_properties(props)
    return caught.value


def split_error_of(obj: object) -> PropertyError:
    with pytest.raises(PropertyError) as caught:
        split_profile_object(obj)
    return caught.value


# split_profile_object


def test_spec_profile_object_splits_into_address_and_custom_properties():
    address, custom = split_profile_object(
        {
            "$compartment_id": 1606,
            "$user_account_id": "c9879698769OIUYOIY9879879",
            "$creation_ts": 1732867200000,
            "$last_modified_ts": 1732870800000,
            "firstname": "David",
            "newsletter_options": {"subscribed": True, "preferred_periods": "MONTHLY"},
        }
    )
    assert address == ProfileAddress(1606, "c9879698769OIUYOIY9879879")
    assert custom == {
        "firstname": "David",
        "newsletter_options": {"subscribed": True, "preferred_periods": "MONTHLY"},
    }


def test_system_set_keys_sent_by_a_client_are_dropped():
    _, custom = split_profile_object(
        {"$creation_ts": "junk", "$last_modified_ts": None, "$user_point_id": "x", "a": 1}
    )
    assert custom == {"a": 1}


def test_profile_without_address_keys_is_anonymous_in_default_compartment():
    address, custom = split_profile_object({"a": 1})
    assert address == ProfileAddress(compartment_id=None, user_account_id=None)
    assert custom == {"a": 1}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1606, 1606),
        ("1606", 1606),
        (" 1606 ", 1606),
        ("01606", 1606),
        (0, 0),
        (None, None),
        (2**31 - 1, 2**31 - 1),
    ],
)
def test_compartment_id_accepts_integers_and_digit_strings(value, expected):
    address, _ = split_profile_object({"$compartment_id": value})
    assert address.compartment_id == expected


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        1606.0,
        1606.5,
        "16a",
        "",
        "  ",
        "-1",
        -1,
        "+1606",
        "1 606",
        "１６０６",
        "١٦٠٦",
        2**31,
        [1606],
        {"id": 1606},
    ],
)
def test_compartment_id_rejects_anything_else(value):
    error = split_error_of({"$compartment_id": value})
    assert error.code == "INVALID_COMPARTMENT_ID"
    assert error.field == "$compartment_id"
    assert "$compartment_id" in error.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", "abc"),
        (" abc ", " abc "),
        (12345, "12345"),
        ("", None),
        (None, None),
        ("x" * 255, "x" * 255),
    ],
)
def test_user_account_id_accepts_strings_and_integers(value, expected):
    address, _ = split_profile_object({"$user_account_id": value})
    assert address.user_account_id == expected


@pytest.mark.parametrize(
    "value", [True, 1.5, "   ", "x" * 256, "a\x00b", ["a"], {"a": 1}, "\ud800"]
)
def test_user_account_id_rejects_anything_else(value):
    error = split_error_of({"$user_account_id": value})
    assert error.code == "INVALID_USER_ACCOUNT_ID"
    assert error.field == "$user_account_id"
    assert "\x00" not in error.message


@pytest.mark.parametrize("obj", [None, [], ["a"], "profile", 1])
def test_profile_that_is_not_an_object_is_rejected(obj):
    assert split_error_of(obj).code == "INVALID_PROFILE"


def test_split_validates_custom_properties():
    assert split_error_of({"$compartment_id": 1, "a": float("nan")}).code == "NON_FINITE_NUMBER"


def test_custom_keys_are_returned_as_sent_not_normalized():
    _, custom = split_profile_object({"ﬁrst": 1})
    assert custom == {"ﬁrst": 1}


# Reserved keys


@pytest.mark.parametrize(
    "key",
    [
        "$foo",
        "$",
        "＄x",  # fullwidth dollar
        "﹩x",  # small dollar
        "\u200b$x",  # zero-width space
        "\u200d$x",
        "\ufeff$x",  # byte order mark
        "\u00ad$x",  # soft hyphen
        "\u2060$x",  # word joiner
        "\u180e$x",
        "\u034f$x",  # combining grapheme joiner
        "\u3164$x",  # Hangul filler
        "\u115f\u1160$x",
        "\uffa0$x",
        "\ufe0f$x",  # variation selector
        "\u180b$x",  # Mongolian free variation selectors
        "\u180c\u180d\u180f$x",
        "\u17b4$x",  # Khmer inherent vowels, not drawn
        "\u17b5$x",
        "\u2065$x",  # unassigned, default ignorable
        "\ufff0$x",
        "\U000e0001$x",  # language tag
        "\U000e0fff$x",
        "\x01$x",
        " $x",
        "\u3000$x",  # ideographic space, NFKC turns it into a space
        "\u200b\u200b＄compartment_id",
    ],
)
def test_reserved_prefix_is_rejected_even_when_disguised(key):
    error = error_of({key: 1})
    assert error.code == "RESERVED_KEY"
    assert error.field == key


def test_reserved_key_message_names_the_key():
    assert error_of({"$x": 1}).message == "custom property key '$x' uses the reserved '$' prefix"


def test_unknown_dollar_key_in_profile_object_is_rejected():
    error = split_error_of({"$compartment_id": 1606, "$foo": "bar"})
    assert (error.code, error.field) == ("RESERVED_KEY", "$foo")


def test_fullwidth_system_key_is_rejected_not_read_as_address():
    error = split_error_of({"＄compartment_id": 1606})
    assert error.code == "RESERVED_KEY"


@pytest.mark.parametrize(
    "props",
    [{"a": {"$x": 1}}, {"a": [{"$x": 1}]}, {"a": {"＄x": {"$y": 2}}}, {"a$": 1}, {"x$y": 1}],
)
def test_dollar_keys_are_allowed_below_the_top_level_or_not_as_prefix(props):
    validate_custom_properties(props)


# normalize_key


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("firstname", "firstname"),
        ("＄x", "$x"),
        ("\u200b$x", "$x"),
        ("a\u00adb", "ab"),
        ("ﬁrst", "first"),
        ("\u3164", ""),
        ("\uffa0", ""),
        ("é", "é"),
        ("e\u0301", "é"),
        ("a b", "a b"),
    ],
)
def test_normalize_key_applies_nfkc_and_drops_invisible_characters(key, expected):
    assert normalize_key(key) == expected


# Error codes


def test_custom_properties_must_be_an_object():
    assert error_of(["a"]).code == "INVALID_PROFILE"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_rejected_with_their_path(value):
    error = error_of({"nl": {"score": [1, value]}})
    assert (error.code, error.field) == ("NON_FINITE_NUMBER", "nl.score[1]")
    assert "nl.score[1]" in error.message


def test_nul_character_in_a_string_value_is_rejected():
    error = error_of({"a": [{"b": "x\x00y"}]})
    assert (error.code, error.field) == ("NUL_CHARACTER", "a[0].b")


def test_nul_character_in_a_nested_key_is_rejected_and_escaped_in_the_report():
    error = error_of({"a": {"b\x00": 1}})
    assert error.code == "NUL_CHARACTER"
    assert error.field == "a.b\\u0000"
    assert "\x00" not in error.message


def test_nesting_at_the_limit_is_accepted():
    validate_custom_properties(nested(MAX_DEPTH))


def test_the_full_check_too_accepts_nesting_at_the_limit():
    """What the fast path leaves to it (a non-ASCII key, a long text) at the limit is accepted."""
    from profiles.validation import _validate_fully

    _validate_fully(nested(MAX_DEPTH))
    validate_custom_properties({"é": nested(MAX_DEPTH - 1)})
    with pytest.raises(PropertyError):
        _validate_fully(nested(MAX_DEPTH + 1))


def test_nesting_past_the_limit_is_too_deep():
    assert error_of(nested(MAX_DEPTH + 1)).code == "TOO_DEEP"


def test_arrays_count_towards_depth():
    value: object = 1
    for _ in range(MAX_DEPTH):
        value = [value]
    assert error_of({"a": value}).code == "TOO_DEEP"


def test_ten_thousand_levels_are_too_deep_without_recursion_error():
    error = error_of(nested(10_000))
    assert error.code == "TOO_DEEP"


def test_self_referencing_object_is_too_deep_not_an_endless_loop():
    loop: dict = {}
    loop["self"] = loop
    assert error_of(loop).code == "TOO_DEEP"


def test_profile_over_the_size_limit_is_too_large():
    assert error_of({"blob": "x" * MAX_PROFILE_BYTES}).code == "TOO_LARGE"


def test_profile_size_counts_utf8_bytes():
    # 500_000 characters, but 1_000_000 bytes once encoded.
    assert error_of({"blob": "é" * (MAX_PROFILE_BYTES // 2)}).code == "TOO_LARGE"


def test_profile_just_under_the_size_limit_is_accepted():
    overhead = len('{"blob":""}')
    validate_custom_properties({"blob": "x" * (MAX_PROFILE_BYTES - overhead)})


def test_key_of_256_characters_is_accepted():
    validate_custom_properties({"k" * 256: 1, "a": {"k" * 256: 1}})


def test_key_longer_than_256_characters_is_rejected_with_a_short_report():
    error = error_of({"a": {"k" * 10_000: 1}})
    assert error.code == "KEY_TOO_LONG"
    assert len(error.field) < 100
    assert len(error.message) < 200


@pytest.mark.parametrize("key", ["", " ", "\u200b", "\ufeff\u200d", "\u3164"])
def test_empty_keys_are_rejected_at_any_depth(key):
    assert error_of({key: 1}).code == "EMPTY_KEY"
    assert error_of({"a": [{key: 1}]}).code == "EMPTY_KEY"


@pytest.mark.parametrize("number", [2**63, -(2**63) - 1, 10**30, -(10**30)])
def test_integers_outside_64_bits_are_rejected(number):
    error = error_of({"a": {"b": number}})
    assert (error.code, error.field) == ("INVALID_NUMBER", "a.b")


def test_integers_at_the_64_bit_edge_are_accepted():
    """Signed 64 bits: one more integer below zero than above (-2**63)."""
    validate_custom_properties({"a": 2**63 - 1, "b": -(2**63), "c": 1e300})


@pytest.mark.parametrize(
    "value",
    [{1, 2}, b"bytes", object(), (1, 2), Decimal("1.5"), frozenset(), "\ud800", complex(1, 2)],
    ids=["set", "bytes", "object", "tuple", "decimal", "frozenset", "lone_surrogate", "complex"],
)
def test_values_that_are_not_json_are_rejected(value):
    error = error_of({"a": [value]})
    assert (error.code, error.field) == ("INVALID_VALUE", "a[0]")


@pytest.mark.parametrize("key", [1, None, ("a",)])
def test_non_string_keys_are_rejected(key):
    assert error_of({"a": {key: 1}}).code == "INVALID_VALUE"


def test_valid_json_of_every_kind_is_accepted():
    validate_custom_properties(
        {
            "s": "text é ✓ 🎉",
            "i": -42,
            "f": 3.25,
            "b": False,
            "n": None,
            "o": {"nested": {"deeper": [1, "two", {"three": 3.0}]}},
            "a": [],
            "e": {},
        }
    )


def test_first_problem_in_document_order_is_reported():
    error = error_of({"a": 1, "b": float("nan"), "c": "\x00"})
    assert error.field == "b"


def test_property_error_is_a_value_error_carrying_its_message():
    error = error_of({"a": float("nan")})
    assert isinstance(error, ValueError)
    assert str(error) == error.message


# The fast path of validate_custom_properties must never accept what the full walk refuses.

_awkward_keys = st.one_of(
    st.text(max_size=4),
    st.sampled_from(["", " ", "$x", " $x", "＄x", "\u200b$x", "a\x00", "k" * 257, "\ud800"]),
)
_awkward_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(["\x00", "a\ud800", "é", "x" * 300_000]),
    st.tuples(st.integers()),
    st.binary(max_size=2),
)
_awkward_json = st.recursive(
    _awkward_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(_awkward_keys, children, max_size=4),
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_awkward_keys, _awkward_json, max_size=6))
def test_fast_path_accepts_only_what_the_full_check_accepts(props):
    from profiles.validation import _plainly_valid, _validate_fully

    if _plainly_valid(props):
        _validate_fully(props)  # must not raise


def test_fast_path_leaves_deep_and_large_objects_to_the_full_check():
    from profiles.validation import _plainly_valid

    deep: dict = {}
    node = deep
    for _ in range(40):
        node["a"] = {}
        node = node["a"]
    assert not _plainly_valid(deep)
    assert _plainly_valid(nested(MAX_DEPTH))  # at the limit: no second, full walk
    assert not _plainly_valid(nested(MAX_DEPTH + 1))
    assert not _plainly_valid({"big": "x" * 600_000})  # bound over 1 MB: measured exactly
    assert _plainly_valid({"firstname": "David", "nl": {"on": True}, "tags": ["a", 1, 2.5, None]})
