"""Datamarts and their staff members belong to superusers; their writes go through services."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry

from profiles.models import Compartment, Datamart, DatamartMembership, UserProfile
from tests.profiles.admin.conftest import inline_management_data

DATAMARTS = "/admin/profiles/datamart/"
MEMBERSHIPS = "/admin/profiles/datamartmembership/"


def test_only_superusers_add_datamarts_and_manage_memberships(alice, login, django_user_model):
    staff = login(alice)
    assert staff.get("/admin/profiles/datamart/add/").status_code == 403
    assert staff.get("/admin/profiles/datamartmembership/").status_code == 403
    root = login(django_user_model.objects.create_superuser("root", "r@example.com", "pw"))
    response = root.post(
        "/admin/profiles/datamart/add/", {"id": 7, "name": "Seven", "default_compartment_id": 70}
    )
    assert response.status_code == 302
    assert Datamart.objects.get(id=7).name == "Seven"
    assert Compartment.objects.get(datamart_id=7).is_default


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser("root", "r@example.com", "pw")


def test_renaming_a_datamart_and_adding_a_staff_member_on_its_page(
    datamart, crm_compartment, make_staff, root, login
):
    carol = make_staff("carol", [])
    client = login(root)
    url = f"{DATAMARTS}{datamart.pk}/change/"
    response = client.post(
        url,
        {
            **inline_management_data(client, url),
            "name": "Demo renamed",
            "memberships-0-user": carol.pk,
        },
    )
    assert response.status_code == 302
    assert Datamart.objects.get(pk=datamart.pk).name == "Demo renamed"
    assert DatamartMembership.objects.get(user=carol).datamart == datamart
    # The compartments shown read-only on the page are left as they were.
    assert list(
        datamart.compartments.order_by("compartment_id").values_list("name", flat=True)
    ) == [
        "Demo default",
        "CRM",
    ]
    assert LogEntry.objects.get(object_id=str(datamart.pk)).change_message


def test_removing_a_staff_member_on_the_datamarts_page(datamart, alice, root, login):
    membership = DatamartMembership.objects.get(user=alice)
    client = login(root)
    url = f"{DATAMARTS}{datamart.pk}/change/"
    response = client.post(
        url,
        {
            **inline_management_data(client, url),
            "name": datamart.name,
            "memberships-0-id": membership.pk,
            "memberships-0-user": alice.pk,
            "memberships-0-DELETE": "on",
        },
    )
    assert response.status_code == 302
    assert not DatamartMembership.objects.filter(user=alice).exists()
    assert login(alice).get("/admin/profiles/userprofile/").context["cl"].result_count == 0


def test_an_invalid_staff_member_row_saves_nothing_of_the_page(datamart, alice, root, login):
    client = login(root)
    url = f"{DATAMARTS}{datamart.pk}/change/"
    response = client.post(
        url,
        {**inline_management_data(client, url), "name": "Not saved", "memberships-0-user": 999999},
    )
    assert response.status_code == 200
    assert Datamart.objects.get(pk=datamart.pk).name == "Demo"
    assert list(DatamartMembership.objects.values_list("user", flat=True)) == [alice.pk]


def test_memberships_are_added_changed_and_removed_under_their_own_list(
    datamart, other_datamart, make_staff, root, login
):
    dora = make_staff("dora", [])
    client = login(root)
    assert (
        client.post(MEMBERSHIPS + "add/", {"user": dora.pk, "datamart": datamart.pk}).status_code
        == 302
    )
    membership = DatamartMembership.objects.get(user=dora)
    assert (
        client.post(
            f"{MEMBERSHIPS}{membership.pk}/change/",
            {"user": dora.pk, "datamart": other_datamart.pk},
        ).status_code
        == 302
    )
    assert DatamartMembership.objects.get(pk=membership.pk).datamart == other_datamart
    assert client.post(f"{MEMBERSHIPS}{membership.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not DatamartMembership.objects.filter(user=dora).exists()


def test_a_superuser_deletes_a_datamart_with_everything_in_it(
    datamart, other_datamart, make_profile, root, login
):
    make_profile(datamart, "gone", {"a": 1})
    kept = make_profile(other_datamart, "kept", {"a": 1})
    response = login(root).post(f"{DATAMARTS}{datamart.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert list(Datamart.objects.values_list("id", flat=True)) == [other_datamart.pk]
    assert list(UserProfile.objects.all()) == [kept]
    assert not Compartment.objects.filter(datamart_id=datamart.pk).exists()
