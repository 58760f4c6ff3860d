"""JSON request bodies, read strictly: the one parser of the API's objects."""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from profiles.api.exceptions import PayloadTooLarge

# Deeper than any valid profile (validation stops at 32), shallow enough that nothing recurses far.
MAX_BODY_DEPTH = 64
MAX_INT = 2**63 - 1

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# An escaped NUL: `\u0000` after an even number of backslashes (`\\u0000` is the text "\u0000").
_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


class JSONRejected(ParseError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(detail=message, code=code)


def _reject_constant(name: str) -> Any:
    raise JSONRejected("NON_FINITE_NUMBER", f"{name} is not a JSON number")


def _parse_int(text: str) -> int:
    # Checked on the text first: int() of thousands of digits is slow, and Python refuses it.
    if len(text.lstrip("-")) > 19 or abs(number := int(text)) > MAX_INT:
        shown = text if len(text) <= 24 else text[:21] + "..."
        raise JSONRejected("INVALID_NUMBER", f"the integer {shown} does not fit in 64 bits")
    return number


def _parse_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise JSONRejected("INVALID_NUMBER", f"the number {text[:24]} is too large")
    return number


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JSONRejected(
                    "DUPLICATE_KEY", f"the key {key[:64]!r} appears twice in one object"
                )
            seen.add(key)
    return result


def _nesting_depth(text: str) -> int:
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(_BRACKET_STEP[char] for char in brackets), default=0)


def _find_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def strict_json_loads(text: str) -> Any:
    """JSON as RFC 8259 has it: no NaN/Infinity, no duplicate keys, no NUL, bounded depth."""
    if _nesting_depth(text) > MAX_BODY_DEPTH:
        raise JSONRejected("TOO_DEEP", f"the body is nested deeper than {MAX_BODY_DEPTH} levels")
    if _ESCAPED_NUL.search(text):
        raise JSONRejected("NUL_CHARACTER", "the body contains a NUL character (\\u0000)")
    try:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
            parse_float=_parse_float,
            object_pairs_hook=_object_without_duplicates,
        )
    except json.JSONDecodeError as error:
        raise JSONRejected("MALFORMED_JSON", f"the body is not valid JSON: {error}") from None
    except (RecursionError, ValueError) as error:
        raise JSONRejected("MALFORMED_JSON", f"the body is not valid JSON: {error}") from None
    if _ESCAPED_SURROGATE.search(text) and _find_lone_surrogate(value):
        raise JSONRejected("INVALID_STRING", "the body contains an unpaired UTF-16 surrogate")
    return value


class StrictJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise PayloadTooLarge(f"a JSON body is limited to {limit} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise JSONRejected("INVALID_ENCODING", "a JSON body must be UTF-8") from None
        return strict_json_loads(text.removeprefix("\ufeff"))
