"""A pure model of SPEC §2 (import commands): the oracle the write engine is held to.

No Django, no database: a datamart is a `State` (its compartments and which one is the default,
the identifiers known and the user point each names, the profiles and their properties), and
`apply_commands` runs command mappings (as an NDJSON line gives them, line N being the N-th)
through it, answering the final state, the counts, the errors as (line, code, field) and the
history (one `Change` per profile created, updated or deleted).

Modelled here, written apart from `profiles.merge` and the engine on purpose:
- rule 1: an unknown identifier creates its user point on UPSERT (even when the line then
  creates no profile); a DELETE through it is `not_found`. A point is named by the identifier
  that created it, like `tests.imports.helpers.point_labels`: `account:1606/a`, `email:e1`,
  `agent:vec:1` (an account without `compartment_id` is in the default compartment);
- rule 2: the profile addressed is the user_profile's `$compartment_id` (else the default) and
  `$user_account_id` (else anonymous; `""` too), never the identifier's; the DELETE rule (no
  user_profile and an account identifier: that account's profile);
- compartments: `UNKNOWN_COMPARTMENT` naming the field the line used (`$compartment_id` for the
  profile's, checked first, then `compartment_id` for the identifier's), `NO_DEFAULT_COMPARTMENT`;
- rule 3: the strategy, its legacy flags (`force_replace`, `merge_objects`, their words and 0/1,
  an empty value counting as absent), each flag given validated even when another one decides,
  and none of them read for a DELETE;
- the strategies: creation (PARTIAL_DELETE creates nothing and counts `unchanged`),
  FORCE_REPLACE, PARTIAL_UPDATE shallow and deep (arrays append N's missing elements once, by
  deep equality; null is a value), PARTIAL_DELETE (object patterns as recursive subsets);
- JSON equality (numbers by decimal value, `1 == 1.0`; `true != 1`): a result equal to the
  stored profile is `unchanged` and writes nothing; `TOO_LARGE` when a result grows past
  1,000,000 bytes of compact JSON (the line fails, the profile keeps its value);
- file order: each line sees the earlier lines' effects.

Delegated, because it is the field-level validation of one line and not a SPEC §2 rule:
- `profiles.commands.command_from_mapping` decides whether a line is well formed (unknown fields,
  `operation`, the identifier: none or two kinds, bad values; `user_profile` missing for an
  UPSERT or not an object): its `LineError` is the line's error;
- `profiles.validation.split_profile_object` validates a `user_profile` (reserved `$` keys, the
  syntax of `$compartment_id` and `$user_account_id`, depth, key and number limits). The oracle
  then reads the address and the custom properties itself.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from profiles.commands import LineError, command_from_mapping
from profiles.validation import PropertyError, split_profile_object

# A merge mode: (strategy, merge_objects); merge_objects only counts for PARTIAL_UPDATE.
Mode = tuple[str, bool]
DEEP: Mode = ("PARTIAL_UPDATE", True)
SHALLOW: Mode = ("PARTIAL_UPDATE", False)
REPLACE: Mode = ("FORCE_REPLACE", False)
DELETE_KEYS: Mode = ("PARTIAL_DELETE", False)
STRATEGIES = ("FORCE_REPLACE", "PARTIAL_UPDATE", "PARTIAL_DELETE")

COUNTS = ("created", "updated", "deleted", "unchanged", "not_found", "failed")
# Read ($compartment_id, $user_account_id) or ignored (set by the system): never custom.
SYSTEM_KEYS = frozenset(
    {"$compartment_id", "$user_account_id", "$creation_ts", "$last_modified_ts", "$user_point_id"}
)
MAX_PROFILE_BYTES = 1_000_000


# The account most hand cases use: account "a" in the CRM compartment.
CRM = 1606


def upsert(properties: dict, **fields) -> dict:
    """An UPSERT line of account a's own profile in the CRM compartment."""
    profile = {"$compartment_id": CRM, "$user_account_id": "a", **properties}
    return {
        "operation": "UPSERT",
        "compartment_id": CRM,
        "user_account_id": "a",
        "user_profile": profile,
        **fields,
    }


# A profile's address: (user point, compartment id, user_account_id or None).
ProfileKey = tuple[str, int, str | None]


