"""API tokens: the raw value shown once, the digest never; revoked, never deleted."""

from __future__ import annotations

from profiles.models import ApiToken
from profiles.services import api_token_create, api_token_digest

TOKENS = "/admin/profiles/apitoken/"


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
    assert "1 token revoked." in response.content.decode()
    token.refresh_from_db()
    assert not token.is_active


def test_tokens_cannot_be_deleted_so_history_keeps_their_name(datamart, alice, login):
    token, _ = api_token_create(datamart=datamart, name="kept")
    assert login(alice).get(f"{TOKENS}{token.pk}/delete/").status_code == 403


def test_renaming_a_token_keeps_its_digest(datamart, alice, login):
    token, _ = api_token_create(datamart=datamart, name="old name")
    response = login(alice).post(f"{TOKENS}{token.pk}/change/", {"name": "new name"})
    assert response.status_code == 302
    stored = ApiToken.objects.get(pk=token.pk)
    assert (stored.name, stored.digest) == ("new name", token.digest)
