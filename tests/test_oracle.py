"""The oracle of SPEC §2 (tests/oracle.py) against the SPEC's own words, so it can be trusted
as the reference the write engine is held to."""

from __future__ import annotations

import pytest

from tests.oracle import (
    CRM,
    DEEP,
    DELETE_KEYS,
    REPLACE,
    SHALLOW,
    Change,
    State,
    apply_commands,
    choose_mode,
    same,
    upsert,
)

E = {
    "firstname": "David",
    "gender": 1,
    "nl": {"subscribed": True, "period": "MONTHLY"},
    "tags": ["a", "b"],
    "contracts": [{"id": "c1", "s": "on"}, {"id": "c2", "s": "on"}],
}
OWN = (f"account:{CRM}/a", CRM, "a")  # account a's own profile


def datamart() -> State:
    return State(compartments={1, CRM}, default_compartment=1)


def run(*commands: dict, default=DEEP, state: State | None = None):
    return apply_commands(state or datamart(), list(commands), default)


def stored_after(*commands: dict, default=DEEP) -> dict | None:
    return run(*commands, default=default).state.profiles.get(OWN)


# SPEC §2 worked example, row by row


@pytest.mark.parametrize(
    ("fields", "incoming", "expected"),
    [
        ({"update_strategy": "FORCE_REPLACE"}, {"lastname": "Guetta"}, {"lastname": "Guetta"}),
        (
            {"update_strategy": "PARTIAL_UPDATE", "merge_objects": False},
            {"gender": 2, "nl": {"subscribed": False}},
            {**E, "gender": 2, "nl": {"subscribed": False}},
        ),
        (
            {"update_strategy": "PARTIAL_UPDATE"},
            {"gender": 2, "nl": {"subscribed": False}, "tags": ["b", "c"]},
            {
                **E,
                "gender": 2,
                "nl": {"subscribed": False, "period": "MONTHLY"},
                "tags": ["a", "b", "c"],
            },
        ),
        (
            {"update_strategy": "PARTIAL_DELETE"},
            {"gender": None, "nl": {"period": None}, "tags": ["a"], "contracts": [{"id": "c1"}]},
            {
                "firstname": "David",
                "nl": {"subscribed": True},
                "tags": ["b"],
                "contracts": [{"id": "c2", "s": "on"}],
            },
        ),
    ],
    ids=["force_replace", "shallow", "deep", "partial_delete"],
)
def test_worked_example_row_gives_the_documented_result(fields, incoming, expected):
    outcome = run(upsert(E), upsert(incoming, **fields))
    assert same(outcome.state.profiles[OWN], expected)
    assert outcome.counts["created"] == 1 and outcome.counts["updated"] == 1


# Points, addressing (rule 2) and the DELETE rule


def test_upsert_through_an_unknown_identifier_creates_its_point_and_profile():
    outcome = run({"operation": "UPSERT", "email_hash": "e1", "user_profile": {"x": 1}})
    assert outcome.state.identifiers == {"email:e1": "email:e1"}
    assert outcome.state.profiles == {("email:e1", 1, None): {"x": 1}}
    assert outcome.changes == [Change("email:e1", 1, None, "created", ("x",))]


def test_account_line_without_dollar_keys_writes_the_default_anonymous_profile():
    line = {"operation": "UPSERT", "compartment_id": CRM, "user_account_id": "a"}
    outcome = run({**line, "user_profile": {"x": 1}})
    assert outcome.state.profiles == {(f"account:{CRM}/a", 1, None): {"x": 1}}


def test_account_without_compartment_is_in_the_default_compartment():
    outcome = run({"operation": "UPSERT", "user_account_id": 7, "user_profile": {}})
    assert outcome.state.profiles == {("account:1/7", 1, None): {}}


def test_string_compartment_and_integer_account_address_the_same_profile():
    profile = {"$compartment_id": " 1606", "$user_account_id": 7, "x": 1}
    outcome = run(
        {"operation": "UPSERT", "user_agent_id": "vec:1", "user_profile": {"x": 0}},
        {"operation": "UPSERT", "user_agent_id": "vec:1", "user_profile": profile},
        {"operation": "UPSERT", "user_agent_id": "vec:1", "user_profile": {**profile, "x": 1.0}},
    )
    assert outcome.state.profiles[("agent:vec:1", CRM, "7")] == {"x": 1}
    assert outcome.counts == {**outcome.counts, "created": 2, "unchanged": 1}


def test_empty_user_account_id_is_anonymous():
    outcome = run(upsert({"x": 1}, user_profile={"$user_account_id": "", "x": 1}))
    assert list(outcome.state.profiles) == [(f"account:{CRM}/a", 1, None)]


def test_delete_through_an_unknown_identifier_is_not_found_and_creates_nothing():
    outcome = run({"operation": "DELETE", "email_hash": "e1"})
    assert outcome.counts["not_found"] == 1 and outcome.state.identifiers == {}


