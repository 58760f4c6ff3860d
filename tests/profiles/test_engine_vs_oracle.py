"""The set-based write engine held to the pure model of SPEC §2 (tests/oracle.py).

Any batch of command mappings, as NDJSON lines give them, cut into chunks of any size (or
applied one by one through the service the API and the admin call), must
leave in the database the user points, profiles and history rows the oracle computes, and count
the same outcomes and the same errors (line, code and field).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from profiles.commands import IDENTIFIER_KEYS, LineError, command_from_mapping
from profiles.engine import commands_apply
from profiles.errors import ProfileError
from profiles.history import ChangeSource
from profiles.merge import MergeMode, Strategy
from profiles.models import ProfileChange
from profiles.services import compartment_make_default, profile_command_apply
from tests.imports.helpers import point_labels, snapshot
from tests.oracle import (
    COUNTS,
    CRM,
    DEEP,
    DELETE_KEYS,
    REPLACE,
    SHALLOW,
    Mode,
    Outcome,
    State,
    apply_commands,
    number,
    upsert,
)

SOURCE = ChangeSource(kind=ProfileChange.Source.IMPORT)


def apply_batch(datamart, commands, default_mode: MergeMode):
    """The writer under test: one chunk of commands (or reader errors), applied set-based.

    Answers an object with `counts` (outcome -> number) and `errors` (LineErrors).
    """
    return commands_apply(
        datamart=datamart, records=commands, default_mode=default_mode, source=SOURCE
    )


def apply_one_by_one(datamart, records, default_mode: MergeMode):
    """The API's and the admin's path: each command through the service, as a batch of one
    whose line error is raised."""
    counts = dict.fromkeys(COUNTS, 0)
    errors = []
    for record in records:
        if isinstance(record, LineError):
            errors.append((record.line, record.code, record.field))
            continue
        try:
            outcome = profile_command_apply(
                datamart=datamart, command=record, mode=default_mode, source=SOURCE
            )
        except ProfileError as problem:
            errors.append((record.line, problem.code, problem.field))
        else:
            counts[str(outcome)] += 1
    counts["failed"] = len(errors)
    return counts, errors


def merge_mode(mode: Mode) -> MergeMode:
    strategy, merge_objects = mode
    return MergeMode(Strategy(strategy), merge_objects=merge_objects)


# --------------------------------------------------------------------------- strategies
# A line is drawn valid (with every accepted spelling), aimed two times in three at an earlier
# line's identifier and profile so lines meet; about one line in six then gets one fault (a bad
# value, a missing field, an unknown compartment), so most lines still apply.

ABSENT = object()  # a key left out of the mapping
ADDRESS_KEYS = ("$compartment_id", "$user_account_id")


def usually(common: list, odd: list, rarely: int = 6) -> st.SearchStrategy:
    """One of `common`, or one of `odd` about once in `rarely` draws (odd values go last:
    hypothesis favours the first ones and shrinks towards them)."""
    slots = max(1, len(odd) * (rarely - 1) // len(common)) if odd else 1
    return st.sampled_from(common * slots + odd)


def _put(mapping: dict, key: str, value: Any) -> None:
    if value is not ABSENT:
        mapping[key] = value


texts = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=3)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.sampled_from([1.0, 0.0, 2.5, -0.5, 2**63 - 1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["a", "b", "é", "日本", "x" * 40]),
    texts,
)
keys = usually(["x", "y", "nl", "tags", "é", "日本"], ["$k", "ǅ", " y", "𝔵"])
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(keys, children, max_size=3)
    ),
    max_leaves=8,
)
property_maps = st.dictionaries(
    usually(["x", "y", "nl", "tags", "é", "日本"], ["$creation_ts", "$user_point_id", "ｘ"]),
    values,
    max_size=4,
)


@st.composite
def user_profiles(draw) -> dict:
    profile = draw(property_maps)
    _put(profile, "$compartment_id", draw(usually([ABSENT, CRM, CRM], ["1606", " 1 ", 1, None])))
    _put(profile, "$user_account_id", draw(usually([ABSENT, "a", "a", "b"], ["", None, 7])))
    return profile


@st.composite
def identifier_fields(draw) -> dict:
    kind = draw(st.sampled_from(["account", "account", "account", "email", "agent"]))
    if kind == "email":
        return {"email_hash": draw(usually(["e1"], ["e2"]))}
    if kind == "agent":
        return {"user_agent_id": draw(usually(["vec:1"], ["vec:2"]))}
    fields = {"user_account_id": draw(usually(["a", "a", "b"], [7, "7"]))}
    _put(fields, "compartment_id", draw(usually([ABSENT, CRM, CRM], ["1606", 1, " 1 ", None])))
    return fields


STRATEGIES = usually(
    [ABSENT] * 3 + ["FORCE_REPLACE", "PARTIAL_UPDATE", "PARTIAL_DELETE"],
    ["partial_delete", " Force_Replace ", "", None],
)
FLAGS = usually([ABSENT] * 4 + [True, False], ["yes", "No", "TRUE", "0", "1", 1, 0, "", None])

# One fault each: (where, key, value); ABSENT removes the key.
FAULTS = [
    ("command", "operation", ABSENT),
    ("command", "operation", "MERGE"),
    ("command", "user_profile", ABSENT),
    ("command", "user_profile", "{}"),
    ("command", "user_profil", {}),
    ("command", "compartment_id", 99),
    ("command", "compartment_id", "x"),
    ("command", "user_account_id", ""),
    ("identifier", "none", None),
    ("identifier", "two kinds", None),
    ("command", "update_strategy", "MERGE"),
    ("command", "force_replace", "maybe"),
    ("command", "merge_objects", 2),
    ("profile", "$compartment_id", 98),
    ("profile", "$compartment_id", 1606.0),
    ("profile", "$user_account_id", False),
    ("profile", "＄x", 1),
    ("profile", "", 1),
    ("profile", "big", 2**63),
    ("profile", "nul", "a\x00"),
]


def _with_fault(command: dict, fault: tuple) -> dict:
    where, key, value = fault
    if where == "identifier":
        if key == "none":
            for name in IDENTIFIER_KEYS:
                command.pop(name, None)
        elif "email_hash" in command:
            command["user_agent_id"] = "vec:1"
        else:
            command["email_hash"] = "e1"
        return command
    target = command
    if where == "profile":
        target = command.get("user_profile")
        if not isinstance(target, dict):
            target = command["user_profile"] = {}
    target.pop(key, None)
    _put(target, key, value)
    return command


@st.composite
def command_mappings(draw, earlier: list[dict]) -> dict:
    operation = draw(usually(["UPSERT", "UPSERT", "UPSERT", "DELETE"], ["upsert", " Delete "]))
    command: dict = {"operation": operation}
    if earlier and draw(usually([True, True], [False], 3)):  # aim at an earlier line's profile
        aimed = draw(st.sampled_from(earlier))
        command.update({key: aimed[key] for key in IDENTIFIER_KEYS if key in aimed})
        address = aimed.get("user_profile")
        address = (
            {key: address[key] for key in ADDRESS_KEYS if key in address}
            if isinstance(address, dict)
            else {}
        )
    else:
        command.update(draw(identifier_fields()))
        address = None
        if "user_account_id" in command and draw(usually([True, True], [False], 3)):
            # the documented use: the account's own profile
            address = {"$user_account_id": command["user_account_id"]}
            _put(address, "$compartment_id", command.get("compartment_id", ABSENT))
    if operation.strip().upper() == "UPSERT" or draw(st.booleans()):
        profile = draw(user_profiles())
        if address is not None:
            profile = {key: item for key, item in profile.items() if key not in ADDRESS_KEYS}
            profile.update(address)
        command["user_profile"] = profile
    _put(command, "update_strategy", draw(STRATEGIES))
    _put(command, "force_replace", draw(FLAGS))
    _put(command, "merge_objects", draw(FLAGS))
    if draw(usually([False], [True])):
        command = _with_fault(command, draw(st.sampled_from(FAULTS)))
    return command


@st.composite
def batches(draw) -> list[dict]:
    commands: list[dict] = []
    for _ in range(draw(st.integers(1, 14))):
        commands.append(draw(command_mappings(commands)))
    return commands


# --------------------------------------------------------------------------- reading back


def typed(value: Any) -> Any:
    """A JSON value compared as JSON compares it: `true` is not `1`, numbers by decimal value."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return number(value)
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return value