@dataclass
class State:
    compartments: set[int]
    default_compartment: int | None
    identifiers: dict[str, str] = field(default_factory=dict)  # identifier -> its user point
    profiles: dict[ProfileKey, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """One history row: what happened to which profile, its top-level keys that changed, and
    those keys' values before (a key absent before is left out)."""

    point: str
    compartment_id: int
    user_account_id: str | None
    action: str  # created, updated, deleted
    keys: tuple[str, ...]
    previous: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    state: State
    counts: dict[str, int]
    errors: list[tuple[int, str, str]]  # (line, code, field)
    changes: list[Change]


class LineFailed(Exception):
    def __init__(self, code: str, field_name: str = "") -> None:
        super().__init__(f"{code} on {field_name!r}")
        self.code = code
        self.field = field_name


# --------------------------------------------------------------------------- JSON values


def number(value: int | float) -> Decimal:
    """A JSON number's value: the decimal its text says (a float's shortest repr), so 1 is 1.0
    and 4.16204692637487e+16 is 41620469263748700 (PostgreSQL reads it back so)."""
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def same(left: Any, right: Any) -> bool:
    """JSON equality: numbers by value, but a boolean is never a number."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return number(left) == number(right)
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same(left[key], right[key]) for key in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(same, left, right))
    return type(left) is type(right) and left == right


def contains(element: Any, pattern: Any) -> bool:
    """PARTIAL_DELETE's match: an object pattern is a recursive subset, anything else equal."""
    if isinstance(pattern, dict):
        return isinstance(element, dict) and all(
            key in element and contains(element[key], value) for key, value in pattern.items()
        )
    return same(element, pattern)


# --------------------------------------------------------------------------- strategies


def deep_merge(stored: dict, incoming: dict) -> dict:
    result = copy.deepcopy(stored)
    for key, new in incoming.items():
        old = result.get(key)
        if key in result and isinstance(old, dict) and isinstance(new, dict):
            result[key] = deep_merge(old, new)
        elif key in result and isinstance(old, list) and isinstance(new, list):
            for element in new:  # old grows as we go: N's own duplicates go in once
                if not any(same(element, present) for present in old):
                    old.append(copy.deepcopy(element))
        else:
            result[key] = copy.deepcopy(new)  # null included: a value, not a deletion
    return result


def partial_delete(stored: dict, incoming: dict) -> dict:
    result = {}
    for key, old in stored.items():
        pattern = incoming.get(key)
        if key not in incoming:
            result[key] = copy.deepcopy(old)
        elif isinstance(old, dict) and isinstance(pattern, dict):
            result[key] = partial_delete(old, pattern)  # an emptied object stays as {}
        elif isinstance(old, list) and isinstance(pattern, list):
            result[key] = [
                copy.deepcopy(element)
                for element in old
                if not any(contains(element, each) for each in pattern)
            ]
        # otherwise the key goes, whatever N's value
    return result


def merged(stored: dict | None, incoming: dict, mode: Mode) -> dict | None:
    """The properties after an UPSERT, or None when no profile is left (nor created)."""
    strategy, merge_objects = mode
    if stored is None:
        return None if strategy == "PARTIAL_DELETE" else copy.deepcopy(incoming)
    if strategy == "FORCE_REPLACE":
        return copy.deepcopy(incoming)
    if strategy == "PARTIAL_DELETE":
        return partial_delete(stored, incoming)
    if merge_objects:
        return deep_merge(stored, incoming)
    return {**copy.deepcopy(stored), **copy.deepcopy(incoming)}


# --------------------------------------------------------------------------- rule 3


def _flag(value: object, field_name: str, code: str) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("true", "1", "yes", "false", "0", "no", ""):
            return None if not word else word in ("true", "1", "yes")
    raise LineFailed(code, field_name)


def choose_mode(command: Mapping[str, Any], default: Mode) -> Mode:
    strategy = command.get("update_strategy")
    if strategy is not None:
        if not isinstance(strategy, str) or strategy.strip().upper() not in (*STRATEGIES, ""):
            raise LineFailed("INVALID_UPDATE_STRATEGY", "update_strategy")
        strategy = strategy.strip().upper() or None
    replace = _flag(command.get("force_replace"), "force_replace", "INVALID_FORCE_REPLACE")
    merge_objects = _flag(command.get("merge_objects"), "merge_objects", "INVALID_MERGE_OBJECTS")
    if strategy == "PARTIAL_UPDATE":
        return ("PARTIAL_UPDATE", merge_objects is not False)
    if strategy is not None:
        return (strategy, False)
    if replace is True:
        return REPLACE
    if replace is False:  # the legacy form: shallow unless merge_objects says otherwise
        return ("PARTIAL_UPDATE", merge_objects is True)
    if merge_objects is not None and default[0] == "PARTIAL_UPDATE":
        return ("PARTIAL_UPDATE", merge_objects)
    return default


# --------------------------------------------------------------------------- one line


def _compartment(state: State, compartment_id: int | None, field_name: str) -> int:
    if compartment_id is None:
        if state.default_compartment is None:
            raise LineFailed("NO_DEFAULT_COMPARTMENT")
        return state.default_compartment
    if compartment_id not in state.compartments:
        raise LineFailed("UNKNOWN_COMPARTMENT", field_name)
    return compartment_id


def _compartment_number(value: object) -> int | None:
    return None if value is None else int(value.strip() if isinstance(value, str) else value)


def _identifier(command: Mapping[str, Any], state: State) -> str:
    """The line's identifier as a label (a well-formed line has exactly one kind)."""
    if command.get("email_hash") is not None:
        return f"email:{command['email_hash']}"
    if command.get("user_agent_id") is not None:
        return f"agent:{command['user_agent_id']}"
    compartment_id = _compartment_number(command.get("compartment_id"))
    compartment = _compartment(state, compartment_id, "compartment_id")
    return f"account:{compartment}/{command['user_account_id']}"


def _apply_line(
    state: State, line: int, command: Mapping[str, Any], default: Mode, changes: list[Change]
) -> str:
    parsed = command_from_mapping(command, line=line)
    if isinstance(parsed, LineError):
        raise LineFailed(parsed.code, parsed.field)
    upsert = command["operation"].strip().upper() == "UPSERT"
    mode = choose_mode(command, default) if upsert else None
    user_profile = command.get("user_profile")
    if user_profile is None:  # a DELETE (an UPSERT needs one): the DELETE rule
        compartment_id, account, where = None, None, "compartment_id"
        if command.get("email_hash") is None and command.get("user_agent_id") is None:
            compartment_id = _compartment_number(command.get("compartment_id"))
            account = str(command["user_account_id"])
        properties: dict[str, Any] = {}
    else:
        try:
            split_profile_object(user_profile)
        except PropertyError as problem:
            raise LineFailed(problem.code, problem.field) from None
        compartment_id = _compartment_number(user_profile.get("$compartment_id"))
        account_value = user_profile.get("$user_account_id")
        account = None if account_value in (None, "") else str(account_value)
        properties = {key: value for key, value in user_profile.items() if key not in SYSTEM_KEYS}
        where = "$compartment_id"
    compartment = _compartment(state, compartment_id, where)
    label = _identifier(command, state)

    point = state.identifiers.get(label)
    if point is None:
        if not upsert:
            return "not_found"
        point = state.identifiers[label] = label
    key = (point, compartment, account)
    stored = state.profiles.get(key)
    if not upsert:
        if stored is None:
            return "not_found"
        del state.profiles[key]
        changes.append(
            Change(point, compartment, account, "deleted", tuple(sorted(stored)), stored)
        )
        return "deleted"
    assert mode is not None
    result = merged(stored, properties, mode)
    if result is None or (stored is not None and same(result, stored)):
        return "unchanged"
    text = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode("utf-8")) > MAX_PROFILE_BYTES:
        raise LineFailed("TOO_LARGE")
    state.profiles[key] = result
    if stored is None:
        changes.append(Change(point, compartment, account, "created", tuple(sorted(result))))
        return "created"
    differing = sorted(
        name
        for name in stored.keys() | result.keys()
        if name not in stored or name not in result or not same(stored[name], result[name])
    )
    previous = {name: stored[name] for name in differing if name in stored}
    changes.append(Change(point, compartment, account, "updated", tuple(differing), previous))
    return "updated"


def apply_commands(
    state: State, commands: Sequence[Mapping[str, Any]], default: Mode = DEEP
) -> Outcome:
    """Run the commands in file order (line N is commands[N - 1]) on a copy of `state`."""
    state = copy.deepcopy(state)
    outcome = Outcome(state=state, counts=dict.fromkeys(COUNTS, 0), errors=[], changes=[])
    for line, command in enumerate(commands, start=1):
        try:
            counted = _apply_line(state, line, command, default, outcome.changes)
        except LineFailed as problem:
            outcome.errors.append((line, problem.code, problem.field))
            counted = "failed"
        outcome.counts[counted] += 1
    return outcome
