"""Every write of the domain goes through these functions: the admin, the API and the importer."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.db import transaction
from django.utils import timezone

from profiles.bulk import BulkWriter
from profiles.commands import Operation, ProfileCommand
from profiles.compartments import DatamartCompartments
from profiles.engine import BatchResult, commands_apply, with_retries
from profiles.errors import ProfileError
from profiles.history import SYSTEM_SOURCE, ChangeSource
from profiles.identifiers import AccountIdentifier, EmailIdentifier, Identifier, UserAgentIdentifier
from profiles.merge import DEFAULT_MERGE_MODE, MergeMode
from profiles.models import (
    ApiToken,
    Compartment,
    Datamart,
    UserAccount,
    UserAgent,
    UserEmail,
    UserPoint,
    UserProfile,
)
from profiles.points import identifier_key, points_create, points_find
from profiles.selectors import (
    UserPointSelector,
    compartment_get,
    profile_find,
    user_point_get,
)
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


# --- datamarts and compartments -------------------------------------------------------------


def datamart_create(*, datamart_id: int, name: str, default_compartment_id: int) -> Datamart:
    """Create the datamart and its default compartment; running it again changes nothing."""
    with transaction.atomic():
        datamart, _ = Datamart.objects.get_or_create(id=datamart_id, defaults={"name": name})
        if not Compartment.objects.filter(datamart=datamart, is_default=True).exists():
            compartment, _ = Compartment.objects.get_or_create(
                datamart=datamart,
                compartment_id=default_compartment_id,
                defaults={"name": f"{name} default"},
            )
            compartment_make_default(compartment=compartment)
    return datamart


def compartment_create(
    *, datamart: Datamart, compartment_id: int, name: str, is_default: bool = False
) -> Compartment:
    with transaction.atomic():
        if Compartment.objects.filter(datamart=datamart, compartment_id=compartment_id).exists():
            raise ProfileError(
                "COMPARTMENT_EXISTS",
                f"compartment {compartment_id} already exists in datamart {datamart.id}",
                field="compartment_id",
            )
        first = not Compartment.objects.filter(datamart=datamart).exists()
        compartment = Compartment.objects.create(
            datamart=datamart, compartment_id=compartment_id, name=name
        )
        if is_default or first:
            compartment_make_default(compartment=compartment)
    return compartment


def compartment_update(*, compartment: Compartment, name: str, is_default: bool) -> Compartment:
    with transaction.atomic():
        if compartment.is_default and not is_default:
            raise ProfileError(
                "DEFAULT_COMPARTMENT_REQUIRED",
                "a datamart always has one default compartment: make another one the default instead",
                field="is_default",
            )
        compartment.name = name
        compartment.save(update_fields=["name"])
        if is_default and not compartment.is_default:
            compartment_make_default(compartment=compartment)
    return compartment


def compartment_make_default(*, compartment: Compartment) -> None:
    """Swap the default in one transaction, so there is never zero or two."""
    with transaction.atomic():
        Compartment.objects.filter(datamart_id=compartment.datamart_id, is_default=True).exclude(
            pk=compartment.pk
        ).update(is_default=False)
        Compartment.objects.filter(pk=compartment.pk).update(is_default=True)
        compartment.is_default = True


def compartment_delete(*, compartment: Compartment) -> None:
    if compartment.is_default:
        raise ProfileError(
            "DEFAULT_COMPARTMENT_REQUIRED",
            "the default compartment cannot be deleted: make another one the default first",
        )
    if compartment.profiles.exists() or compartment.accounts.exists():
        raise ProfileError(
            "COMPARTMENT_IN_USE",
            f"compartment {compartment.compartment_id} still holds profiles or accounts",
        )
    compartment.delete()


# --- user points --------------------------------------------------------------------------


def user_point_resolve(
    *, datamart: Datamart, identifier: Identifier, create: bool
) -> tuple[UserPoint | None, bool]:
    """The point the identifier names, created with it when unknown and `create` is set.

    Returns (point, created). Two writers creating the same identifier at once both end
    with the same point (see `profiles.points.points_create`).
    """
    key = identifier_key(identifier, DatamartCompartments(datamart))
    point_id = points_find(datamart, [key]).get(key)
    created = False
    if point_id is None and create:
        with transaction.atomic():
            point_id = points_create(BulkWriter(), datamart, [key], timezone.now())[key]
        created = True
    return (None if point_id is None else UserPoint.objects.get(pk=point_id)), created


def identifier_attach(*, user_point: UserPoint, identifier: Identifier, email: str = "") -> None:
    datamart = user_point.datamart
    match identifier:
        case AccountIdentifier():
            UserAccount.objects.create(
                datamart=datamart,
                user_point=user_point,
                compartment=compartment_get(
                    datamart=datamart, compartment_id=identifier.compartment_id
                ),
                user_account_id=identifier.user_account_id,
            )
        case EmailIdentifier():
            UserEmail.objects.create(
                datamart=datamart,
                user_point=user_point,
                email_hash=identifier.email_hash,
                email=email,
            )
        case UserAgentIdentifier():
            UserAgent.objects.create(
                datamart=datamart, user_point=user_point, user_agent_id=identifier.user_agent_id
            )


def user_point_delete(*, user_point: UserPoint) -> None:
    """Deleting a point deletes its identifiers and profiles (cascade)."""
    user_point.delete()


# --- profiles: every write is a batch of one through the engine ------------------------


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
    PROFILE_NOT_FOUND and creates nothing, the point included.
    """
    address, properties = split_profile_object(user_profile)
    assert isinstance(user_profile, dict)  # split_profile_object refused anything else
    if "$compartment_id" in user_profile and address.compartment_id != compartment_id:
        raise ProfileError(
            "ADDRESS_MISMATCH",
            f"$compartment_id {address.compartment_id} differs from the compartment "
            f"{compartment_id} of the path",
            field="$compartment_id",
        )
    if "$user_account_id" in user_profile and address.user_account_id != user_account_id:
        raise ProfileError(
            "ADDRESS_MISMATCH",
            "$user_account_id differs from the user_account_id of the path",
            field="$user_account_id",
        )
    compartment = compartment_get(datamart=datamart, compartment_id=compartment_id)
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
            raise ProfileError("PROFILE_NOT_FOUND", "this profile does not exist")
    return ProfileWrite(outcome, profile)


# --- API tokens ---------------------------------------------------------------------------


def api_token_digest(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


def api_token_create(*, datamart: Datamart, name: str) -> tuple[ApiToken, str]:
    """A new token; the raw value is returned once and only its digest is kept."""
    raw_token = f"pst_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        datamart=datamart, name=name, digest=api_token_digest(raw_token), prefix=raw_token[:10]
    )
    return token, raw_token


def api_token_authenticate(*, raw_token: str) -> ApiToken | None:
    token = (
        ApiToken.objects.select_related("datamart")
        .filter(digest=api_token_digest(raw_token), revoked_ts__isnull=True)
        .first()
    )
    if token is not None:
        now = timezone.now()
        # Write the last-used time at most once a minute, not on every request.
        if token.last_used_ts is None or (now - token.last_used_ts).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_ts=now)
            token.last_used_ts = now
    return token


def api_token_revoke(*, token: ApiToken) -> None:
    if token.revoked_ts is None:
        token.revoked_ts = timezone.now()
        token.save(update_fields=["revoked_ts"])
