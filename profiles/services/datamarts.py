"""Datamarts, the tenants, and the staff who may see them."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from profiles.models import Compartment, Datamart, DatamartMembership, UserPoint
from profiles.services.compartments import compartment_make_default


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