def _history(datamart_id: int) -> list[tuple]:
    labels = point_labels(datamart_id)
    rows = (
        ProfileChange.objects.filter(datamart_id=datamart_id)
        .order_by("id")
        .values_list(
            "user_point_id",
            "compartment_id",
            "user_account_id",
            "action",
            "changed_keys",
            "previous_values",
            "source",
        )
    )
    return [
        (labels.get(point), compartment, account, action, tuple(keys), typed(previous), source)
        for point, compartment, account, action, keys, previous, source in rows
    ]


def expected_database(outcome: Outcome) -> dict:
    """The oracle's state in `snapshot`'s form, and its history in `_history`'s."""
    state = outcome.state
    return {
        "points": sorted([point] for point in set(state.identifiers.values())),
        "profiles": {
            (frozenset({point}), compartment, account): typed(properties)
            for (point, compartment, account), properties in state.profiles.items()
        },
        "history": [
            (
                frozenset({change.point}),
                change.compartment_id,
                change.user_account_id,
                change.action,
                change.keys,
                typed(change.previous),
                SOURCE.kind,
            )
            for change in outcome.changes
        ],
    }


def engine_run(
    datamart, crm, commands: list[dict], default: Mode, default_compartment: int, chunk: int
):
    """The batch through the engine, chunk by chunk (chunk 0: one command at a time through the
    service the API and the admin call); what it left, read back and rolled back."""
    records = [
        command_from_mapping(command, line=line) for line, command in enumerate(commands, start=1)
    ]
    counts = dict.fromkeys(COUNTS, 0)
    errors: list[tuple[int, str, str]] = []
    with transaction.atomic():
        if default_compartment == crm.compartment_id:
            compartment_make_default(compartment=crm)
        if chunk == 0:
            counts, errors = apply_one_by_one(datamart, records, merge_mode(default))
        else:
            for start in range(0, len(records), chunk):
                result = apply_batch(datamart, records[start : start + chunk], merge_mode(default))
                for name, count in result.counts.items():
                    counts[name] += count
                counts["failed"] += len(result.errors)
                errors.extend((error.line, error.code, error.field) for error in result.errors)
        stored = snapshot(datamart.pk)
        database = {
            "points": stored["points"],
            "profiles": {key: typed(properties) for key, properties in stored["profiles"].items()},
            "history": _history(datamart.pk),
        }
        transaction.set_rollback(True)
    return counts, errors, database


