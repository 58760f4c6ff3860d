"""Profile commands: one validated line of an import file, or one API or admin write (SPEC.md §2).

A reader turns each record of a file (an NDJSON line, a JSON array element,
a CSV/XLSX row) into a plain mapping and hands it to `command_from_mapping`,
which answers a `ProfileCommand` or a `LineError`; the API and the admin build
their commands directly. `command_address` reads the profile a command
addresses (SPEC §2 rule 2 and the DELETE rule). Nothing here touches the
database: the merge options are kept raw, to be checked by
`profiles.merge.choose_merge_mode` when the engine applies the command.

Pure Python on purpose (no Django import) so the file formats can be tested
alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from profiles.errors import ProfileError
from profiles.identifiers import (
    AccountIdentifier,
    EmailIdentifier,
    Identifier,
    UserAgentIdentifier,
    identifier_label,
)
from profiles.validation import MAX_COMPARTMENT_ID, split_profile_object

MAX_IDENTIFIER_LENGTH = 255
# Keys the failed-lines file adds; a re-upload of that file must not trip on them.
ANNOTATION_KEYS = frozenset({"_line", "_error"})

IDENTIFIER_KEYS = ("compartment_id", "user_account_id", "email_hash", "user_agent_id")
COMMAND_KEYS = frozenset(
    {
        "operation",
        *IDENTIFIER_KEYS,
        "update_strategy",
        "force_replace",
        "merge_objects",
        "user_profile",
    }
)


class Operation(StrEnum):
    UPSERT = "UPSERT"
    DELETE = "DELETE"


def identifier_fields(identifier: Identifier) -> dict[str, Any]:
    """The identifier as the keys of an import command (the inverse of parsing)."""
    if isinstance(identifier, AccountIdentifier):
        fields: dict[str, Any] = {}
        if identifier.compartment_id is not None:
            fields["compartment_id"] = identifier.compartment_id
        fields["user_account_id"] = identifier.user_account_id
        return fields
    if isinstance(identifier, EmailIdentifier):
        return {"email_hash": identifier.email_hash}
    return {"user_agent_id": identifier.user_agent_id}


@dataclass(frozen=True)
class ProfileCommand:
    # 1-based line in the source. CSV/XLSX: header is line 1; NDJSON: physical
    # line; JSON array: element index starting at 1.
    line: int
    operation: Operation
    identifier: Identifier | uuid.UUID  # a UUID names an existing user point (API, admin)
    user_profile: dict | None  # raw, `$` keys included
    update_strategy: object = None  # raw; read by profiles.merge.choose_merge_mode
    force_replace: object = None
    merge_objects: object = None
    # The source record as read (the object, or {header: cell} for CSV/XLSX): kept so a line
    # that fails later, in the domain, still lands in the failed-lines file as it was sent.
    raw: object = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class CommandAddress:
    """The profile a command addresses, and the custom properties it carries."""

    compartment_id: int | None  # None: the datamart's default compartment
    user_account_id: str | None  # None: the anonymous profile
    properties: dict[str, Any]
    # The field that named the compartment, for an unknown-compartment error.
    compartment_field: str


def command_address(command: ProfileCommand) -> CommandAddress:
    """SPEC §2 rule 2 and the DELETE rule; raises ProfileError for a bad profile object.

    The profile is the one the `user_profile`'s `$compartment_id` / `$user_account_id` name
    (the default compartment, the anonymous profile), never inherited from the line's
    identifier; a DELETE without `user_profile` through an account addresses that account's
    own profile.
    """
    if command.operation is Operation.DELETE and command.user_profile is None:
        identifier = command.identifier
        if isinstance(identifier, AccountIdentifier):
            return CommandAddress(
                identifier.compartment_id, identifier.user_account_id, {}, "compartment_id"
            )
        return CommandAddress(None, None, {}, "compartment_id")
    address, properties = split_profile_object(command.user_profile)
    return CommandAddress(
        address.compartment_id, address.user_account_id, properties, "$compartment_id"
    )


def line_error(command: ProfileCommand, problem: ProfileError) -> LineError:
    """A domain error met while applying a command, reported on the command's line."""
    return LineError(
        line=command.line,
        code=problem.code,
        message=f"line {command.line}: {problem.message}",
        field=problem.field,
        identifier=identifier_label(command.identifier),
        raw=command.raw,
    )


@dataclass(frozen=True)
class LineError:
    line: int
    code: str
    message: str
    field: str = ""
    identifier: str = ""
    # The source record, for the failed-lines file: the object (NDJSON/JSON),
    # the line's text when it did not parse, or {header: cell} (CSV/XLSX).
    raw: object = None


