"""User points and their identifiers (SPEC §1, §2 rule 1)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from profiles.bulk import BulkWriter
from profiles.compartments import DatamartCompartments
from profiles.identifiers import AccountIdentifier, EmailIdentifier, Identifier, UserAgentIdentifier
from profiles.models import Datamart, UserAccount, UserAgent, UserEmail, UserPoint
from profiles.points import identifier_key, points_create, points_find
from profiles.selectors import compartment_get


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
