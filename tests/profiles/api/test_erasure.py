"""Erasing a person (SPEC §7) through every selector, and one person's history, cursor paged."""

from __future__ import annotations

import json
import uuid

import pytest

from profiles.identifiers import AccountIdentifier, EmailIdentifier, UserAgentIdentifier
from profiles.models import ProfileChange, UserAccount, UserAgent, UserEmail, UserPoint, UserProfile
from profiles.services import identifier_attach, user_point_resolve
from tests.profiles.api.client import BASE, data, error

ACCOUNT = "acc,1 secret"
EMAIL_HASH = "h-secret-1"
AGENT = "vec:secret-agent"
PERSONAL = (ACCOUNT, EMAIL_HASH, AGENT, "d-secret@example.com", "David-secret", "secret_key")


@pytest.fixture
def point(api, datamart, crm_compartment):
    """A point with an account, an email (and its clear address), a user agent and two profiles
    written through the API, so its history names the token."""
    point, _ = user_point_resolve(
        datamart=datamart, identifier=AccountIdentifier(ACCOUNT, 1606), create=True
    )
    identifier_attach(
        user_point=point, identifier=EmailIdentifier(EMAIL_HASH), email="d-secret@example.com"
    )
    identifier_attach(user_point=point, identifier=UserAgentIdentifier(AGENT))
    own = f"{BASE}/user_points/{point.pk}/user_profiles/compartment_id=1606/user_account_id=acc,1%20secret"
    assert api.put(own, {"firstname": "David-secret", "secret_key": 1}).status_code == 201
    assert api.patch(own, {"firstname": "Dave"}).status_code == 200
    anonymous = f"{BASE}/user_points/{point.pk}/user_profiles/compartment_id=1"
    assert api.put(anonymous, {"city": "Paris"}).status_code == 201
    return point


def selectors(point) -> list[str]:
    return [
        str(point.pk),
        f"user_point_id={point.pk}",
        "compartment_id=1606,user_account_id=acc,1%20secret",
        f"email_hash={EMAIL_HASH}",
        f"user_agent_id={AGENT}",
    ]


def history_text(datamart) -> str:
    rows = ProfileChange.objects.filter(datamart=datamart).values()
    return json.dumps([{**row, "ts": str(row["ts"])} for row in rows], default=str)


@pytest.mark.parametrize("kind", range(5))
def test_erase_through_every_selector_deletes_the_point_and_everything_personal(
    api, point, datamart, kind
):
    response = api.post(f"{BASE}/user_points/{selectors(point)[kind]}/erase")
    assert response.status_code == 200
    erased = data(response)
    assert erased["user_point_id"] == str(point.pk)
    assert (erased["identifiers"], erased["profiles"], erased["history_rows"]) == (3, 2, 3)
    assert not UserPoint.objects.filter(pk=point.pk).exists()
    for model in (UserAccount, UserEmail, UserAgent, UserProfile):
        assert not model.objects.filter(datamart=datamart).exists()
    text = history_text(datamart)
    assert str(point.pk) not in text
    assert not [value for value in PERSONAL if value in text]
    for selector in selectors(point):
        error(api.get(f"{BASE}/user_points/{selector}"), 404)


def test_the_history_keeps_when_and_by_whom_each_change_and_the_erasure_were_made(
    api, point, datamart, token
):
    erased = data(api.post(f"{BASE}/user_points/{point.pk}/erase"))
    changes = list(ProfileChange.objects.filter(datamart=datamart).order_by("id"))
    assert {str(change.user_point_id) for change in changes} == {erased["erasure_id"]}
    assert [change.action for change in changes] == ["created", "updated", "created", "erased"]
    assert all(change.api_token_id == token[0].pk for change in changes)
    assert all(change.source == "api" for change in changes)
    assert all(change.user_account_id is None and change.changed_keys == [] for change in changes)
    record = changes[-1]
    assert (record.profile_id, record.compartment_id) == (0, 0)


def test_a_second_erase_answers_404(api, point):
    assert api.post(f"{BASE}/user_points/{point.pk}/erase").status_code == 200
    for selector in selectors(point):
        error(api.post(f"{BASE}/user_points/{selector}/erase"), 404)
        error(api.get(f"{BASE}/user_points/{selector}/history"), 404)


def test_unknown_and_other_datamarts_points_answer_404(api, other_api, point, datamart):
    error(api.post(f"{BASE}/user_points/{uuid.uuid4()}/erase"), 404)
    error(api.post(f"{BASE}/user_points/email_hash=nobody/erase"), 404)
    error(api.post(f"{BASE}/user_points/compartment_id=999,user_account_id=x/erase"), 404)
    for selector in selectors(point):
        error(other_api.post(f"{BASE}/user_points/{selector}/erase"), 404)
        error(other_api.get(f"{BASE}/user_points/{selector}/history"), 404)
        error(other_api.post(f"/api/v1/datamarts/2/user_points/{selector}/erase"), 404)
        error(other_api.get(f"/api/v1/datamarts/2/user_points/{selector}/history"), 404)
    assert UserPoint.objects.filter(pk=point.pk).exists()
    error(api.post(f"{BASE}/user_points/not-a-selector/erase"), 400)


def test_erasing_one_person_leaves_the_others_alone(api, point, datamart):
    other, _ = user_point_resolve(
        datamart=datamart, identifier=EmailIdentifier("someone-else"), create=True
    )
    api.put(f"{BASE}/user_points/{other.pk}/user_profiles/compartment_id=1", {"kept": True})
    api.post(f"{BASE}/user_points/{point.pk}/erase")
    history = data(api.get(f"{BASE}/user_points/{other.pk}/history"))
    assert [(change["action"], change["changed_keys"]) for change in history] == [
        ("created", ["kept"])
    ]
    assert data(api.get(f"{BASE}/user_points/email_hash=someone-else"))["profiles"]


def test_the_history_lists_the_points_changes_newest_first(api, point, token):
    history = data(api.get(f"{BASE}/user_points/email_hash={EMAIL_HASH}/history"))
    assert [(c["action"], c["compartment_id"], c["changed_keys"]) for c in history] == [
        ("created", 1, ["city"]),
        ("updated", 1606, ["firstname"]),
        ("created", 1606, ["firstname", "secret_key"]),
    ]
    newest = history[0]
    assert newest["source"] == "api" and newest["api_token"] == token[0].name
    assert newest["user"] is None and newest["execution_id"] is None
    assert newest["user_account_id"] is None and history[1]["user_account_id"] == ACCOUNT
    assert history[0]["ts"] >= history[1]["ts"] >= history[2]["ts"] > 0
    profile = UserProfile.objects.get(compartment__compartment_id=1)
    assert newest["profile_id"] == profile.pk


def test_the_history_is_cursor_paged(api, point):
    for number in range(5):
        api.patch(f"{BASE}/user_points/{point.pk}/user_profiles/compartment_id=1", {"n": number})
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = api.get(f"{BASE}/user_points/{point.pk}/history", params).json()
        assert body["count"] == len(body["data"]) <= 3
        seen += body["data"]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 8
    assert seen == data(api.get(f"{BASE}/user_points/{point.pk}/history"))
    error(api.get(f"{BASE}/user_points/{point.pk}/history", {"cursor": "nope"}), 400)
    error(api.get(f"{BASE}/user_points/{point.pk}/history", {"limit": "0"}), 400)


def test_the_history_of_an_unknown_point_answers_404(api, datamart):
    error(api.get(f"{BASE}/user_points/{uuid.uuid4()}/history"), 404)
    error(api.get(f"{BASE}/user_points/user_agent_id=nobody/history"), 404)
