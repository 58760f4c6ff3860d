"""Property path filters (`newsletter_options.subscribed = true`): the one reading of a path
and a value, for the API's `p.` search and the admin's filter (and its list columns' paths).

The value is a JSON literal when it is one (`true`, `false`, `null`, numbers, `"quoted"`),
else a plain string. Types count: `true` matches neither `"true"` nor `1`. Every part of the
path is an object key. Both are bounded here, before any parser recursion or database query.
On PostgreSQL the filter is a containment (`properties @> {...}`), which the GIN index
(jsonb_path_ops) serves (an array or object value then matches by containment); on SQLite it
compares the JSON type and the value found at the path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

from django.db import connection
from django.db.models import CharField, F, FloatField, Func, IntegerField, Q, TextField, Value
from django.db.models.lookups import Exact, In

from profiles.errors import ProfileError
from profiles.validation import (
    MAX_DEPTH,
    MAX_KEY_LENGTH,
    MAX_PROFILE_BYTES,
    PropertyError,
    validate_custom_properties,
)

# A quote or a backslash would end a key in SQLite's JSON path; a control character has no
# place in a key typed in a URL or a filter box.
_KEY_FORBIDDEN = re.compile(r'["\\\x00-\x1f]')
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_MAX_INT_DIGITS = 19  # 2**63 - 1 has 19 digits: a longer integer is out of range


class _IntegerTooLong(Exception):
    """Not a ValueError: json.loads must not read the text as a plain string because of it."""


def property_value_parse(text: str) -> Any:
    """The VALUE of a property filter, read alike by the API (`p.<path>=VALUE`) and the admin
    (`path=VALUE`): `true` → True, `1` → 1, `"1"` → "1", `null` → None, objects and arrays (on
    PostgreSQL they match by containment); a text that is no JSON literal stays a string
    (`NaN` and `Infinity` are none: they are text).

    Bounded as stored properties are (profiles.validation), since a value past those bounds
    matches no stored property: at most MAX_PROFILE_BYTES, nested at most MAX_DEPTH deep
    (counted on the text first, so the JSON parser never recurses further), no NUL, no unpaired
    surrogate, integers within 64 bits (checked on their digits before Python converts them),
    finite numbers, no empty or over-long keys. Anything else raises ProfileError
    `INVALID_FILTER`, never reaching the database.
    """
    if len(text) > MAX_PROFILE_BYTES:
        raise _invalid_value(f"the value takes more than {MAX_PROFILE_BYTES} bytes")
    if text.lstrip()[:1] in ("[", "{") and _nesting_depth(text) > MAX_DEPTH:
        raise _invalid_value(f"the value is nested deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(text, parse_constant=_not_a_literal, parse_int=_bounded_int)
    except _IntegerTooLong:
        raise _invalid_value("the number does not fit in 64 bits") from None
    except ValueError:
        value = text
    try:
        validate_custom_properties({"value": value})
    except PropertyError as error:
        raise _invalid_value(error.message) from None
    return value


def _invalid_value(reason: str) -> ProfileError:
    return ProfileError(
        "INVALID_FILTER", f"the filter's value cannot be compared: {reason}", field="property"
    )


def _not_a_literal(name: str) -> None:
    raise ValueError(name)  # NaN, Infinity: no JSON literal, so the text itself


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS:
        raise _IntegerTooLong(digits)
    return int(digits)


def _nesting_depth(text: str) -> int:
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(_BRACKET_STEP[char] for char in brackets), default=0)


def property_path_check(parts: Sequence[str]) -> None:
    """The keys a property path may name, for the API's `p.` filters and the admin's filter and
    columns: 1 to MAX_DEPTH non-empty keys of at most MAX_KEY_LENGTH characters, without a
    quote, a backslash, a control character or an unpaired surrogate, and no `$` key at the top
    (a custom property never has one). Raises ProfileError `INVALID_PROPERTY_PATH`."""
    if (
        not 0 < len(parts) <= MAX_DEPTH
        or not all(parts)
        or parts[0].lstrip().startswith("$")
        or any(
            len(part) > MAX_KEY_LENGTH or _KEY_FORBIDDEN.search(part) or not _is_utf8(part)
            for part in parts
        )
    ):
        raise ProfileError(
            "INVALID_PROPERTY_PATH",
            f"a property path is 1 to {MAX_DEPTH} keys joined by dots, each at most "
            f"{MAX_KEY_LENGTH} characters without quote, backslash or control character, and "
            "no `$` key at the top",
            field="property",
        )


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def property_path_parse(path: str) -> list[str]:
    """`newsletter.subscribed` as staff type it (spaces around keys dropped) → its keys."""
    parts = path.strip().split(".")
    if not path.strip() or any(not part.strip() for part in parts):
        raise ProfileError(
            "INVALID_PROPERTY_PATH",
            f"'{path}' is not a property path: write keys joined by dots, e.g. newsletter.subscribed",
            field="property",
        )
    parts = [part.strip() for part in parts]
    property_path_check(parts)
    return parts


def property_filter_q(path: str | tuple[str, ...], value: Any, *, vendor: str | None = None) -> Q:
    """A filter on UserProfile for the property at `path` equal to `value`.

    The one implementation behind the admin's property filter and the API's `p.<path>=` search.
    """
    parts = property_path_parse(path) if isinstance(path, str) else list(path)
    if (vendor or connection.vendor) == "postgresql":
        nested: Any = value
        for part in reversed(parts):
            nested = {part: nested}
        return Q(properties__contains=nested)
    return _sqlite_q(parts, value)


def _sqlite_q(parts: list[str], value: Any) -> Q:
    json_path = "$" + "".join('."' + part.replace('"', "") + '"' for part in parts)

    def at_path(function: str, output_field) -> Func:
        return Func(F("properties"), Value(json_path), function=function, output_field=output_field)

    json_type = at_path("JSON_TYPE", CharField())
    if value is None or isinstance(value, bool):
        return Q(Exact(json_type, {None: "null", True: "true", False: "false"}[value]))
    if isinstance(value, int | float):
        # Compare integers as integers: a float would lose precision beyond 2**53.
        number_field = IntegerField() if isinstance(value, int) else FloatField()
        return Q(In(json_type, ["integer", "real"])) & Q(
            Exact(at_path("JSON_EXTRACT", number_field), value)
        )
    if isinstance(value, str):
        return Q(Exact(json_type, "text")) & Q(Exact(at_path("JSON_EXTRACT", TextField()), value))
    # Objects and arrays: equal when their compact JSON texts are (SQLite's JSON() minifies).
    compact = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    minified = Func(at_path("JSON_EXTRACT", TextField()), function="JSON", output_field=TextField())
    return Q(Exact(minified, compact))


def property_expression_parse(expression: str) -> tuple[str, Any]:
    """`path=value` as staff type it in the admin's filter box → (path, value)."""
    path, sep, raw = expression.partition("=")
    if not sep:
        raise ProfileError(
            "INVALID_PROPERTY_FILTER",
            f"'{expression}' is not a filter: write path=value, e.g. newsletter.subscribed=true",
            field="property",
        )
    property_path_parse(path)
    return path.strip(), property_value_parse(raw.strip())