def test_delete_without_user_profile_through_an_account_deletes_that_accounts_profile():
    outcome = run(
        upsert({"x": 1}), {"operation": "delete ", "compartment_id": CRM, "user_account_id": "a"}
    )
    assert outcome.state.profiles == {} and outcome.counts["deleted"] == 1
    assert outcome.state.identifiers == {OWN[0]: OWN[0]}, "the point and identifier stay"
    assert outcome.changes[-1] == Change(OWN[0], CRM, "a", "deleted", ("x",), {"x": 1})


def test_delete_with_user_profile_deletes_the_profile_it_names():
    line = {"operation": "DELETE", "compartment_id": CRM, "user_account_id": "a"}
    outcome = run(upsert({"x": 1}), {**line, "user_profile": {}})
    assert outcome.counts["not_found"] == 1 and OWN in outcome.state.profiles


def test_delete_through_an_email_without_user_profile_deletes_the_default_anonymous_profile():
    line = {"operation": "UPSERT", "email_hash": "e1", "user_profile": {"x": 1}}
    outcome = run(line, {"operation": "DELETE", "email_hash": "e1"})
    assert outcome.counts["deleted"] == 1 and outcome.state.profiles == {}


def test_delete_ignores_the_strategy_fields():
    outcome = run(upsert({}), {**upsert({}), "operation": "DELETE", "update_strategy": "X"})
    assert outcome.errors == [] and outcome.counts["deleted"] == 1


# Compartments and line errors


def test_unknown_compartment_names_the_field_the_line_used():
    outcome = run(
        upsert({}, compartment_id=99),
        upsert({}, user_profile={"$compartment_id": 98}),
        upsert({}, compartment_id=99, user_profile={"$compartment_id": "98"}),
        {"operation": "DELETE", "compartment_id": 99, "user_account_id": "a"},
    )
    assert outcome.errors == [
        (1, "UNKNOWN_COMPARTMENT", "compartment_id"),
        (2, "UNKNOWN_COMPARTMENT", "$compartment_id"),
        (3, "UNKNOWN_COMPARTMENT", "$compartment_id"),
        (4, "UNKNOWN_COMPARTMENT", "compartment_id"),
    ]
    assert outcome.counts["failed"] == 4 and outcome.state.identifiers == {}


def test_no_default_compartment_fails_lines_that_need_it():
    state = State(compartments={CRM}, default_compartment=None)
    outcome = run(upsert({}), upsert({}, user_profile={}), state=state)
    assert outcome.errors == [(2, "NO_DEFAULT_COMPARTMENT", "")]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ({"operation": "UPSERT", "user_profile": {}}, ("MISSING_IDENTIFIER", "user_account_id")),
        (
            {"operation": "UPSERT", "email_hash": "e", "user_agent_id": "u", "user_profile": {}},
            ("MULTIPLE_IDENTIFIERS", "email_hash,user_agent_id"),
        ),
        ({"operation": "MERGE", "email_hash": "e"}, ("INVALID_OPERATION", "operation")),
        ({"operation": "UPSERT", "email_hash": "e"}, ("MISSING_USER_PROFILE", "user_profile")),
        (upsert({"$x": 1}), ("RESERVED_KEY", "$x")),
        (
            upsert({}, user_profile={"$compartment_id": 1.0}),
            ("INVALID_COMPARTMENT_ID", "$compartment_id"),
        ),
        (upsert({}, update_strategy="MERGE"), ("INVALID_UPDATE_STRATEGY", "update_strategy")),
        (
            upsert({}, update_strategy="FORCE_REPLACE", merge_objects="maybe"),
            ("INVALID_MERGE_OBJECTS", "merge_objects"),
        ),
        (upsert({}, force_replace=2), ("INVALID_FORCE_REPLACE", "force_replace")),
    ],
)
def test_a_bad_line_fails_alone_with_its_code_and_field(line, error):
    outcome = run(line, upsert({"x": 1}))
    assert outcome.errors == [(1, *error)]
    assert outcome.counts == {**dict.fromkeys(outcome.counts, 0), "failed": 1, "created": 1}


def test_a_merge_past_the_size_limit_fails_and_keeps_the_profile():
    half = "x" * 600_000
    outcome = run(upsert({"a": half}), upsert({"b": half}))
    assert outcome.errors == [(2, "TOO_LARGE", "")]
    assert outcome.state.profiles[OWN] == {"a": half}


# Rule 3: choosing the strategy


