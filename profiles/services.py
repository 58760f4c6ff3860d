"""Every write of the domain goes through these functions: the admin, the API and the importer."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from profiles.errors import ProfileError
from profiles.identifiers import AccountIdentifier, EmailIdentifier, Identifier, UserAgentIdentifier
from profiles.merge import MergeMode, apply_merge, json_equal
from profiles.models import (
    ApiToken,
    Compartment,
    Datamart,
    ProfileChange,
    UserAccount,
    UserAgent,
    UserEmail,
    UserPoint,
    UserProfile,
)
from profiles.validation import split_profile_object, validate_custom_properties

# A user point named by its id, or by one of its identifiers (the REST API's selectors).
UserPointSelector = uuid.UUID | Identifier


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


@dataclass(frozen=True)
class ChangeSource:
    """Who writes: recorded in each profile's history."""

    kind: str = ProfileChange.Source.SYSTEM
    user_id: int | None = None
    api_token_id: int | None = None
    execution_id: int | None = None


SYSTEM_SOURCE = ChangeSource()


def changed_keys(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The top-level keys whose value differs between two versions of the properties."""
    keys = before.keys() | after.keys()
    return sorted(
        key
        for key in keys
        if key not in before or key not in after or not json_equal(before[key], after[key])
    )


def profile_change_build(
    *, profile: UserProfile, action: str, keys: list[str], source: ChangeSource
) -> ProfileChange:
    """An unsaved history record, so bulk writers can insert many in one statement."""
    return ProfileChange(
        datamart_id=profile.datamart_id,
        user_point_id=profile.user_point_id,
        profile_id=profile.pk,
        compartment_id=profile.compartment.compartment_id,
        user_account_id=profile.user_account_id,
        action=action,
        changed_keys=keys,
        source=source.kind,
        user_id=source.user_id,
        api_token_id=source.api_token_id,
        execution_id=source.execution_id,
    )


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


def compartment_get(*, datamart: Datamart, compartment_id: int | None) -> Compartment:
    """The named compartment, or the default one; an unknown id is an error, never created."""
    queryset = Compartment.objects.filter(datamart=datamart)
    if compartment_id is None:
        compartment = queryset.filter(is_default=True).first()
        if compartment is None:
            raise ProfileError(
                "NO_DEFAULT_COMPARTMENT", f"datamart {datamart.id} has no default compartment"
            )
        return compartment
    compartment = queryset.filter(compartment_id=compartment_id).first()
    if compartment is None:
        raise ProfileError(
            "UNKNOWN_COMPARTMENT",
            f"compartment {compartment_id} does not exist in datamart {datamart.id}",
            field="compartment_id",
        )
    return compartment


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


def user_point_find(*, datamart: Datamart, identifier: Identifier) -> UserPoint | None:
    match identifier:
        case AccountIdentifier():
            compartment = compartment_get(
                datamart=datamart, compartment_id=identifier.compartment_id
            )
            found = UserAccount.objects.filter(
                compartment=compartment, user_account_id=identifier.user_account_id
            )
        case EmailIdentifier():
            found = UserEmail.objects.filter(datamart=datamart, email_hash=identifier.email_hash)
        case UserAgentIdentifier():
            found = UserAgent.objects.filter(
                datamart=datamart, user_agent_id=identifier.user_agent_id
            )
    row = found.select_related("user_point").first()
    return row.user_point if row else None


def user_point_resolve(
    *, datamart: Datamart, identifier: Identifier, create: bool
) -> tuple[UserPoint | None, bool]:
    """The point the identifier names, created with it when unknown and `create` is set.

    Returns (point, created). Two writers creating the same identifier at once both end
    with the same point: the loser's insert fails on the unique constraint and it reads the
    winner's.
    """
    point = user_point_find(datamart=datamart, identifier=identifier)
    if point is not None or not create:
        return point, False
    try:
        with transaction.atomic():
            point = UserPoint.objects.create(datamart=datamart)
            identifier_attach(user_point=point, identifier=identifier)
        return point, True
    except IntegrityError:
        return user_point_find(datamart=datamart, identifier=identifier), False


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


# --- profiles -----------------------------------------------------------------------------


def profile_find(
    *,
    user_point: UserPoint,
    compartment: Compartment,
    user_account_id: str | None,
    lock: bool = False,
) -> UserProfile | None:
    queryset = UserProfile.objects.filter(
        user_point=user_point, compartment=compartment, user_account_id=user_account_id
    )
    if lock:
        queryset = queryset.select_for_update()
    return queryset.first()


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
    """Apply one strategy of SPEC §2 to one profile, under a row lock.

    The lock (PostgreSQL `SELECT … FOR UPDATE`; SQLite serialises writers) makes two
    concurrent writers of one profile see each other's result instead of losing it.
    """
    validate_custom_properties(properties)
    with transaction.atomic():
        profile = profile_find(
            user_point=user_point,
            compartment=compartment,
            user_account_id=user_account_id,
            lock=True,
        )
        if profile is None:
            created = apply_merge(None, properties, mode)
            if created is None:
                return ProfileWrite(WriteOutcome.UNCHANGED, None)
            try:
                with transaction.atomic():
                    now = timezone.now()
                    profile = UserProfile.objects.create(
                        datamart_id=user_point.datamart_id,
                        user_point=user_point,
                        compartment=compartment,
                        user_account_id=user_account_id,
                        properties=created,
                        creation_ts=now,
                        last_modified_ts=now,
                    )
                    profile_change_build(
                        profile=profile, action="created", keys=sorted(created), source=source
                    ).save()
                return ProfileWrite(WriteOutcome.CREATED, profile)
            except IntegrityError:
                # Created by a concurrent writer since we looked: merge into theirs.
                profile = profile_find(
                    user_point=user_point,
                    compartment=compartment,
                    user_account_id=user_account_id,
                    lock=True,
                )
                assert profile is not None
        if (
            expected_last_modified_ts is not None
            and profile.last_modified_ts != expected_last_modified_ts
        ):
            raise ProfileError(
                "STALE_PROFILE",
                "this profile was changed by someone else since you loaded it: reload it and apply your change again",
            )
        merged = apply_merge(profile.properties, properties, mode)
        if merged is None or json_equal(merged, profile.properties):
            return ProfileWrite(WriteOutcome.UNCHANGED, profile)
        validate_custom_properties(merged)
        keys = changed_keys(profile.properties, merged)
        profile.properties = merged
        profile.last_modified_ts = timezone.now()
        profile.save(update_fields=["properties", "last_modified_ts"])
        profile_change_build(profile=profile, action="updated", keys=keys, source=source).save()
        return ProfileWrite(WriteOutcome.UPDATED, profile)


def profile_delete(
    *,
    user_point: UserPoint,
    compartment: Compartment,
    user_account_id: str | None,
    source: ChangeSource = SYSTEM_SOURCE,
) -> ProfileWrite:
    with transaction.atomic():
        profile = profile_find(
            user_point=user_point,
            compartment=compartment,
            user_account_id=user_account_id,
            lock=True,
        )
        if profile is None:
            return ProfileWrite(WriteOutcome.NOT_FOUND, None)
        profile_change_build(
            profile=profile, action="deleted", keys=sorted(profile.properties), source=source
        ).save()
        profile.delete()
    return ProfileWrite(WriteOutcome.DELETED, None)


def profile_command_apply(
    *,
    datamart: Datamart,
    operation: str,
    identifier: Identifier,
    user_profile: dict | None,
    mode: MergeMode,
    source: ChangeSource = SYSTEM_SOURCE,
) -> ProfileWrite:
    """One import command (SPEC §2), line by line: UPSERT or DELETE through an identifier.

    The profile addressed is the one the `user_profile`'s `$` keys name, not the line's
    identifier (SPEC §2 rule 2); a DELETE without `user_profile` through an account
    addresses that account's profile.
    """
    if operation == "DELETE" and user_profile is None:
        if isinstance(identifier, AccountIdentifier):
            compartment_id, user_account_id = identifier.compartment_id, identifier.user_account_id
        else:
            compartment_id, user_account_id = None, None
        properties: dict = {}
    else:
        address, properties = split_profile_object(user_profile)
        compartment_id, user_account_id = address.compartment_id, address.user_account_id
    compartment = compartment_get(datamart=datamart, compartment_id=compartment_id)
    with transaction.atomic():
        point, _ = user_point_resolve(
            datamart=datamart, identifier=identifier, create=operation == "UPSERT"
        )
        if point is None:
            return ProfileWrite(WriteOutcome.NOT_FOUND, None)
        if operation == "DELETE":
            return profile_delete(
                user_point=point,
                compartment=compartment,
                user_account_id=user_account_id,
                source=source,
            )
        return profile_upsert(
            user_point=point,
            compartment=compartment,
            user_account_id=user_account_id,
            properties=properties,
            mode=mode,
            source=source,
        )


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
    with transaction.atomic():
        if isinstance(selector, uuid.UUID):
            point = UserPoint.objects.filter(datamart=datamart, pk=selector).first()
            if point is None:
                raise ProfileError("USER_POINT_NOT_FOUND", f"user point {selector} does not exist")
        else:
            point, _ = user_point_resolve(datamart=datamart, identifier=selector, create=True)
            assert point is not None
        write = profile_upsert(
            user_point=point,
            compartment=compartment,
            user_account_id=user_account_id,
            properties=properties,
            mode=mode,
            source=source,
        )
        if write.profile is None:
            raise ProfileError("PROFILE_NOT_FOUND", "this profile does not exist")
    return write


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