class _Invalid(Exception):
    """One problem with one field; becomes a LineError."""

    def __init__(self, code: str, field: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.field = field
        self.detail = detail


def describe_value(value: object, limit: int = 60) -> str:
    """A short repr for messages, so a huge bad value does not flood the report."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def command_from_mapping(
    mapping: Mapping[str, Any],
    *,
    line: int,
    default_operation: Operation | None = None,
    raw: object = None,
) -> ProfileCommand | LineError:
    """Validate one command record; never raises for bad input.

    A key whose value is null counts as absent (exporters often write nulls). `raw` is the
    source record to keep (default: the mapping itself).
    """
    identifier: Identifier | None = None
    label = ""
    try:
        identifier = _identifier_from(mapping)
        label = identifier_label(identifier)
    except _Invalid as identifier_problem:
        pending: _Invalid | None = identifier_problem
    else:
        pending = None

    try:
        _reject_unknown_keys(mapping)
        operation = _operation_from(mapping.get("operation"), default_operation)
        if pending is not None:
            raise pending
        user_profile = _user_profile_from(mapping.get("user_profile"), operation)
    except _Invalid as problem:
        return LineError(
            line=line,
            code=problem.code,
            message=f"line {line}, field '{problem.field}': {problem.detail}",
            field=problem.field,
            identifier=label,
            raw=dict(mapping) if raw is None else raw,
        )

    assert identifier is not None
    return ProfileCommand(
        line=line,
        operation=operation,
        identifier=identifier,
        user_profile=user_profile,
        update_strategy=mapping.get("update_strategy"),
        force_replace=mapping.get("force_replace"),
        merge_objects=mapping.get("merge_objects"),
        raw=mapping if raw is None else raw,
    )


def identifier_label_of(mapping: Mapping[str, Any]) -> str:
    """The label of the mapping's identifier, or "" when it has no valid one."""
    try:
        return identifier_label(_identifier_from(mapping))
    except _Invalid:
        return ""


def _reject_unknown_keys(mapping: Mapping[str, Any]) -> None:
    # A typo such as "user_profil" must be reported, not silently ignored.
    for key in mapping:
        if key not in COMMAND_KEYS and key not in ANNOTATION_KEYS:
            raise _Invalid(
                "UNKNOWN_FIELD",
                str(key),
                f"unknown field (expected one of {', '.join(sorted(COMMAND_KEYS))})",
            )


def _operation_from(value: object, default: Operation | None) -> Operation:
    if value is None:
        if default is None:
            raise _Invalid("MISSING_OPERATION", "operation", "operation is required")
        return default
    if isinstance(value, str):
        try:
            return Operation(value.strip().upper())
        except ValueError:
            pass
    raise _Invalid(
        "INVALID_OPERATION", "operation", f"{describe_value(value)} is not UPSERT or DELETE"
    )


def _identifier_from(mapping: Mapping[str, Any]) -> Identifier:
    present = [key for key in IDENTIFIER_KEYS if mapping.get(key) is not None]
    kinds = {"user_account_id" if key == "compartment_id" else key for key in present}
    if not kinds:
        raise _Invalid(
            "MISSING_IDENTIFIER",
            "user_account_id",
            "no identifier: give user_account_id (and compartment_id), email_hash or user_agent_id",
        )
    if len(kinds) > 1:
        # The fields the line holds (compartment_id is an account's: the line may lack one).
        raise _Invalid(
            "MULTIPLE_IDENTIFIERS",
            ",".join(present),
            f"one identifier per line, found several kinds: {', '.join(present)}",
        )
    (kind,) = kinds
    if kind == "user_account_id":
        compartment_id = _compartment_id_from(mapping.get("compartment_id"))
        if mapping.get("user_account_id") is None:
            raise _Invalid(
                "MISSING_IDENTIFIER",
                "user_account_id",
                "compartment_id needs a user_account_id",
            )
        account = _identifier_value(mapping["user_account_id"], "user_account_id", allow_int=True)
        return AccountIdentifier(user_account_id=account, compartment_id=compartment_id)
    value = _identifier_value(mapping[kind], kind, allow_int=False)
    if kind == "email_hash":
        return EmailIdentifier(email_hash=value)
    return UserAgentIdentifier(user_agent_id=value)


def _compartment_id_from(value: object) -> int | None:
    if value is None:
        return None
    # bool is an int subclass: `true` must not become compartment 1.
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise _Invalid(
            "INVALID_COMPARTMENT_ID",
            "compartment_id",
            f"{describe_value(value)} is not an integer compartment id",
        )
    if not 0 <= number <= MAX_COMPARTMENT_ID:
        raise _Invalid("INVALID_COMPARTMENT_ID", "compartment_id", f"{number} is out of range")
    return number


def _identifier_value(value: object, field: str, *, allow_int: bool) -> str:
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        expected = "a string or an integer" if allow_int else "a string"
        raise _Invalid("INVALID_IDENTIFIER", field, f"{describe_value(value)} is not {expected}")
    if value == "":
        raise _Invalid("INVALID_IDENTIFIER", field, "is empty")
    if len(value) > MAX_IDENTIFIER_LENGTH:
        raise _Invalid(
            "INVALID_IDENTIFIER",
            field,
            f"is {len(value)} characters long, at most {MAX_IDENTIFIER_LENGTH} allowed",
        )
    if "\x00" in value:
        raise _Invalid("NUL_CHARACTER", field, "contains a NUL character")
    return value


def _user_profile_from(value: object, operation: Operation) -> dict | None:
    if value is None:
        if operation is Operation.UPSERT:
            raise _Invalid("MISSING_USER_PROFILE", "user_profile", "required for UPSERT")
        return None
    if not isinstance(value, dict):
        raise _Invalid(
            "INVALID_USER_PROFILE",
            "user_profile",
            f"must be a JSON object, got {type(value).__name__}",
        )
    return value
