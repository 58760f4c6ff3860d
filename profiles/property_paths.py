"""Property path filters (`newsletter_options.subscribed = true`), read as the API reads them.

The value is a JSON literal when it is one (`true`, `false`, `null`, numbers, `"quoted"`),
else a plain string. Types count: `true` matches neither `"true"` nor `1`. Every part of the
path is an object key. On PostgreSQL the filter is a containment (`properties @> {...}`), which
the GIN index (jsonb_path_ops) serves (an array or object value then matches by containment);
on SQLite it compares the JSON type and the value found at the path.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connection
from django.db.models import CharField, F, FloatField, Func, IntegerField, Q, TextField, Value
from django.db.models.lookups import Exact, In

from profiles.errors import ProfileError


def property_value_parse(text: str) -> Any:
    """`true` → True, `1` → 1, `"1"` → "1", `null` → None; anything else stays a string.

    JSON objects and arrays are literals too (on PostgreSQL they match by containment).
    """
    try:
        return json.loads(text)
    except ValueError:
        return text


def property_path_parse(path: str) -> list[str]:
    parts = path.strip().split(".")
    if not path.strip() or any(not part.strip() for part in parts):
        raise ProfileError(
            "INVALID_PROPERTY_PATH",
            f"'{path}' is not a property path: write keys joined by dots, e.g. newsletter.subscribed",
            field="property",
        )
    return [part.strip() for part in parts]


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
