"""User points are created with an identifier and given more; datamarts belong to superusers."""

from __future__ import annotations

import re

from profiles.models import Compartment, Datamart, UserAccount, UserEmail, UserPoint

POINTS = "/admin/profiles/userpoint/"


def inline_management_data(client, url: str) -> dict[str, str]:
    """The inline formsets' management fields, as the browser sends them back."""
    page = client.get(url).content.decode()
    return dict(
        re.findall(
            r'name="([\w-]+-(?:TOTAL|INITIAL|MIN_NUM|MAX_NUM)_FORMS)"[^>]*value="(\d*)"', page
        )
    )


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