# --------------------------------------------------------------------------- the test


WORKED_E = {
    "firstname": "David",
    "gender": 1,
    "nl": {"subscribed": True, "period": "MONTHLY"},
    "tags": ["a", "b"],
    "contracts": [{"id": "c1", "s": "on"}, {"id": "c2", "s": "on"}],
}


def _delete(**fields) -> dict:
    return {"operation": "DELETE", "compartment_id": CRM, "user_account_id": "a", **fields}


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    commands=batches(),
    default=st.sampled_from([DEEP, SHALLOW, REPLACE, DELETE_KEYS]),
    default_compartment=st.sampled_from([1, CRM]),
    chunk=st.integers(min_value=0, max_value=6),
)
@example(  # true is not 1, and 1.0 is 1, in JSON
    commands=[upsert({"x": 1}), upsert({"x": True}), upsert({"x": 1.0}), upsert({"x": 1})],
    default=DEEP,
    default_compartment=1,
    chunk=2,
)
@example(  # a DELETE, then the UPSERT that creates its point, then delete and create again
    commands=[_delete(user_profile={}), upsert({"x": 1}), _delete(), upsert({"x": 2})],
    default=DEEP,
    default_compartment=1,
    chunk=4,
)
@example(  # unknown compartments, named by the field the line used
    commands=[
        upsert({}, compartment_id=99),
        upsert({"$compartment_id": 98}),
        _delete(compartment_id=99),
    ],
    default=DEEP,
    default_compartment=1,
    chunk=3,
)
@example(  # PARTIAL_DELETE creates the point only; rule 2 lands in the default compartment
    commands=[
        upsert({"x": 1}, update_strategy="PARTIAL_DELETE"),
        {
            "operation": "UPSERT",
            "compartment_id": CRM,
            "user_account_id": "b",
            "user_profile": {"y": [1]},
        },
        {"operation": "UPSERT", "user_account_id": "b", "user_profile": {"y": [True, 1.0, 2]}},
    ],
    default=DEEP,
    default_compartment=CRM,
    chunk=1,
)
@example(  # SPEC §2's worked example, each row applied to E
    commands=[
        upsert(WORKED_E),
        upsert({"lastname": "Guetta"}, update_strategy="FORCE_REPLACE"),
        upsert(WORKED_E, update_strategy="FORCE_REPLACE"),
        upsert({"gender": 2, "nl": {"subscribed": False}}, merge_objects=False),
        upsert(WORKED_E, update_strategy="FORCE_REPLACE"),
        upsert({"gender": 2, "nl": {"subscribed": False}, "tags": ["b", "c"]}),
        upsert(WORKED_E, update_strategy="FORCE_REPLACE"),
        upsert(
            {"gender": None, "nl": {"period": None}, "tags": ["a"], "contracts": [{"id": "c1"}]},
            update_strategy="PARTIAL_DELETE",
        ),
    ],
    default=DEEP,
    default_compartment=1,
    chunk=3,
)
@example(  # the legacy flags choose shallow or deep
    commands=[
        upsert({"o": {"k": 1}, "t": [1]}),
        upsert({"o": {"j": 1}, "t": [2]}, force_replace="false"),
        upsert({"o": {"k": 2}, "t": [3]}, merge_objects="yes"),
        upsert({"o": {"i": 2}, "t": [3]}, force_replace=0, merge_objects=1),
        upsert({"o": {"h": 2}}, force_replace="No", update_strategy="partial_update"),
    ],
    default=SHALLOW,
    default_compartment=1,
    chunk=2,
)
@example(  # a merge past the size limit fails alone; the profile keeps its value
    commands=[
        upsert({"a": "x" * 600_000}),
        upsert({"b": "x" * 600_000}),
        upsert({"b": "y"}),
    ],
    default=DEEP,
    default_compartment=1,
    chunk=3,
)
def test_engine_leaves_what_the_oracle_computes(
    datamart, crm_compartment, commands, default, default_compartment, chunk
):
    expected = assert_engine_matches_oracle(
        datamart, crm_compartment, commands, default, default_compartment, chunk
    )
    for name, count in expected.counts.items():
        event(f"some lines {name}" if count else f"no line {name}")
    for _, code, _ in expected.errors:
        event(f"error {code}")


