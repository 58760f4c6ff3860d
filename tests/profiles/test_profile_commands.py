from __future__ import annotations

import pytest

from profiles.commands import (
    AccountIdentifier,
    EmailIdentifier,
    LineError,
    Operation,
    ProfileCommand,
    UserAgentIdentifier,
    command_from_mapping,
    identifier_label,
)


def upsert(**fields):
    return {"operation": "UPSERT", "user_profile": {"firstname": "David"}, **fields}


def test_account_command_keeps_its_profile_and_compartment():
    command = command_from_mapping(upsert(compartment_id=1606, user_account_id="c987"), line=3)
    assert command == ProfileCommand(
        line=3,
        operation=Operation.UPSERT,
        identifier=AccountIdentifier(user_account_id="c987", compartment_id=1606),
        user_profile={"firstname": "David"},
    )


def test_compartment_may_be_a_numeric_string():
    command = command_from_mapping(upsert(compartment_id=" 1606 ", user_account_id="a"), line=1)
    assert command.identifier == AccountIdentifier(user_account_id="a", compartment_id=1606)


def test_account_without_compartment_means_default_compartment():
    command = command_from_mapping(upsert(user_account_id="a"), line=1)
    assert command.identifier == AccountIdentifier(user_account_id="a", compartment_id=None)


def test_integer_account_id_becomes_text():
    command = command_from_mapping(upsert(user_account_id=42), line=1)
    assert command.identifier == AccountIdentifier(user_account_id="42", compartment_id=None)


@pytest.mark.parametrize(
    ("fields", "identifier"),
    [
        ({"email_hash": "abc"}, EmailIdentifier("abc")),
        ({"user_agent_id": "vec:1"}, UserAgentIdentifier("vec:1")),
    ],
)
def test_email_and_user_agent_identifiers(fields, identifier):
    assert command_from_mapping(upsert(**fields), line=1).identifier == identifier


@pytest.mark.parametrize("operation", ["upsert", "Upsert", " UPSERT "])
def test_operation_is_case_insensitive(operation):
    command = command_from_mapping(upsert(email_hash="h", operation=operation), line=1)
    assert command.operation is Operation.UPSERT


def test_missing_operation_is_an_error_without_a_default():
    mapping = upsert(email_hash="h")
    del mapping["operation"]
    error = command_from_mapping(mapping, line=4)
    assert (error.code, error.field, error.line) == ("MISSING_OPERATION", "operation", 4)
    assert error.identifier == "email_hash=h"


def test_missing_operation_takes_the_default_when_given():
    mapping = upsert(email_hash="h")
    del mapping["operation"]
    command = command_from_mapping(mapping, line=4, default_operation=Operation.UPSERT)
    assert command.operation is Operation.UPSERT


@pytest.mark.parametrize("operation", ["UPSRT", "", 1, True, ["UPSERT"]])
def test_unknown_operation_is_an_error(operation):
    error = command_from_mapping(upsert(email_hash="h", operation=operation), line=2)
    assert error.code == "INVALID_OPERATION"
    assert error.message.startswith("line 2, field 'operation'")


def test_line_without_identifier_is_an_error():
    error = command_from_mapping(upsert(), line=1)
    assert (error.code, error.identifier) == ("MISSING_IDENTIFIER", "")


def test_two_identifier_kinds_on_one_line_are_an_error():
    error = command_from_mapping(upsert(email_hash="h", user_agent_id="vec:1"), line=1)
    assert error.code == "MULTIPLE_IDENTIFIERS"
    assert "email_hash" in error.message and "user_agent_id" in error.message


def test_compartment_without_account_names_the_missing_account():
    error = command_from_mapping(upsert(compartment_id=1606), line=1)
    assert (error.code, error.field) == ("MISSING_IDENTIFIER", "user_account_id")


def test_compartment_with_an_email_hash_is_two_identifier_kinds():
    error = command_from_mapping(upsert(compartment_id=1606, email_hash="h"), line=1)
    assert error.code == "MULTIPLE_IDENTIFIERS"
    # It names the fields the line holds, not an account the line lacks.
    assert error.message.endswith("found several kinds: compartment_id, email_hash")


