"""User points are created with an identifier and given more."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry

from profiles.models import UserAccount, UserEmail, UserPoint
from tests.profiles.admin.conftest import inline_management_data

POINTS = "/admin/profiles/userpoint/"


def test_adding_a_user_point_creates_it_with_its_first_identifier(datamart, alice, login):
    client = login(alice)
    response = client.post(
        POINTS + "add/",
        {
            **inline_management_data(client, POINTS + "add/"),
            "datamart": datamart.pk,
            "identifier_kind": "email",
            "identifier_value": "e-hash-1",
            "identifier_email": "ann@example.com",
        },
    )
    assert response.status_code == 302
    email = UserEmail.objects.get(email_hash="e-hash-1")
    assert (email.email, email.user_point.datamart) == ("ann@example.com", datamart)


def test_attaching_an_account_identifier_on_the_points_page(
    datamart, crm_compartment, make_profile, alice, login
):
    point = make_profile(datamart, "a-1", {}).user_point
    client = login(alice)
    response = client.post(
        f"{POINTS}{point.pk}/change/",
        {
            **inline_management_data(client, f"{POINTS}{point.pk}/change/"),
            "identifier_kind": "account",
            "identifier_value": "crm-77",
            "identifier_compartment": crm_compartment.pk,
        },
    )
    assert response.status_code == 302
    assert UserAccount.objects.get(user_account_id="crm-77").user_point == point


def test_an_identifier_of_another_point_is_refused_with_a_link_to_it(
    datamart, make_profile, alice, login
):
    owner = make_profile(datamart, "taken", {}).user_point
    response = login(alice).post(
        POINTS + "add/",
        {"datamart": datamart.pk, "identifier_kind": "account", "identifier_value": "taken"},
    )
    assert response.status_code == 200
    error = str(response.context["adminform"].form.errors["identifier_value"])
    assert f"/admin/profiles/userpoint/{owner.pk}/change/" in error
    assert UserPoint.objects.count() == 1


def test_a_point_being_added_shows_no_inline(datamart, alice, login):
    page = login(alice).get(POINTS + "add/")
    assert page.context["inline_admin_formsets"] == []


def test_the_new_point_is_the_one_logged_and_shown(datamart, alice, login):
    response = login(alice).post(
        POINTS + "add/",
        {"datamart": datamart.pk, "identifier_kind": "agent", "identifier_value": "vec:9"},
        follow=True,
    )
    point = UserPoint.objects.get()
    assert LogEntry.objects.get().object_id == str(point.pk)
    assert f"/admin/profiles/userpoint/{point.pk}/change/" in response.content.decode()


def test_attaching_an_email_identifier_keeps_its_clear_email(datamart, make_profile, alice, login):
    point = make_profile(datamart, "a-2", {}).user_point
    client = login(alice)
    url = f"{POINTS}{point.pk}/change/"
    client.post(
        url,
        {
            **inline_management_data(client, url),
            "identifier_kind": "email",
            "identifier_value": "h-77",
            "identifier_email": "bea@example.com",
        },
    )
    email = UserEmail.objects.get(email_hash="h-77")
    assert (email.user_point, email.email) == (point, "bea@example.com")


@pytest.mark.parametrize("datamart_value", ["999", "abc", "", "2"])
def test_a_datamart_that_is_not_a_choice_is_a_field_error_of_the_add_form(
    datamart, other_datamart, alice, login, datamart_value
):
    response = login(alice).post(
        POINTS + "add/",
        {"datamart": datamart_value, "identifier_kind": "email", "identifier_value": "h-1"},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["datamart"]
    assert not UserPoint.objects.exists()


def test_a_point_is_not_added_without_its_first_identifier(datamart, alice, login):
    response = login(alice).post(POINTS + "add/", {"datamart": datamart.pk})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["identifier_kind"] and errors["identifier_value"]
    assert not UserPoint.objects.exists()
