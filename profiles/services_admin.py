"""Writes the back-office needs beside those of profiles/services.py: renames, memberships,
compartment list columns, a user point created with its first identifier.

Each is a small verb over the models or over profiles/services.py, so the admin writes
through services only, as the API and the importer do.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from profiles.identifiers import EmailIdentifier, Identifier
from profiles.models import (
    ApiToken,
    Compartment,
    Datamart,
    DatamartMembership,
    UserEmail,
    UserPoint,
)
from profiles.services import compartment_create, compartment_update, user_point_resolve

# --- datamarts and who sees them --------------------------------------------------------------


def datamart_rename(*, datamart: Datamart, name: str) -> Datamart:
    datamart.name = name
    datamart.save(update_fields=["name"])
    return datamart


def datamart_delete(*, datamart: Datamart) -> None:
    """Deletes everything of the datamart: points, identifiers, profiles, compartments, history,
    tokens, imports. The points go first: their accounts and profiles protect the compartments."""
    with transaction.atomic():
        UserPoint.objects.filter(datamart=datamart).delete()
        datamart.delete()


def datamart_membership_add(*, datamart: Datamart, user: Any) -> DatamartMembership:
    return DatamartMembership.objects.create(datamart=datamart, user=user)


def datamart_membership_update(
    *, membership: DatamartMembership, datamart: Datamart, user: Any
) -> DatamartMembership:
    membership.datamart, membership.user = datamart, user
    membership.save(update_fields=["datamart", "user"])
    return membership


def datamart_membership_remove(*, membership: DatamartMembership) -> None:
    membership.delete()


# --- compartments ---------------------------------------------------------------------------


def compartment_add(
    *,
    datamart: Datamart,
    compartment_id: int,
    name: str,
    is_default: bool,
    list_properties: list[str],
) -> Compartment:
    """`compartment_create` and the compartment's profile list columns, in one transaction."""
    with transaction.atomic():
        compartment = compartment_create(
            datamart=datamart, compartment_id=compartment_id, name=name, is_default=is_default
        )
        return compartment_list_properties_set(
            compartment=compartment, list_properties=list_properties
        )


def compartment_edit(
    *, compartment: Compartment, name: str, is_default: bool, list_properties: list[str]
) -> Compartment:
    """`compartment_update` and the list columns. The stored row decides (read again, locked),
    so `compartment` may be an instance a form has already set the new values on."""
    with transaction.atomic():
        stored = Compartment.objects.select_for_update().get(pk=compartment.pk)
        stored = compartment_update(compartment=stored, name=name, is_default=is_default)
        return compartment_list_properties_set(compartment=stored, list_properties=list_properties)


def compartment_list_properties_set(
    *, compartment: Compartment, list_properties: list[str]
) -> Compartment:
    """The property paths the back-office profile list shows as columns for this compartment."""
    compartment.list_properties = list_properties
    compartment.save(update_fields=["list_properties"])
    return compartment


# --- user points ----------------------------------------------------------------------------


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


# --- API tokens -----------------------------------------------------------------------------


def api_token_rename(*, token: ApiToken, name: str) -> ApiToken:
    token.name = name
    token.save(update_fields=["name"])
    return token
