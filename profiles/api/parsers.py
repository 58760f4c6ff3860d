"""JSON request bodies, read strictly: the one parser of the API's objects."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from profiles.api.exceptions import PayloadTooLarge
from profiles.strict_json import MAX_JSON_DEPTH, StrictJsonError, parse_strict_json


class JSONRejected(ParseError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(detail=message, code=code)


def strict_json_loads(text: str) -> Any:
    """A request body through the project's one strict JSON reader (`profiles.strict_json`):
    the same codes and messages as an import line, but a syntax error is MALFORMED_JSON."""
    try:
        return parse_strict_json(text, max_depth=MAX_JSON_DEPTH)
    except StrictJsonError as problem:
        if problem.code == "INVALID_JSON":
            raise JSONRejected(
                "MALFORMED_JSON", f"the body is not valid JSON: {problem.detail}"
            ) from None
        raise JSONRejected(problem.code, problem.detail) from None


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
