"""SPEC §2's strategies, sentence by sentence, then as hypothesis properties."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from profiles import merge
from profiles.merge import (
    DEFAULT_MERGE_MODE,
    MergeMode,
    Strategy,
    StrategyError,
    apply_merge,
    choose_merge_mode,
    deep_merge,
    force_replace,
    json_equal,
    parse_bool_word,
    partial_delete,
    partial_update,
)

FORCE = MergeMode(Strategy.FORCE_REPLACE)
SHALLOW = MergeMode(Strategy.PARTIAL_UPDATE, merge_objects=False)
DEEP = MergeMode(Strategy.PARTIAL_UPDATE, merge_objects=True)
DELETE = MergeMode(Strategy.PARTIAL_DELETE)
ALL_MODES = [FORCE, SHALLOW, DEEP, DELETE]

CONTRACTS = [{"id": "c1", "s": "on"}, {"id": "c2", "s": "on"}]
EXAMPLE = {
    "firstname": "David",
    "gender": 1,
    "nl": {"subscribed": True, "period": "MONTHLY"},
    "tags": ["a", "b"],
    "contracts": CONTRACTS,
}


def same(left: Any, right: Any) -> bool:
    """Strict structural equality: unlike ==, True is not 1 and 1.0 is not 1."""
    return json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True)


def containers(value: Any) -> list[Any]:
    """Every dict and list inside value, value included."""
    found, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            found.append(item)
            stack.extend(item)
    return found


def shares_nothing(result: Any, *inputs: Any) -> bool:
    input_ids = {id(item) for value in inputs for item in containers(value)}
    return not input_ids & {id(item) for item in containers(result)}


# SPEC §2 worked example

WORKED_EXAMPLE = [
    pytest.param(FORCE, {"lastname": "Guetta"}, {"lastname": "Guetta"}, id="force_replace"),
    pytest.param(
        SHALLOW,
        {"gender": 2, "nl": {"subscribed": False}},
        {
            "firstname": "David",
            "gender": 2,
            "nl": {"subscribed": False},
            "tags": ["a", "b"],
            "contracts": CONTRACTS,
        },
        id="partial_update_shallow",
    ),
    pytest.param(
        DEEP,
        {"gender": 2, "nl": {"subscribed": False}, "tags": ["b", "c"]},
        {
            "firstname": "David",
            "gender": 2,
            "nl": {"subscribed": False, "period": "MONTHLY"},
            "tags": ["a", "b", "c"],
            "contracts": CONTRACTS,
        },
        id="partial_update_deep",
    ),
    pytest.param(
        DELETE,
        {"gender": None, "nl": {"period": None}, "tags": ["a"], "contracts": [{"id": "c1"}]},
        {
            "firstname": "David",
            "nl": {"subscribed": True},
            "tags": ["b"],
            "contracts": [{"id": "c2", "s": "on"}],
        },
        id="partial_delete",
    ),
]


@pytest.mark.parametrize(("mode", "incoming", "expected"), WORKED_EXAMPLE)
def test_worked_example_row_gives_documented_result(mode, incoming, expected):
    assert same(apply_merge(EXAMPLE, incoming, mode), expected)


@pytest.mark.parametrize(("mode", "incoming", "expected"), WORKED_EXAMPLE)
def test_worked_example_leaves_inputs_untouched_and_unshared(mode, incoming, expected):
    existing_before, incoming_before = copy.deepcopy(EXAMPLE), copy.deepcopy(incoming)
    result = apply_merge(EXAMPLE, incoming, mode)
    assert same(EXAMPLE, existing_before)
    assert same(incoming, incoming_before)
    assert shares_nothing(result, EXAMPLE, incoming)


# Creation


@pytest.mark.parametrize("mode", [FORCE, SHALLOW, DEEP], ids=str)
def test_upsert_on_missing_profile_creates_it_with_incoming(mode):
    incoming = {"nl": {"subscribed": True}, "tags": ["a", "a"]}
    result = apply_merge(None, incoming, mode)
    assert same(result, incoming)
    assert shares_nothing(result, incoming)


def test_partial_delete_on_missing_profile_creates_nothing():
    assert apply_merge(None, {"gender": None}, DELETE) is None


def test_partial_delete_on_missing_profile_with_empty_incoming_creates_nothing():
    assert apply_merge(None, {}, DELETE) is None


def test_upsert_with_empty_incoming_creates_an_empty_profile():
    assert apply_merge(None, {}, DEEP) == {}


# FORCE_REPLACE


def test_force_replace_drops_keys_absent_from_incoming():
    assert same(force_replace({"a": 1, "b": {"c": 2}}, {"b": {"d": 3}}), {"b": {"d": 3}})


def test_force_replace_with_empty_incoming_empties_the_profile():
    assert apply_merge(EXAMPLE, {}, FORCE) == {}


# PARTIAL_UPDATE, merge_objects false


def test_shallow_update_replaces_nested_objects_wholesale():
    result = partial_update({"nl": {"a": 1, "b": 2}}, {"nl": {"a": 3}}, merge_objects=False)
    assert same(result, {"nl": {"a": 3}})


def test_shallow_update_replaces_arrays_instead_of_appending():
    result = partial_update({"tags": ["a"]}, {"tags": ["b"]}, merge_objects=False)
    assert same(result, {"tags": ["b"]})


def test_shallow_update_keeps_other_keys_and_adds_new_ones():
    result = partial_update({"a": 1, "b": 2}, {"b": 3, "c": 4}, merge_objects=False)
    assert same(result, {"a": 1, "b": 3, "c": 4})


def test_shallow_update_writes_null_as_a_value():
    assert same(partial_update({"a": 1}, {"a": None}, merge_objects=False), {"a": None})


# PARTIAL_UPDATE, merge_objects true (deep merge)


def test_deep_merge_recurses_into_nested_objects():
    existing = {"a": {"b": {"c": 1, "d": 2}, "e": 3}}
    result = deep_merge(existing, {"a": {"b": {"c": 9, "f": 4}}})
    assert same(result, {"a": {"b": {"c": 9, "d": 2, "f": 4}, "e": 3}})


def test_deep_merge_appends_only_array_elements_not_already_present():
    result = deep_merge({"t": ["a", "b"]}, {"t": ["b", "c", "a", "d"]})
    assert same(result, {"t": ["a", "b", "c", "d"]})


def test_deep_merge_adds_an_element_repeated_in_incoming_once():
    assert same(deep_merge({"t": []}, {"t": ["x", "x", "y", "x"]}), {"t": ["x", "y"]})


def test_deep_merge_keeps_duplicates_already_stored():
    assert same(deep_merge({"t": ["a", "a"]}, {"t": ["a", "b"]}), {"t": ["a", "a", "b"]})


def test_deep_merge_compares_array_objects_by_deep_equality():
    existing = {"c": [{"id": 1, "tags": ["x"]}]}
    incoming = {"c": [{"tags": ["x"], "id": 1.0}, {"id": 2}]}
    assert same(deep_merge(existing, incoming), {"c": [{"id": 1, "tags": ["x"]}, {"id": 2}]})


def test_deep_merge_does_not_treat_true_as_one():
    assert same(deep_merge({"t": [1, 0]}, {"t": [True, False, 1.0]}), {"t": [1, 0, True, False]})


def test_deep_merge_null_overwrites_an_object():
    assert same(deep_merge({"nl": {"a": 1}}, {"nl": None}), {"nl": None})


def test_deep_merge_null_overwrites_a_scalar_and_is_kept():
    assert same(deep_merge({"a": 1, "b": 2}, {"a": None}), {"a": None, "b": 2})


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"b": 1}, "text"),
        ("text", {"b": 1}),
        (["a"], {"b": 1}),
        ({"b": 1}, ["a"]),
        (["a"], "a"),
        (1, [1]),
    ],
)
def test_deep_merge_incoming_wins_when_kinds_differ(old, new):
    assert same(deep_merge({"k": old}, {"k": new}), {"k": new})


def test_deep_merge_merges_objects_nested_in_new_keys_as_copies():
    incoming = {"new": {"deep": [{"x": 1}]}}
    result = deep_merge({}, incoming)
    assert same(result, incoming)
    assert shares_nothing(result, incoming)


# PARTIAL_DELETE


def test_partial_delete_removes_matching_array_objects():
    assert same(
        partial_delete({"contracts": CONTRACTS}, {"contracts": [{"id": "c1"}]}),
        {"contracts": [{"id": "c2", "s": "on"}]},
    )


def test_partial_delete_object_pattern_matches_every_element_containing_it():
    existing = {"c": [{"id": 1, "s": "on"}, {"id": 2, "s": "on"}, {"id": 3, "s": "off"}]}
    assert same(partial_delete(existing, {"c": [{"s": "on"}]}), {"c": [{"id": 3, "s": "off"}]})


def test_partial_delete_object_containment_is_recursive():
    existing = {"c": [{"id": 1, "meta": {"src": "crm", "v": 2}}, {"id": 2, "meta": {"src": "web"}}]}
    result = partial_delete(existing, {"c": [{"meta": {"src": "crm"}}]})
    assert same(result, {"c": [{"id": 2, "meta": {"src": "web"}}]})


def test_partial_delete_arrays_inside_a_pattern_must_be_equal():
    existing = {"c": [{"id": 1, "tags": ["a", "b"]}, {"id": 2, "tags": ["a"]}]}
    result = partial_delete(existing, {"c": [{"tags": ["a"]}]})
    assert same(result, {"c": [{"id": 1, "tags": ["a", "b"]}]})


def test_partial_delete_keeps_elements_not_containing_the_pattern():
    existing = {"c": [{"id": "c1"}]}
    assert same(partial_delete(existing, {"c": [{"id": "c1", "s": "on"}]}), existing)
    assert same(partial_delete(existing, {"c": [{"id": "c3"}]}), existing)


def test_partial_delete_object_pattern_does_not_match_scalars():
    assert same(partial_delete({"c": ["id", 1]}, {"c": [{"id": 1}]}), {"c": ["id", 1]})


def test_partial_delete_empty_object_pattern_removes_every_object_element():
    assert same(partial_delete({"c": [{"a": 1}, {}, "x", [1]]}, {"c": [{}]}), {"c": ["x", [1]]})


def test_partial_delete_removes_every_equal_scalar():
    assert same(partial_delete({"t": ["a", "b", "a", "c"]}, {"t": ["a", "c"]}), {"t": ["b"]})


def test_partial_delete_uses_json_equality_for_numbers():
    assert same(partial_delete({"t": [1, True, 2]}, {"t": [1.0]}), {"t": [True, 2]})
    assert same(partial_delete({"t": [1, True, 0, False]}, {"t": [True, 0]}), {"t": [1, False]})


def test_partial_delete_array_elements_match_nested_arrays_by_equality():
    assert same(partial_delete({"t": [[1, 2], [2, 1]]}, {"t": [[1, 2]]}), {"t": [[2, 1]]})


def test_partial_delete_recurses_into_objects_and_keeps_emptied_object():
    assert same(partial_delete({"nl": {"a": 1}}, {"nl": {"a": None}}), {"nl": {}})


def test_partial_delete_with_empty_object_removes_nothing():
    assert same(partial_delete({"nl": {"a": 1}}, {"nl": {}}), {"nl": {"a": 1}})


@pytest.mark.parametrize(
    "value",
    [None, 0, False, "anything", {"x": 1}, ["x"]],
    ids=["null", "zero", "false", "string", "object", "array"],
)
def test_partial_delete_removes_scalar_key_whatever_incoming_value(value):
    assert same(partial_delete({"gender": 1, "keep": 2}, {"gender": value}), {"keep": 2})


@pytest.mark.parametrize(
    ("old", "pattern"),
    [({"a": 1}, None), ({"a": 1}, ["a"]), (["a"], None), (["a"], {"a": 1}), ({"a": 1}, "a")],
)
def test_partial_delete_removes_key_when_kinds_differ(old, pattern):
    assert partial_delete({"k": old}, {"k": pattern}) == {}


def test_partial_delete_ignores_keys_missing_from_profile():
    assert same(partial_delete({"a": 1}, {"b": None, "c": {"d": None}, "e": ["x"]}), {"a": 1})


def test_partial_delete_ignores_nested_keys_missing_from_profile():
    assert same(partial_delete({"nl": {"a": 1}}, {"nl": {"b": None}}), {"nl": {"a": 1}})


# json_equal


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (1, 1.0),
        (0, -0.0),
        ({"a": 1}, {"a": 1.0}),
        ([1, {"b": [2.0]}], [1.0, {"b": [2]}]),
        ("a", "a"),
        (None, None),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
    ],
)
def test_json_equal_holds_for_equal_json(left, right):
    assert json_equal(left, right)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (True, 1),
        (False, 0),
        ([True], [1]),
        ({"a": False}, {"a": 0}),
        (None, False),
        ("1", 1),
        ([1, 2], [2, 1]),
        ({"a": 1}, {"a": 1, "b": 2}),
        ([], {}),
        (None, 0),
    ],
)
def test_json_equal_fails_for_different_json(left, right):
    assert not json_equal(left, right)


# choose_merge_mode


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, DEEP),
        ({"update_strategy": "PARTIAL_UPDATE"}, DEEP),
        ({"update_strategy": "PARTIAL_UPDATE", "merge_objects": False}, SHALLOW),
        ({"update_strategy": "PARTIAL_UPDATE", "merge_objects": True}, DEEP),
        ({"update_strategy": "FORCE_REPLACE"}, FORCE),
        ({"update_strategy": "PARTIAL_DELETE"}, DELETE),
        ({"update_strategy": " partial_delete "}, DELETE),
        ({"update_strategy": "Force_Replace"}, FORCE),
        ({"update_strategy": "PARTIAL_DELETE", "merge_objects": False}, DELETE),
        # update_strategy wins over the legacy fields
        ({"update_strategy": "FORCE_REPLACE", "force_replace": False}, FORCE),
        ({"update_strategy": "PARTIAL_UPDATE", "force_replace": True}, DEEP),
        # the legacy form
        ({"force_replace": True}, FORCE),
        ({"force_replace": True, "merge_objects": True}, FORCE),
        ({"force_replace": False}, SHALLOW),
        ({"force_replace": False, "merge_objects": False}, SHALLOW),
        ({"force_replace": False, "merge_objects": True}, DEEP),
        # no strategy at all: the import's default, merge_objects as given
        ({"merge_objects": False}, SHALLOW),
        ({"merge_objects": True}, DEEP),
        # absent values
        ({"update_strategy": None, "force_replace": None, "merge_objects": None}, DEEP),
        ({"update_strategy": "", "force_replace": "", "merge_objects": ""}, DEEP),
        ({"update_strategy": "  ", "force_replace": " "}, DEEP),
    ],
)
def test_choose_merge_mode_follows_spec_table(fields, expected):
    assert choose_merge_mode(**fields) == expected


@pytest.mark.parametrize(
    ("fields", "default", "expected"),
    [
        ({}, SHALLOW, SHALLOW),
        ({"merge_objects": True}, SHALLOW, DEEP),
        ({}, FORCE, FORCE),
        ({"merge_objects": False}, FORCE, FORCE),
        ({"update_strategy": "PARTIAL_UPDATE"}, SHALLOW, DEEP),
        ({"force_replace": False}, FORCE, SHALLOW),
    ],
)
def test_choose_merge_mode_falls_back_to_the_import_default(fields, default, expected):
    assert choose_merge_mode(**fields, default=default) == expected


def test_default_merge_mode_is_deep_partial_update():
    assert DEFAULT_MERGE_MODE == DEEP


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        (" True ", True),
        ("1", True),
        ("yes", True),
        ("YES", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        (" No ", False),
        (True, True),
        (False, False),
        (1, True),
        (0, False),
    ],
)
def test_choose_merge_mode_reads_csv_booleans(text, expected):
    assert choose_merge_mode(force_replace=False, merge_objects=text).merge_objects is expected
    replaced = choose_merge_mode(force_replace=text).strategy is Strategy.FORCE_REPLACE
    assert replaced is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        (" YES ", True),
        ("1", True),
        ("False", False),
        ("no", False),
        ("0", False),
        ("", None),
        ("t", None),
        ("maybe", None),
        ("2", None),
    ],
)
def test_bool_words_are_the_one_list_every_reader_uses(text, expected):
    assert parse_bool_word(text) is expected


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"update_strategy": "MERGE"}, "INVALID_UPDATE_STRATEGY", "update_strategy"),
        ({"update_strategy": "DELETE"}, "INVALID_UPDATE_STRATEGY", "update_strategy"),
        ({"update_strategy": "PARTIAL UPDATE"}, "INVALID_UPDATE_STRATEGY", "update_strategy"),
        ({"update_strategy": 1}, "INVALID_UPDATE_STRATEGY", "update_strategy"),
        ({"update_strategy": True}, "INVALID_UPDATE_STRATEGY", "update_strategy"),
        ({"update_strategy": ["FORCE_REPLACE"]}, "INVALID_UPDATE_STRATEGY", "update_strategy"),
        ({"force_replace": "maybe"}, "INVALID_FORCE_REPLACE", "force_replace"),
        ({"force_replace": 2}, "INVALID_FORCE_REPLACE", "force_replace"),
        ({"force_replace": 1.0}, "INVALID_FORCE_REPLACE", "force_replace"),
        ({"force_replace": "t"}, "INVALID_FORCE_REPLACE", "force_replace"),
        ({"merge_objects": "on"}, "INVALID_MERGE_OBJECTS", "merge_objects"),
        ({"merge_objects": {}}, "INVALID_MERGE_OBJECTS", "merge_objects"),
        # a bad value is an error even where another field decides
        (
            {"update_strategy": "FORCE_REPLACE", "merge_objects": "x"},
            "INVALID_MERGE_OBJECTS",
            "merge_objects",
        ),
        (
            {"update_strategy": "FORCE_REPLACE", "force_replace": "x"},
            "INVALID_FORCE_REPLACE",
            "force_replace",
        ),
    ],
)
def test_choose_merge_mode_rejects_bad_values_naming_the_field(fields, code, field):
    with pytest.raises(StrategyError) as caught:
        choose_merge_mode(**fields)
    assert caught.value.code == code
    assert caught.value.field == field
    assert field in caught.value.message
    assert str(caught.value) == caught.value.message


def test_strategy_error_is_a_value_error():
    with pytest.raises(ValueError):
        choose_merge_mode(update_strategy="nope")


# Properties

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-3, max_value=3)
    | st.sampled_from([0.0, 1.0, 1.5, -2.0])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet="abc", max_size=2)
)
json_keys = st.text(alphabet="abcd", max_size=2)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(json_keys, json_values, max_size=5)
modes = st.sampled_from(ALL_MODES)


@given(json_objects, json_objects)
def test_force_replace_is_idempotent(existing, incoming):
    once = apply_merge(existing, incoming, FORCE)
    assert same(once, incoming)
    assert same(apply_merge(once, incoming, FORCE), once)


@given(json_objects, json_objects, modes)
def test_applying_a_strategy_twice_equals_applying_it_once(existing, incoming, mode):
    once = apply_merge(existing, incoming, mode)
    assert same(apply_merge(once, incoming, mode), once)


@given(json_objects, json_objects)
def test_partial_delete_twice_equals_once(existing, incoming):
    once = partial_delete(existing, incoming)
    assert same(partial_delete(once, incoming), once)


@given(json_objects, json_objects)
def test_deleting_the_keys_a_deep_merge_added_restores_the_profile(existing, incoming):
    added = {key: value for key, value in incoming.items() if key not in existing}
    merged = deep_merge(existing, added)
    assert same(partial_delete(merged, {key: None for key in added}), existing)
    # With keys that were also updated, the added keys are gone and the others stay.
    merged = deep_merge(existing, incoming)
    restored = partial_delete(merged, {key: None for key in added})
    assert set(restored) == set(existing)


@given(json_objects)
def test_deep_merge_with_itself_returns_the_profile(existing):
    assert same(deep_merge(existing, copy.deepcopy(existing)), existing)


@given(json_objects, st.sampled_from([SHALLOW, DEEP, DELETE]))
def test_empty_incoming_leaves_the_profile_unchanged(existing, mode):
    assert same(apply_merge(existing, {}, mode), existing)


@given(json_objects, json_objects, modes)
def test_results_are_always_valid_json(existing, incoming, mode):
    result = apply_merge(existing, incoming, mode)
    assert isinstance(result, dict)
    json.dumps(result, allow_nan=False)


@given(json_objects, json_objects, modes)
def test_merging_never_mutates_or_shares_its_inputs(existing, incoming, mode):
    existing_before, incoming_before = copy.deepcopy(existing), copy.deepcopy(incoming)
    result = apply_merge(existing, incoming, mode)
    assert same(existing, existing_before)
    assert same(incoming, incoming_before)
    assert shares_nothing(result, existing, incoming)


@given(json_objects, json_objects)
def test_deep_merge_keeps_every_stored_array_element(existing, incoming):
    merged = deep_merge(existing, incoming)
    for key, old in existing.items():
        if isinstance(old, list) and isinstance(incoming.get(key), list):
            assert same(merged[key][: len(old)], old)


@given(json_values)
def test_json_equal_survives_a_json_round_trip(value):
    assert json_equal(value, json.loads(json.dumps(value)))


_numbers = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**60), 2**60).map(float),
    st.sampled_from([0, 0.0, -0.0, 1, 1.0, True, False, 4.16204692637487e16, 41620469263748700]),
)
_close_values = st.recursive(
    st.none() | st.booleans() | _numbers | st.text(max_size=3),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet="ab", max_size=1), children, max_size=3)
    ),
    max_leaves=8,
)


@given(_close_values, _close_values)
def test_json_equal_is_equality_of_the_canonical_forms(left, right):
    """The direct walk says what comparing `_canonical` forms says, for nested objects,
    arrays, nulls, unicode and numbers of every kind (1 and 1.0, True and 1, big floats)."""
    assert json_equal(left, right) == (merge._canonical(left) == merge._canonical(right))
    assert json_equal(left, left)


@given(_close_values)
def test_json_equal_meets_a_copy_with_ints_as_floats(value):
    def floats(item):
        if isinstance(item, dict):
            return {key: floats(sub) for key, sub in item.items()}
        if isinstance(item, list):
            return [floats(sub) for sub in item]
        if type(item) is int and abs(item) < 2**53:
            return float(item)
        return item

    twin = floats(value)
    assert json_equal(value, twin) == (merge._canonical(value) == merge._canonical(twin))
    assert json_equal(value, twin)
