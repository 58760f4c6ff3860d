"""The REST paths' small languages: user point selectors, profile addresses, query values.

Selector rules (SPEC §5, and ours where it is silent):
- `{uuid}` or `user_point_id={uuid}`: the point's id.
- `compartment_id={c},user_account_id={a}`: an account; `{a}` is everything after
  `user_account_id=`, commas included. `user_account_id={a}` alone means the default compartment.
- `email_hash={h}`, `user_agent_id={id}`: the value is everything after the `=`.
- Values are percent-decoded by the server before routing, so a value cannot hold `/`
  (not even as `%2F`); `%2C`, `%3D`, spaces (`%20`) and any other character are fine.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime

from rest_framework import status

from profiles.api.exceptions import ApiError
from profiles.errors import ProfileError
from profiles.identifiers import AccountIdentifier, EmailIdentifier, UserAgentIdentifier
from profiles.property_paths import property_path_check, property_value_parse
from profiles.selectors import PropertyFilter, UserPointSelector
from profiles.validation import MAX_COMPARTMENT_ID, MAX_DEPTH, MAX_USER_ACCOUNT_ID_LENGTH

MAX_VALUE_LENGTH = 255  # the identifier columns' max_length
_ACCOUNT = re.compile(r"compartment_id=([0-9]{1,10}),user_account_id=(.+)", re.DOTALL)


def bad_request(code: str, message: str, *, field: str = "") -> ApiError:
    return ApiError(status.HTTP_400_BAD_REQUEST, code, message, field=field)


def _selector_value(value: str, kind: str) -> str:
    if not value or len(value) > MAX_VALUE_LENGTH or "\x00" in value:
        raise bad_request(
            "INVALID_SELECTOR",
            f"{kind} must be 1 to {MAX_VALUE_LENGTH} characters without NUL",
            field="selector",
        )
    return value


def _point_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise bad_request(
            "INVALID_SELECTOR", f"{text[:64]!r} is not a user point id (a UUID)", field="selector"
        ) from None


def parse_selector(text: str) -> UserPointSelector:
    kind, equals, value = text.partition("=")
    if not equals:
        return _point_id(text)
    if kind == "user_point_id":
        return _point_id(value)
    if kind == "email_hash":
        return EmailIdentifier(_selector_value(value, kind))
    if kind == "user_agent_id":
        return UserAgentIdentifier(_selector_value(value, kind))
    if kind == "user_account_id":
        return AccountIdentifier(_selector_value(value, kind))
    if kind == "compartment_id":
        match = _ACCOUNT.fullmatch(text)
        if match is not None:
            return AccountIdentifier(
                _selector_value(match[2], "user_account_id"),
                compartment_id=parse_compartment_id(match[1]),
            )
    raise bad_request(
        "INVALID_SELECTOR",
        "a user point selector is {uuid}, user_point_id={uuid}, "
        "compartment_id={c},user_account_id={a}, email_hash={h} or user_agent_id={id}",
        field="selector",
    )


def parse_compartment_id(text: str, *, field: str = "compartment_id") -> int:
    if not text.isascii() or not text.isdigit() or int(text) > MAX_COMPARTMENT_ID:
        raise bad_request(
            "INVALID_COMPARTMENT_ID", f"{field} must be a compartment id such as 1606", field=field
        )
    return int(text)


def parse_user_account_id(text: str) -> str:
    if not text or len(text) > MAX_USER_ACCOUNT_ID_LENGTH or "\x00" in text:
        raise bad_request(
            "INVALID_USER_ACCOUNT_ID",
            f"user_account_id must be 1 to {MAX_USER_ACCOUNT_ID_LENGTH} characters without NUL",
            field="user_account_id",
        )
    return text


def parse_epoch_ms(text: str, *, field: str) -> datetime:
    try:
        millis = int(text)
        return datetime.fromtimestamp(millis / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise bad_request(
            "INVALID_TIMESTAMP", f"{field} must be a time in epoch milliseconds", field=field
        ) from None


def parse_property_filter(name: str, raw_value: str) -> PropertyFilter:
    """`p.a.b` and VALUE: VALUE is a JSON scalar literal when it parses as one, else a string.

    The path's keys and the value are read by `profiles.property_paths`, as the admin's filter
    is; the API adds that keys are taken as sent (spaces count) and that an object or an array
    is compared as its text (`_filter_value`).
    """
    path = tuple(name.removeprefix("p.").split("."))
    try:
        property_path_check(path)
    except ProfileError:
        raise bad_request(
            "INVALID_FILTER",
            f"{name[:64]!r}: a property filter is p.<key>[.<key>…] with at most {MAX_DEPTH} "
            "non-empty keys, no quote, backslash or control character, and no `$` key at the top",
            field=name[:64],
        ) from None
    return PropertyFilter(path=path, value=_filter_value(name, raw_value))


def _filter_value(name: str, raw_value: str) -> None | bool | int | float | str:
    """SPEC §5: a JSON literal when VALUE is one (`true`, `false`, `null`, a number, a "quoted
    string"), else the text itself; an object or an array is no such literal, so `[1]` is the
    string `[1]` (checked as a string is: no NUL, bounded)."""
    literal = raw_value.lstrip()[:1] not in ("[", "{")
    try:
        return property_value_parse(raw_value if literal else json.dumps(raw_value))
    except ProfileError as error:
        raise bad_request(
            "INVALID_FILTER", f"{name[:64]}: {error.message}", field=name[:64]
        ) from None
