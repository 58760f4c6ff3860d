"""JSON text read strictly, the one reader of the project's JSON: API request bodies
(`profiles.api.parsers`), import lines and array elements, `:json` cells; and the JSON
exports write.

Rules chosen here (not in the SPEC): duplicate keys, NaN/Infinity (and numbers
that overflow to infinity), integers outside 64 bits (checked on their digits
first: `int()` of thousands of digits is slow), NUL characters, lone UTF-16
surrogates and nesting deeper than `max_depth` are refused, since PostgreSQL
`jsonb` cannot store them or would silently keep only one duplicate. Each
refusal carries a machine code (DUPLICATE_KEY, NON_FINITE_NUMBER,
INVALID_NUMBER, NUL_CHARACTER, INVALID_UNICODE, TOO_DEEP, INVALID_JSON) and one
message, the same for an API body and an import line (where it becomes the line
error's code and message). `MAX_JSON_DEPTH` is deeper than any valid profile
(validation stops at 32 and names the field), so a too-deep profile gets the
same field-named error on every path; past it only the bracket count is looked at.

Written: `compact_json`, without spaces, non-ASCII kept as is, NaN refused.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from profiles.commands import describe_value
from profiles.validation import MAX_INT, MIN_INT

MAX_JSON_DEPTH = 64


class StrictJsonError(ValueError):
    def __init__(
        self, code: str, detail: str, *, reason: str = "", position: int | None = None
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        # A syntax error: what the parser expected, and the index of the character where.
        self.reason = reason
        self.position = position


def _object_without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise StrictJsonError("DUPLICATE_KEY", f"key {describe_value(key)} appears twice")
            seen.add(key)
    return obj


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise StrictJsonError("NON_FINITE_NUMBER", f"{text[:40]} is too large for a number")
    return number


def _reject_constant(name: str) -> float:
    raise StrictJsonError("NON_FINITE_NUMBER", f"{name} is not a JSON number")


def _int_in_64_bits(text: str) -> int:
    if len(text.lstrip("-")) > 19 or not MIN_INT <= (number := int(text)) <= MAX_INT:
        shown = text if len(text) <= 24 else text[:21] + "..."
        raise StrictJsonError("INVALID_NUMBER", f"the integer {shown} does not fit in 64 bits")
    return number


_STRICT_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicate_keys,
    parse_float=_finite_float,
    parse_int=_int_in_64_bits,
    parse_constant=_reject_constant,
)
NUL_MESSAGE = "contains a NUL character (\\u0000)"
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def nesting_exceeds(text: str, max_depth: int) -> bool:
    """Whether brackets outside strings nest deeper than max_depth.

    Checked before json.loads, whose C parser would hit the recursion limit on
    a line of 10 000 brackets.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return False  # the common case: too few brackets to go that deep
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > max_depth:
                return True
        elif token in ("]", "}"):
            depth -= 1
    return False


def _bad_string_code(value: Any) -> str | None:
    """NUL_CHARACTER or INVALID_UNICODE if a key or string holds one, else None."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "NUL_CHARACTER"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "INVALID_UNICODE"
    return None


def parse_strict_json(text: str, *, max_depth: int) -> Any:
    """json.loads with the rules of this module; raises StrictJsonError."""
    if "\x00" in text:
        raise StrictJsonError("NUL_CHARACTER", NUL_MESSAGE)
    if nesting_exceeds(text, max_depth):
        raise StrictJsonError("TOO_DEEP", f"nested deeper than {max_depth} levels")
    try:
        value = _STRICT_DECODER.decode(text)
    except StrictJsonError:
        raise
    except json.JSONDecodeError as problem:
        raise StrictJsonError(
            "INVALID_JSON",
            # Some of json's messages end with "at" ("Unterminated string starting at").
            f"invalid JSON: {problem.msg.removesuffix(' at')} at character {problem.pos + 1}",
            reason=problem.msg,
            position=problem.pos,
        ) from None
    except RecursionError:
        raise StrictJsonError("TOO_DEEP", f"nested deeper than {max_depth} levels") from None
    except ValueError as problem:  # e.g. an integer of more than 4300 digits
        raise StrictJsonError("INVALID_JSON", f"invalid JSON: {problem}") from None
    # Only walk the value when the text holds an escape that could produce one.
    if "\\u0000" in text or _ESCAPED_SURROGATE.search(text):
        code = _bad_string_code(value)
        if code == "NUL_CHARACTER":
            raise StrictJsonError(code, NUL_MESSAGE)
        if code == "INVALID_UNICODE":
            raise StrictJsonError(code, "contains a lone UTF-16 surrogate escape")
    return value


def compact_json(value: Any) -> str:
    """The JSON text exports write: compact, UTF-8 characters kept, never NaN."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
