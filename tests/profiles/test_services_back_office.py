"""The back-office's own writes: renames, memberships, compartment columns, new points."""

from __future__ import annotations

import pytest

from profiles.errors import ProfileError
from profiles.identifiers import AccountIdentifier, EmailIdentifier
from profiles.models import Compartment, Datamart, DatamartMembership, UserEmail, UserPoint
from profiles.services import (
    api_token_create,
    api_token_rename,
    compartment_add,
    compartment_edit,
    datamart_delete,
    datamart_membership_add,
    datamart_membership_remove,
    datamart_membership_update,
    datamart_rename,
    user_point_create,
)
from tests.factories import profile_make


def test_a_datamart_is_renamed(datamart):
    datamart_rename(datamart=datamart, name="Renamed")
    assert Datamart.objects.get(pk=datamart.pk).name == "Renamed"


def test_a_datamart_is_deleted_with_its_points_profiles_and_compartments(
    datamart, other_datamart, crm_compartment
):
    profile_make(datamart, "a-1", {"x": 1}, compartment_id=1606)
    datamart_delete(datamart=datamart)
    assert list(Datamart.objects.all()) == [other_datamart]
    assert not UserPoint.objects.exists()
    assert list(Compartment.objects.values_list("datamart_id", flat=True)) == [other_datamart.pk]


def test_memberships_are_added_moved_and_removed(datamart, other_datamart, django_user_model):
    user = django_user_model.objects.create_user("staff", is_staff=True)
    membership = datamart_membership_add(datamart=datamart, user=user)
    datamart_membership_update(membership=membership, datamart=other_datamart, user=user)
    assert DatamartMembership.objects.get().datamart == other_datamart
    datamart_membership_remove(membership=membership)
    assert not DatamartMembership.objects.exists()


def test_a_compartment_is_added_with_its_list_columns(datamart):
    added = compartment_add(
        datamart=datamart, compartment_id=7, name="Seven", is_default=False, list_properties=["a"]
    )
    stored = Compartment.objects.get(pk=added.pk)
    assert (stored.list_properties, stored.is_default) == (["a"], False)


def test_adding_an_existing_compartment_id_writes_nothing(datamart):
    with pytest.raises(ProfileError, match="already exists"):
        compartment_add(
            datamart=datamart, compartment_id=1, name="Again", is_default=True, list_properties=[]
        )
    assert list(datamart.compartments.values_list("name", flat=True)) == ["Demo default"]


def test_editing_reads_the_stored_compartment_not_the_callers_copy(datamart):
    default = datamart.compartments.get()
    edited_copy = Compartment.objects.get(pk=default.pk)
    edited_copy.is_default = False  # as a form would have set it: the stored row decides
    with pytest.raises(ProfileError) as refused:
        compartment_edit(compartment=edited_copy, name="x", is_default=False, list_properties=[])
    assert refused.value.code == "DEFAULT_COMPARTMENT_REQUIRED"
    saved = compartment_edit(
        compartment=edited_copy, name="Web", is_default=True, list_properties=["b"]
    )
    assert (saved.name, saved.is_default, saved.list_properties) == ("Web", True, ["b"])


def test_making_a_compartment_the_default_by_editing_it(datamart, crm_compartment):
    compartment_edit(compartment=crm_compartment, name="CRM", is_default=True, list_properties=[])
    assert datamart.compartments.get(is_default=True) == crm_compartment


def test_a_point_is_created_with_its_email_and_the_clear_address(datamart):
    point = user_point_create(
        datamart=datamart, identifier=EmailIdentifier("h-1"), email="ann@example.com"
    )
    assert UserEmail.objects.get(user_point=point).email == "ann@example.com"
    other = user_point_create(
        datamart=datamart, identifier=AccountIdentifier("acc", None), email="ignored@example.com"
    )
    assert other != point and not UserEmail.objects.filter(user_point=other).exists()


def test_a_token_is_renamed(datamart):
    token, _ = api_token_create(datamart=datamart, name="old")
    assert api_token_rename(token=token, name="new").name == "new"
