"""Profile writes: one command at a time through the write engine (SPEC §2), for the API and the
admin; an import applies its chunks through the same engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.db import transaction

from profiles.commands import Operation, ProfileCommand
from profiles.engine import BatchResult, commands_apply, with_retries
from profiles.errors import ProfileError
from profiles.history import SYSTEM_SOURCE, ChangeSource
from profiles.merge import DEFAULT_MERGE_MODE, MergeMode
from profiles.models import Compartment, Datamart, UserPoint, UserProfile
from profiles.selectors import UserPointSelector, compartment_get, profile_find, user_point_get
from profiles.validation import split_profile_object, validate_custom_properties


class WriteOutcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED = "deleted"
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class ProfileWrite:
    outcome: WriteOutcome
    profile: UserProfile | None


def profile_command_apply(
    *, datamart: Datamart, command: ProfileCommand, mode: MergeMode, source: ChangeSource
) -> WriteOutcome:
    """One command (SPEC §2) through the engine, as a batch of one; its line error is raised as
    the domain error it is."""

    def apply() -> BatchResult:
        with transaction.atomic():
            return commands_apply(
                datamart=datamart, records=[command], default_mode=mode, source=source
            )

    result = with_retries(apply)
    if result.problems:
        raise result.problems[command.line]
    return next(WriteOutcome(name) for name, count in result.counts.items() if count)


def _addressed(
    properties: dict[str, Any], compartment_id: int, user_account_id: str | None
) -> dict[str, Any]:
    return {**properties, "$compartment_id": compartment_id, "$user_account_id": user_account_id}


def profile_upsert(
    *,
    user_point: UserPoint,
    compartment: Compartment,
    user_account_id: str | None,
    properties: dict,
    mode: MergeMode,
    source: ChangeSource = SYSTEM_SOURCE,
    expected_last_modified_ts: datetime | None = None,
) -> ProfileWrite:
    """Apply one strategy of SPEC §2 to one profile of an existing point (the admin's save).

    `expected_last_modified_ts`: refuse (STALE_PROFILE) when the stored profile changed since
    the caller read it.
    """
    validate_custom_properties(properties)
    with transaction.atomic():
        if expected_last_modified_ts is not None:
            stored = profile_find(
                user_point=user_point,
                compartment=compartment,
                user_account_id=user_account_id,
                lock=True,
            )
            if stored is not None and stored.last_modified_ts != expected_last_modified_ts:
                raise ProfileError(
                    "STALE_PROFILE",
                    "this profile was changed by someone else since you loaded it: reload it "
                    "and apply your change again",
                )
        command = ProfileCommand(
            line=1,
            operation=Operation.UPSERT,
            identifier=user_point.pk,
            user_profile=_addressed(properties, compartment.compartment_id, user_account_id),
        )
        outcome = profile_command_apply(
            datamart=user_point.datamart, command=command, mode=mode, source=source
        )
        profile = profile_find(
            user_point=user_point, compartment=compartment, user_account_id=user_account_id
        )
    return ProfileWrite(outcome, profile)


def profile_delete(
    *,
    user_point: UserPoint,
    compartment: Compartment,
    user_account_id: str | None,
    source: ChangeSource = SYSTEM_SOURCE,
) -> ProfileWrite:
    command = ProfileCommand(
        line=1,
        operation=Operation.DELETE,
        identifier=user_point.pk,
        user_profile=_addressed({}, compartment.compartment_id, user_account_id),
    )
    outcome = profile_command_apply(
        datamart=user_point.datamart, command=command, mode=DEFAULT_MERGE_MODE, source=source
    )
    return ProfileWrite(outcome, None)


def profile_object_upsert(
    *,
    datamart: Datamart,
    selector: UserPointSelector,
    compartment_id: int,
    user_account_id: str | None,
    user_profile: object,
    mode: MergeMode,
    source: ChangeSource = SYSTEM_SOURCE,
) -> ProfileWrite:
    """Write a client's profile object at an address (the REST API's PUT and PATCH).

    The address (compartment, account) is given apart from the object, whose `$compartment_id`
    and `$user_account_id`, when present, must agree with it. An identifier unknown in the
    datamart creates its user point, as an import UPSERT does; a point named by its id must
    exist. When nothing is left to address (PARTIAL_DELETE of a missing profile) it answers
    PROFILE_NOT_FOUND, the point created all the same: the command did what the same import
    line does (SPEC §5, "as an import UPSERT does"), which counts it `unchanged`.
    """
    address, properties = split_profile_object(user_profile)
    assert isinstance(user_profile, dict)  # split_profile_object refused anything else
    compartment = compartment_get(datamart=datamart, compartment_id=compartment_id)
    # A null $compartment_id names the default compartment, as in an import line (SPEC §2).
    named = address.compartment_id
    if "$compartment_id" in user_profile and (
        compartment.compartment_id != named if named is not None else not compartment.is_default
    ):
        raise ProfileError(
            "ADDRESS_MISMATCH",
            f"$compartment_id {'null (the default compartment)' if named is None else named} "
            f"differs from the compartment {compartment_id} of the path",
            field="$compartment_id",
        )
    if "$user_account_id" in user_profile and address.user_account_id != user_account_id:
        raise ProfileError(
            "ADDRESS_MISMATCH",
            "$user_account_id differs from the user_account_id of the path",
            field="$user_account_id",
        )
    command = ProfileCommand(
        line=1,
        operation=Operation.UPSERT,
        identifier=selector,
        user_profile=_addressed(properties, compartment_id, user_account_id),
    )
    with transaction.atomic():
        outcome = profile_command_apply(
            datamart=datamart, command=command, mode=mode, source=source
        )
        point = user_point_get(datamart=datamart, selector=selector)
        profile = (
            None
            if point is None
            else profile_find(
                user_point=point, compartment=compartment, user_account_id=user_account_id
            )
        )
    if profile is None:
        raise ProfileError(
            "PROFILE_NOT_FOUND",
            "this profile does not exist: PARTIAL_DELETE creates none (its user point is "
            "created, as by an import UPSERT)",
        )
    return ProfileWrite(outcome, profile)
