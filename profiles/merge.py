"""The update strategies of SPEC §2 as pure functions over custom properties (no Django).

Choices the SPEC leaves open, fixed here:
- Deep merge of two arrays appends each element of N not already in E *and* not
  already appended from N, so N's own duplicates are added once (E's are kept).
- PARTIAL_DELETE containment is recursive for objects: the pattern
  ``{"a": {"b": 1}}`` matches ``{"a": {"b": 1, "c": 2}, "d": 3}``; arrays and
  scalars inside a pattern are compared by deep equality. The empty pattern
  ``{}`` is contained in every object, so ``[{}]`` removes every object element.
- PARTIAL_DELETE keeps an object emptied by recursion as ``{}``; sending
  ``null`` (or any non-object) for the key deletes the key itself.
- Equality is JSON's: ``1 == 1.0`` but ``true != 1``; a number is the decimal its JSON text
  says, so ``4.16204692637487e16`` equals ``41620469263748700``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from profiles.errors import ProfileError

JSONObject = dict[str, Any]


class Strategy(StrEnum):
    FORCE_REPLACE = "FORCE_REPLACE"
    PARTIAL_UPDATE = "PARTIAL_UPDATE"
    PARTIAL_DELETE = "PARTIAL_DELETE"


@dataclass(frozen=True)
class MergeMode:
    strategy: Strategy
    merge_objects: bool = True  # only meaningful for PARTIAL_UPDATE


DEFAULT_MERGE_MODE = MergeMode(Strategy.PARTIAL_UPDATE, merge_objects=True)

# Each strategy as staff read it; the code follows in brackets (what files and the API name).
STRATEGY_WORDS = {
    Strategy.PARTIAL_UPDATE: "Update: the line's keys overwrite, the others stay",
    Strategy.FORCE_REPLACE: "Replace: the properties become the line's",
    Strategy.PARTIAL_DELETE: "Remove: the line's keys are removed",
}


def merge_mode_label(mode: MergeMode) -> str:
    """The one wording of a strategy for people: `Update: … , nested objects merged deeply
    (PARTIAL_UPDATE)`."""
    words = STRATEGY_WORDS[mode.strategy]
    if mode.strategy is Strategy.PARTIAL_UPDATE:
        words += (
            ", nested objects merged deeply" if mode.merge_objects else ", nested objects replaced"
        )
    return f"{words} ({mode.strategy.value})"


class StrategyError(ProfileError):
    """A bad ``update_strategy``, ``force_replace`` or ``merge_objects`` value."""


# Choosing the mode (SPEC §2 rule 3)

# The words a flag may be written as, whatever the case and outer spaces (CSV cells,
# command-line options); the one list for every reader of a boolean text.
TRUE_WORDS = frozenset({"true", "1", "yes"})
FALSE_WORDS = frozenset({"false", "0", "no"})


def parse_bool_word(text: str) -> bool | None:
    """True or False for one of the words above, else None."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _parse_flag(value: object, *, field: str, code: str) -> bool | None:
    """None when absent; CSV cells arrive as strings, XLSX cells may be 0/1 numbers."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        if not value.strip():
            return None
        flag = parse_bool_word(value)
        if flag is not None:
            return flag
    raise StrategyError(code, f"{field} must be true or false, got {_shown(value)}", field=field)


def _parse_strategy(value: object) -> Strategy | None:
    if value is None:
        return None
    if isinstance(value, str):
        word = value.strip().upper()
        if not word:
            return None
        if word in Strategy.__members__:
            return Strategy(word)
    raise StrategyError(
        "INVALID_UPDATE_STRATEGY",
        f"update_strategy must be one of {', '.join(Strategy)}, got {_shown(value)}",
        field="update_strategy",
    )


def choose_merge_mode(
    *,
    update_strategy: object = None,
    force_replace: object = None,
    merge_objects: object = None,
    default: MergeMode = DEFAULT_MERGE_MODE,
) -> MergeMode:
    """The mode a line asks for; every given field is validated even when another wins."""
    strategy = _parse_strategy(update_strategy)
    replace = _parse_flag(force_replace, field="force_replace", code="INVALID_FORCE_REPLACE")
    merge = _parse_flag(merge_objects, field="merge_objects", code="INVALID_MERGE_OBJECTS")

    if strategy is Strategy.PARTIAL_UPDATE:
        return MergeMode(strategy, merge_objects=True if merge is None else merge)
    if strategy is not None:
        return MergeMode(strategy)  # merge_objects is meaningless here: keep the dataclass default
    if replace is True:
        return MergeMode(Strategy.FORCE_REPLACE)
    if replace is False:
        # The legacy form defaulted to a shallow update.
        return MergeMode(Strategy.PARTIAL_UPDATE, merge_objects=bool(merge))
    if merge is not None and default.strategy is Strategy.PARTIAL_UPDATE:
        return MergeMode(Strategy.PARTIAL_UPDATE, merge_objects=merge)
    return default


# JSON equality


def _canonical(value: Any) -> Any:
    """A hashable form where equal JSON values are equal: 1 and 1.0 meet, True and 1 do not."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, float):
        # A float is the decimal its JSON text says: PostgreSQL keeps 4.16204692637487e16 as
        # the numeric 41620469263748700 and reads it back as that integer.
        return ("number", Decimal(repr(value)) if value.is_integer() else value)
    if isinstance(value, int):
        return ("number", value)  # Python already has 1 == 1.0 with equal hashes
    if isinstance(value, str):
        return ("string", value)
    if value is None:
        return ("null",)
    if isinstance(value, dict):
        return ("object", frozenset((key, _canonical(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return ("array", tuple(_canonical(item) for item in value))
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _number(value: int | float) -> Any:
    """A JSON number as `_canonical` compares it."""
    if isinstance(value, float) and value.is_integer():
        return Decimal(repr(value))
    return value


def json_equal(left: Any, right: Any) -> bool:
    """`_canonical(left) == _canonical(right)`, without building either form: the comparison
    walks both values together and stops at the first difference (the re-import compares
    every stored top-level value with its merge result)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, str):
        return isinstance(right, str) and left == right
    if isinstance(left, int | float):
        if not isinstance(right, int | float):
            return False
        if type(left) is int and type(right) is int:
            return left == right
        return _number(left) == _number(right)
    if left is None:
        return right is None
    if isinstance(left, dict):
        if not isinstance(right, dict) or len(left) != len(right):
            return False
        for key, item in left.items():
            if key not in right or not json_equal(item, right[key]):
                return False
        return True
    if isinstance(left, list | tuple):
        if not isinstance(right, list | tuple) or len(left) != len(right):
            return False
        return all(json_equal(a, b) for a, b in zip(left, right, strict=True))
    return _canonical(left) == _canonical(right)  # raises TypeError for what is not JSON


def _contains(candidate: Any, pattern: Any) -> bool:
    """PARTIAL_DELETE's match: objects by recursive subset, everything else by equality."""
    if isinstance(pattern, dict):
        return isinstance(candidate, dict) and all(
            key in candidate and _contains(candidate[key], item) for key, item in pattern.items()
        )
    return json_equal(candidate, pattern)


def _clone(value: Any) -> Any:
    """A copy sharing no dict or list with the original (cheaper than copy.deepcopy)."""
    if isinstance(value, dict):
        return {key: _clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clone(item) for item in value]
    return value


# The strategies


def force_replace(existing: JSONObject | None, incoming: JSONObject) -> JSONObject:
    return _clone(incoming)


def partial_update(
    existing: JSONObject, incoming: JSONObject, *, merge_objects: bool
) -> JSONObject:
    if merge_objects:
        return deep_merge(existing, incoming)
    result = _clone(existing)
    result.update(_clone(incoming))
    return result


def _member_key(value: Any) -> Any:
    """`_canonical` for set membership, a string kept as itself: strings never equal the
    canonical tuples of other values, and arrays of strings (tags) are the common case."""
    return value if type(value) is str else _canonical(value)


def _append_missing(existing: list[Any], incoming: list[Any]) -> list[Any]:
    seen = {_member_key(item) for item in existing}
    result = _clone(existing)
    for item in incoming:
        key = _member_key(item)
        if key not in seen:
            seen.add(key)
            result.append(_clone(item))
    return result


def _merge_value(old: Any, new: Any) -> Any:
    if isinstance(old, dict) and isinstance(new, dict):
        return deep_merge(old, new)
    if isinstance(old, list) and isinstance(new, list):
        return _append_missing(old, new)
    return _clone(new)  # null is a value, not a deletion


def deep_merge(existing: JSONObject, incoming: JSONObject) -> JSONObject:
    result = {
        key: _merge_value(old, incoming[key]) if key in incoming else _clone(old)
        for key, old in existing.items()
    }
    for key, new in incoming.items():
        if key not in existing:
            result[key] = _clone(new)
    return result


def _remove_matching(existing: list[Any], patterns: list[Any]) -> list[Any]:
    object_patterns = [pattern for pattern in patterns if isinstance(pattern, dict)]
    other_patterns = {_member_key(pattern) for pattern in patterns if not isinstance(pattern, dict)}
    return [
        _clone(item)
        for item in existing
        if _member_key(item) not in other_patterns
        and not any(_contains(item, pattern) for pattern in object_patterns)
    ]


def partial_delete(existing: JSONObject, incoming: JSONObject) -> JSONObject:
    result: JSONObject = {}
    for key, old in existing.items():
        if key not in incoming:
            result[key] = _clone(old)
            continue
        pattern = incoming[key]
        if isinstance(old, dict) and isinstance(pattern, dict):
            result[key] = partial_delete(old, pattern)
        elif isinstance(old, list) and isinstance(pattern, list):
            result[key] = _remove_matching(old, pattern)
        # Otherwise the key goes, whatever N's value.
    return result


def apply_merge(
    existing: JSONObject | None, incoming: JSONObject, mode: MergeMode
) -> JSONObject | None:
    """The new custom properties, or None when no profile must exist."""
    if existing is None:
        # Creation: any UPSERT creates the profile with N, except PARTIAL_DELETE.
        return None if mode.strategy is Strategy.PARTIAL_DELETE else _clone(incoming)
    if mode.strategy is Strategy.FORCE_REPLACE:
        return force_replace(existing, incoming)
    if mode.strategy is Strategy.PARTIAL_DELETE:
        return partial_delete(existing, incoming)
    return partial_update(existing, incoming, merge_objects=mode.merge_objects)
