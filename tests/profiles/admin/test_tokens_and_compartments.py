"""API tokens (the raw value shown once, the digest never) and compartments (the default)."""

from __future__ import annotations

import pytest

from profiles.models import ApiToken, Compartment
from profiles.services import api_token_create, api_token_digest

TOKENS = "/admin/profiles/apitoken/"
COMPARTMENTS = "/admin/profiles/compartment/"


def test_creating_a_token_shows_the_raw_value_once_and_keeps_only_its_digest(
    datamart, alice, login
):
    client = login(alice)
    response = client.post(TOKENS + "add/", {"datamart": datamart.pk, "name": "crm"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw_token = response.context["raw_token"]
    assert raw_token in response.content.decode()
    token = ApiToken.objects.get(name="crm")
    assert token.digest == api_token_digest(raw_token)
    for url in (TOKENS, f"{TOKENS}{token.pk}/change/"):
        page = client.get(url).content.decode()
        assert raw_token not in page
        assert token.digest not in page
        assert token.prefix in page


def test_revoking_tokens_from_the_list(datamart, alice, login):
    token, _ = api_token_create(datamart=datamart, name="old")
    response = login(alice).post(
        TOKENS, {"action": "revoke_tokens", "_selected_action": [token.pk]}, follow=True
    )
    assert "1 token(s) revoked." in response.content.decode()
    token.refresh_from_db()
    assert not token.is_active


def test_tokens_cannot_be_deleted_so_history_keeps_their_name(datamart, alice, login):
    token, _ = api_token_create(datamart=datamart, name="kept")
    assert login(alice).get(f"{TOKENS}{token.pk}/delete/").status_code == 403


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
    [('"firstname"', "JSON list"), ('["a..b"]', "not a property path"), ('["ok", 3]', "JSON list")],
)
def test_profile_list_columns_of_a_compartment_are_checked(
    crm_compartment, alice, login, columns, error
):
    response = login(alice).post(
        f"{COMPARTMENTS}{crm_compartment.pk}/change/",
        {"name": "CRM", "list_properties": columns},
    )
    assert error in str(response.context["adminform"].form.errors["list_properties"])


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
