"""Compartments: exactly one default per datamart (SPEC §1), never deleted while in use."""

from __future__ import annotations

from django.db import transaction

from profiles.errors import ProfileError
from profiles.models import Compartment, Datamart


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
