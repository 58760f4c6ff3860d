"""Objects for tests, built through the services and the write engine as clients build them."""

from __future__ import annotations

from profiles.commands import Operation, ProfileCommand, command_address
from profiles.history import SYSTEM_SOURCE, ChangeSource
from profiles.identifiers import AccountIdentifier, Identifier
from profiles.merge import DEFAULT_MERGE_MODE, MergeMode, Strategy
from profiles.models import Datamart, UserProfile
from profiles.selectors import compartment_get, profile_find, user_point_get
from profiles.services import ProfileWrite, profile_command_apply

FORCE_REPLACE = MergeMode(Strategy.FORCE_REPLACE)


def command_write(
    datamart: Datamart,
    *,
    identifier: Identifier,
    user_profile: dict | None = None,
    operation: str = "UPSERT",
    mode: MergeMode = DEFAULT_MERGE_MODE,
    source: ChangeSource = SYSTEM_SOURCE,
) -> ProfileWrite:
    """One import command applied as a batch of one; returns its outcome and the profile."""
    command = ProfileCommand(
        line=1, operation=Operation(operation), identifier=identifier, user_profile=user_profile
    )
    outcome = profile_command_apply(datamart=datamart, command=command, mode=mode, source=source)
    address = command_address(command)
    point = user_point_get(datamart=datamart, selector=identifier)
    profile = None
    if point is not None:
        profile = profile_find(
            user_point=point,
            compartment=compartment_get(datamart=datamart, compartment_id=address.compartment_id),
            user_account_id=address.user_account_id,
        )
    return ProfileWrite(outcome, profile)


def profile_make(
    datamart: Datamart,
    account: str | None,
    properties: dict,
    *,
    compartment_id: int | None = None,
    identifier: Identifier | None = None,
) -> UserProfile:
    """A profile of `account` (None: anonymous) with exactly `properties` (FORCE_REPLACE)."""
    user_profile = dict(properties)
    if compartment_id is not None:
        user_profile["$compartment_id"] = compartment_id
    user_profile["$user_account_id"] = account
    written = command_write(
        datamart,
        identifier=identifier or AccountIdentifier(account or "anon", compartment_id),
        user_profile=user_profile,
        mode=FORCE_REPLACE,
    )
    assert written.profile is not None
    return UserProfile.objects.select_related("compartment").get(pk=written.profile.pk)