@pytest.mark.parametrize("compartment", [0, 2**31 - 1, str(2**31 - 1)])
def test_compartment_ids_up_to_the_column_s_maximum_are_accepted(compartment):
    command = command_from_mapping(upsert(compartment_id=compartment, user_account_id="a"), line=1)
    assert command.identifier == AccountIdentifier(
        user_account_id="a", compartment_id=int(compartment)
    )


@pytest.mark.parametrize(
    "compartment", [True, 1606.0, "abc", "-3", "16.06", [1606], -1, 2**31, str(2**31)]
)
def test_compartment_must_be_an_integer(compartment):
    error = command_from_mapping(upsert(compartment_id=compartment, user_account_id="a"), line=1)
    assert (error.code, error.field) == ("INVALID_COMPARTMENT_ID", "compartment_id")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email_hash": ""}, "email_hash"),
        ({"email_hash": 12}, "email_hash"),
        ({"user_agent_id": "x" * 256}, "user_agent_id"),
        ({"user_account_id": True}, "user_account_id"),
        ({"user_account_id": 1.5}, "user_account_id"),
    ],
)
def test_identifier_values_must_be_short_non_empty_strings(fields, field):
    error = command_from_mapping(upsert(**fields), line=1)
    assert (error.code, error.field) == ("INVALID_IDENTIFIER", field)


def test_identifier_of_255_characters_is_accepted():
    command = command_from_mapping(upsert(user_agent_id="x" * 255), line=1)
    assert isinstance(command, ProfileCommand)


def test_upsert_needs_a_user_profile():
    error = command_from_mapping({"operation": "UPSERT", "email_hash": "h"}, line=9)
    assert (error.code, error.field, error.identifier) == (
        "MISSING_USER_PROFILE",
        "user_profile",
        "email_hash=h",
    )


def test_delete_without_user_profile_is_fine():
    command = command_from_mapping({"operation": "DELETE", "email_hash": "h"}, line=1)
    assert (command.operation, command.user_profile) == (Operation.DELETE, None)


@pytest.mark.parametrize("operation", ["UPSERT", "DELETE"])
@pytest.mark.parametrize("profile", [[], "x", 3])
def test_user_profile_must_be_an_object(operation, profile):
    error = command_from_mapping(
        {"operation": operation, "email_hash": "h", "user_profile": profile}, line=1
    )
    assert error.code == "INVALID_USER_PROFILE"


def test_misspelt_field_is_reported_not_ignored():
    error = command_from_mapping(
        {"operation": "UPSERT", "email_hash": "h", "user_profil": {"a": 1}}, line=5
    )
    assert (error.code, error.field) == ("UNKNOWN_FIELD", "user_profil")
    assert "user_profil" in error.message


def test_failed_lines_annotations_are_ignored():
    command = command_from_mapping(upsert(email_hash="h", _line=3, _error="was bad"), line=1)
    assert isinstance(command, ProfileCommand)


def test_merge_options_are_kept_raw():
    command = command_from_mapping(
        upsert(
            email_hash="h", update_strategy="partial_update", force_replace="yes", merge_objects=0
        ),
        line=1,
    )
    assert (command.update_strategy, command.force_replace, command.merge_objects) == (
        "partial_update",
        "yes",
        0,
    )


def test_null_fields_count_as_absent():
    command = command_from_mapping(
        upsert(email_hash="h", compartment_id=None, user_agent_id=None, update_strategy=None),
        line=1,
    )
    assert command.identifier == EmailIdentifier("h")


def test_line_error_keeps_the_source_record():
    mapping = {"operation": "UPSERT", "email_hash": "h"}
    error = command_from_mapping(mapping, line=1)
    assert isinstance(error, LineError)
    assert error.raw == mapping


@pytest.mark.parametrize(
    ("identifier", "label"),
    [
        (AccountIdentifier("abc", 1606), "compartment_id=1606,user_account_id=abc"),
        (AccountIdentifier("abc", None), "user_account_id=abc"),
        (EmailIdentifier("e1"), "email_hash=e1"),
        (UserAgentIdentifier("vec:1"), "user_agent_id=vec:1"),
    ],
)
def test_identifier_label_uses_the_rest_selector_form(identifier, label):
    assert identifier_label(identifier) == label
