"""User points and their identifiers (SPEC §1, §2 rule 1), and erasing a person (SPEC §7)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from uuid6 import uuid7

from profiles.bulk import BulkWriter
from profiles.compartments import DatamartCompartments
from profiles.errors import ProfileError
from profiles.history import ChangeSource
from profiles.identifiers import AccountIdentifier, EmailIdentifier, Identifier, UserAgentIdentifier
from profiles.models import (
    Datamart,
    ProfileChange,
    UserAccount,
    UserAgent,
    UserEmail,
    UserPoint,
    UserProfile,
)
from profiles.points import identifier_key, points_create, points_find
from profiles.selectors import compartment_get
from profiles.signals import user_point_erased


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


def user_point_create(*, datamart: Datamart, identifier: Identifier, email: str = "") -> UserPoint:
    """A user point with its first identifier (`user_point_resolve`), and the clear email of
    an email identifier when given."""
    with transaction.atomic():
        point, _ = user_point_resolve(datamart=datamart, identifier=identifier, create=True)
        assert point is not None
        if email and isinstance(identifier, EmailIdentifier):
            UserEmail.objects.filter(user_point=point, email_hash=identifier.email_hash).update(
                email=email
            )
    return point


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


@dataclass(frozen=True)
class Erasure:
    """What `user_point_erase` removed. `erasure_id` is the id the point's history rows carry
    from now on, with the `erased` record: it is not the point's id, so nothing that knew the
    point (a client, an export) can find them again."""

    user_point_id: uuid.UUID
    erasure_id: uuid.UUID
    identifiers: int
    profiles: int
    history_rows: int
    line_errors: int


def user_point_erase(*, datamart: Datamart, user_point: UserPoint, source: ChangeSource) -> Erasure:
    """Erase a person (right to be forgotten, docs/rules.md#erasure), in one transaction.

    The point, its identifiers and its profiles are deleted. Its history rows stay, stripped of
    everything personal (account id, changed keys) and moved to a new id, with one `erased`
    record saying when and by whom. `profiles.signals.user_point_erased` lets the apps built on
    the domain scrub what they store (the imports app: line errors naming the identifiers).
    A point already erased, or of another datamart, is `USER_POINT_NOT_FOUND`.
    """
    with transaction.atomic():
        # The lock makes a second erase running at once wait, then find nothing.
        point = (
            UserPoint.objects.select_for_update()
            .filter(datamart=datamart, pk=user_point.pk)
            .first()
        )
        if point is None:
            raise ProfileError("USER_POINT_NOT_FOUND", "user point not found")
        point_id = point.pk  # `delete()` clears it
        identifiers = _point_identifiers(point)
        # Locked in id order, as the engine locks them: a write to them in flight commits
        # (its history row included) before they go, and the two cannot deadlock.
        profile_ids = list(
            UserProfile.objects.select_for_update()
            .filter(user_point=point)
            .order_by("id")
            .values_list("id", flat=True)
        )
        UserProfile.objects.filter(pk__in=profile_ids).delete()
        for model in (UserAccount, UserEmail, UserAgent):
            model.objects.filter(user_point=point).delete()
        erasure_id = uuid7()
        # Moved off the point before it goes, so its deletion does not cascade to them.
        history_rows = ProfileChange.objects.filter(user_point_id=point.pk).update(
            user_point_id=erasure_id, user_account_id=None, changed_keys=[], previous_values={}
        )
        point.delete()
        ProfileChange.objects.create(
            datamart=datamart,
            user_point_id=erasure_id,
            profile_id=0,
            compartment_id=0,
            user_account_id=None,
            action=ProfileChange.Action.ERASED,
            changed_keys=[],
            source=source.kind,
            user_id=source.user_id,
            api_token_id=source.api_token_id,
            execution_id=source.execution_id,
            ts=timezone.now(),
        )
        answers = user_point_erased.send(
            sender=UserPoint,
            datamart_id=datamart.pk,
            user_point_id=point_id,
            identifiers=tuple(identifiers),
        )
    return Erasure(
        user_point_id=point_id,
        erasure_id=erasure_id,
        identifiers=len(identifiers),
        profiles=len(profile_ids),
        history_rows=history_rows,
        line_errors=sum(answer for _, answer in answers if isinstance(answer, int)),
    )


def _point_identifiers(point: UserPoint) -> list[Identifier]:
    identifiers: list[Identifier] = [
        AccountIdentifier(account_id, compartment_id)
        for account_id, compartment_id in UserAccount.objects.filter(user_point=point).values_list(
            "user_account_id", "compartment__compartment_id"
        )
    ]
    identifiers += [
        EmailIdentifier(email_hash)
        for email_hash in UserEmail.objects.filter(user_point=point).values_list(
            "email_hash", flat=True
        )
    ]
    identifiers += [
        UserAgentIdentifier(agent_id)
        for agent_id in UserAgent.objects.filter(user_point=point).values_list(
            "user_agent_id", flat=True
        )
    ]
    return identifiers
