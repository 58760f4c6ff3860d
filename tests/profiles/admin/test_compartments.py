"""Compartments: one default per datamart, moved and never unset; the profile list columns."""

from __future__ import annotations

import pytest

from profiles.models import Compartment

COMPARTMENTS = "/admin/profiles/compartment/"


def test_making_a_compartment_the_default_moves_the_default(
    datamart, crm_compartment, alice, login
):
    response = login(alice).post(
        f"{COMPARTMENTS}{crm_compartment.pk}/change/",
        {"name": "CRM", "is_default": "on", "list_properties": "[]"},
    )
    assert response.status_code == 302
    assert list(
        Compartment.objects.filter(datamart=datamart, is_default=True).values_list(
            "compartment_id", flat=True
        )
    ) == [1606]


def test_the_default_compartment_cannot_be_unset_nor_deleted(datamart, alice, login):
    default = datamart.compartments.get()
    client = login(alice)
    page = client.get(f"{COMPARTMENTS}{default.pk}/change/")
    assert "is_default" not in page.context["adminform"].form.fields
    confirm = client.get(f"{COMPARTMENTS}{default.pk}/delete/").content.decode()
    assert "make another one the default first" in confirm
    client.post(f"{COMPARTMENTS}{default.pk}/delete/", {"post": "yes"})
    assert Compartment.objects.filter(pk=default.pk).exists()


@pytest.mark.parametrize(
    ("columns", "error"),
    [
        ('"firstname"', "JSON list"),
        ('["a..b"]', "not a property path"),
        ('["ok", 3]', "JSON list"),
        ('["a\\u0000b"]', "a property path is"),
        ('["$compartment_id"]', "a property path is"),
        ('["' + ".".join(["a"] * 33) + '"]', "a property path is"),
    ],
)
def test_profile_list_columns_of_a_compartment_are_checked(
    crm_compartment, alice, login, columns, error
):
    response = login(alice).post(
        f"{COMPARTMENTS}{crm_compartment.pk}/change/",
        {"name": "CRM", "list_properties": columns},
    )
    assert error in str(response.context["adminform"].form.errors["list_properties"])


def test_adding_a_compartment_as_the_default_moves_the_default(datamart, alice, login):
    """As the change form does (the add form said "Constraint one_default_compartment is
    violated"), and the box says what it does."""
    client = login(alice)
    assert "in place of the current one" in client.get(COMPARTMENTS + "add/").content.decode()
    response = client.post(
        COMPARTMENTS + "add/",
        {
            "datamart": datamart.pk,
            "compartment_id": 1800,
            "name": "Web",
            "is_default": "on",
            "list_properties": "[]",
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert list(
        Compartment.objects.filter(datamart=datamart, is_default=True).values_list(
            "compartment_id", flat=True
        )
    ) == [1800]


def test_adding_a_compartment_through_the_admin(datamart, alice, login):
    response = login(alice).post(
        COMPARTMENTS + "add/",
        {
            "datamart": datamart.pk,
            "compartment_id": 1700,
            "name": "Loyalty",
            "list_properties": "[]",
        },
    )
    assert response.status_code == 302
    added = Compartment.objects.get(compartment_id=1700)
    assert (added.datamart, added.is_default) == (datamart, False)


def test_list_columns_are_saved_when_adding_and_changing_a_compartment(datamart, alice, login):
    client = login(alice)
    response = client.post(
        COMPARTMENTS + "add/",
        {
            "datamart": datamart.pk,
            "compartment_id": 1700,
            "name": "Loyalty",
            "list_properties": '["tier"]',
        },
    )
    assert response.status_code == 302
    added = Compartment.objects.get(compartment_id=1700)
    assert response["Location"] == COMPARTMENTS
    assert added.list_properties == ["tier"]
    client.post(
        f"{COMPARTMENTS}{added.pk}/change/",
        {"name": "Loyalty club", "list_properties": '["tier", "points"]'},
    )
    added.refresh_from_db()
    assert (added.name, added.list_properties, added.is_default) == (
        "Loyalty club",
        ["tier", "points"],
        False,
    )


def test_renaming_the_default_compartment_keeps_it_the_default(datamart, alice, login):
    default = datamart.compartments.get()
    response = login(alice).post(
        f"{COMPARTMENTS}{default.pk}/change/", {"name": "Web", "list_properties": "[]"}
    )
    assert response.status_code == 302
    default.refresh_from_db()
    assert (default.name, default.is_default) == ("Web", True)


def test_an_existing_compartment_id_is_refused_not_a_crash(datamart, crm_compartment, alice, login):
    response = login(alice).post(
        COMPARTMENTS + "add/",
        {"datamart": datamart.pk, "compartment_id": 1606, "name": "Again", "list_properties": "[]"},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert Compartment.objects.filter(compartment_id=1606).count() == 1


def test_profile_list_columns_are_typed_one_per_line_or_with_commas(crm_compartment, alice, login):
    client = login(alice)
    page = client.get(f"{COMPARTMENTS}{crm_compartment.pk}/change/").content.decode()
    assert '<textarea name="list_properties"' in page
    response = client.post(
        f"{COMPARTMENTS}{crm_compartment.pk}/change/",
        {"name": "CRM", "list_properties": "firstname\r\nnewsletter.subscribed, age\r\n\r\n"},
    )
    assert response.status_code == 302
    crm_compartment.refresh_from_db()
    assert crm_compartment.list_properties == ["firstname", "newsletter.subscribed", "age"]
    page = client.get(f"{COMPARTMENTS}{crm_compartment.pk}/change/").content.decode()
    assert "firstname\nnewsletter.subscribed\nage</textarea>" in page
    too_many = "\n".join(f"p{index}" for index in range(9))
    response = client.post(
        f"{COMPARTMENTS}{crm_compartment.pk}/change/", {"name": "CRM", "list_properties": too_many}
    )
    assert "At most 8 columns" in str(response.context["adminform"].form.errors)
    response = client.post(
        f"{COMPARTMENTS}{crm_compartment.pk}/change/",
        {"name": "CRM", "list_properties": "ok\na..b"},
    )
    assert response.context["adminform"].form.errors["list_properties"] == [
        "'a..b' is not a property path: write keys joined by dots, e.g. newsletter.subscribed"
    ]