@pytest.mark.parametrize(
    ("fields", "default", "mode"),
    [
        ({}, DEEP, DEEP),
        ({}, REPLACE, REPLACE),
        ({"update_strategy": "PARTIAL_UPDATE"}, SHALLOW, DEEP),
        ({"update_strategy": " partial_update ", "merge_objects": "no"}, DEEP, SHALLOW),
        ({"update_strategy": "FORCE_REPLACE", "force_replace": False}, DEEP, REPLACE),
        ({"update_strategy": "", "force_replace": "yes"}, DEEP, REPLACE),
        ({"force_replace": True, "merge_objects": True}, DEEP, REPLACE),
        ({"force_replace": False}, DEEP, SHALLOW),
        ({"force_replace": "0", "merge_objects": 1}, SHALLOW, DEEP),
        ({"merge_objects": False}, DEEP, SHALLOW),
        ({"merge_objects": "TRUE"}, SHALLOW, DEEP),
        ({"merge_objects": True}, REPLACE, REPLACE),
        ({"merge_objects": True}, DELETE_KEYS, DELETE_KEYS),
    ],
)
def test_choose_mode_follows_rule_three(fields, default, mode):
    assert choose_mode(fields, default) == mode


# Strategies, creation and unchanged lines


def test_partial_delete_on_a_missing_profile_creates_the_point_only():
    outcome = run(upsert({"x": 1}, update_strategy="PARTIAL_DELETE"))
    assert outcome.counts["unchanged"] == 1
    assert outcome.state.profiles == {} and OWN[0] in outcome.state.identifiers


def test_any_other_upsert_creates_the_profile_with_n_without_system_keys():
    line = upsert({"x": [1, 1], "$creation_ts": 5, "$user_point_id": "p"})
    for default in (DEEP, SHALLOW, REPLACE):
        assert stored_after(line, default=default) == {"x": [1, 1]}


def test_force_replace_keeps_only_n():
    assert stored_after(upsert(E), upsert({"y": 1}, force_replace=True)) == {"y": 1}


def test_true_is_not_one_but_one_is_one_point_zero():
    outcome = run(upsert({"x": 1}), upsert({"x": True}), upsert({"x": 1.0}), upsert({"x": 1}))
    assert outcome.counts == {**outcome.counts, "created": 1, "updated": 2, "unchanged": 1}


def test_deep_merge_appends_missing_elements_once_and_writes_null():
    outcome = run(
        upsert({"t": [1, {"a": 1}, 1], "o": {"k": 1}}),
        upsert({"t": [True, {"a": 1}, 2, 2, 1.0], "o": None}),
    )
    assert same(outcome.state.profiles[OWN], {"t": [1, {"a": 1}, 1, True, 2], "o": None})
    assert outcome.changes[-1].keys == ("o", "t")


def test_shallow_update_replaces_top_level_values_whole():
    incoming = upsert({"nl": {"x": 1}, "tags": ["c"]}, force_replace="false")
    assert stored_after(upsert(E), incoming) == {**E, "nl": {"x": 1}, "tags": ["c"]}


def test_partial_delete_matches_object_patterns_as_recursive_subsets():
    stored = {"c": [{"a": {"b": 1, "z": 0}}, {"a": {"b": 2}}, 3, [1]], "o": {"k": {"j": 1}}}
    incoming = {"c": [{"a": {"b": 1}}, [1]], "o": {"k": {"j": None}}, "missing": 1}
    outcome = run(upsert(stored), upsert(incoming, update_strategy="PARTIAL_DELETE"))
    assert outcome.state.profiles[OWN] == {"c": [{"a": {"b": 2}}, 3], "o": {"k": {}}}


def test_empty_object_pattern_removes_every_object_element():
    incoming = upsert({"c": [{}]}, update_strategy="PARTIAL_DELETE")
    assert stored_after(upsert({"c": [{"a": 1}, {}, "s"]}), incoming) == {"c": ["s"]}


def test_partial_delete_of_everything_leaves_an_empty_profile():
    incoming = upsert({"x": "anything"}, update_strategy="PARTIAL_DELETE")
    assert stored_after(upsert({"x": 1}), incoming) == {}


def test_later_lines_see_earlier_ones_in_file_order():
    outcome = run(
        upsert({"x": 1}),
        {"operation": "DELETE", "compartment_id": CRM, "user_account_id": "a"},
        upsert({"y": 1}),
        upsert({"y": 1}),
    )
    assert [change.action for change in outcome.changes] == ["created", "deleted", "created"]
    assert outcome.counts["unchanged"] == 1 and outcome.state.profiles == {OWN: {"y": 1}}


def test_the_input_state_is_left_untouched():
    state = datamart()
    run(upsert({"x": 1}), state=state)
    assert state == datamart()


def test_json_numbers_compare_by_decimal_value_and_booleans_are_not_numbers():
    assert same(1, 1.0) and same(41620469263748700, 4.16204692637487e16)
    assert not same(True, 1) and not same(0, False) and not same(None, {})
    assert same({"a": [1, {"b": 2.0}]}, {"a": [1.0, {"b": 2}]})