def assert_engine_matches_oracle(
    datamart, crm, commands, default, default_compartment, chunk
) -> Outcome:
    initial = State(compartments={1, CRM}, default_compartment=default_compartment)
    expected = apply_commands(initial, commands, default)
    counts, errors, database = engine_run(
        datamart, crm, commands, default, default_compartment, chunk
    )
    assert errors == expected.errors, "line errors (line, code, field)"
    assert counts == expected.counts, "counts"
    wanted = expected_database(expected)
    assert database["points"] == wanted["points"], "user points"
    assert database["profiles"] == wanted["profiles"], "profiles"
    assert database["history"] == wanted["history"], "history"
    return expected


@pytest.mark.parametrize("value", [4.16204692637487e16, 1e300, -(2.0**70)])
def test_a_line_equal_to_the_stored_profile_is_unchanged_for_big_floats(
    datamart, crm_compartment, value
):
    """PostgreSQL's jsonb prints 4.16204692637487e+16 as 41620469263748700 and 1e300 without
    its exponent: read back, they still equal the float a line sends again."""
    line = upsert({"x": value}, update_strategy="FORCE_REPLACE")
    assert_engine_matches_oracle(datamart, crm_compartment, [line, line], DEEP, 1, chunk=1)


def test_reader_line_errors_pass_through_the_engine_untouched(datamart):
    error = LineError(line=3, code="INVALID_JSON", message="line 3: bad", raw="{")
    result = apply_batch(datamart, [error], merge_mode(DEEP))
    assert result.errors == [error] and result.lines == 1
