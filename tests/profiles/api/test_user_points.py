"""User points by any selector: read with identifiers and profiles, list profiles, delete."""

from __future__ import annotations

import uuid

import pytest

from profiles.identifiers import AccountIdentifier, EmailIdentifier, UserAgentIdentifier
from profiles.merge import DEFAULT_MERGE_MODE
from profiles.models import UserAccount, UserPoint, UserProfile
from profiles.selectors import compartment_get
from profiles.services import (
    identifier_attach,
    profile_upsert,
    user_point_resolve,
)
from tests.profiles.api.client import BASE, data, error, profile_path


@pytest.fixture
def point(datamart, crm_compartment):
    """A point with an account (with a comma), an email hash, a user agent and two profiles."""
    point, _ = user_point_resolve(
        datamart=datamart, identifier=AccountIdentifier("acc,1 x", 1606), create=True
    )
    identifier_attach(user_point=point, identifier=EmailIdentifier("h 1"), email="d@example.com")
    identifier_attach(user_point=point, identifier=UserAgentIdentifier("vec:89998434"))
    for compartment_id, account in ((1606, "acc,1 x"), (None, None)):
        profile_upsert(
            user_point=point,
            compartment=compartment_get(datamart=datamart, compartment_id=compartment_id),
            user_account_id=account,
            properties={"firstname": "David"},
            mode=DEFAULT_MERGE_MODE,
        )
    return point


def selectors(point) -> list[str]:
    return [
        str(point.pk),
        f"user_point_id={point.pk}",
        "compartment_id=1606,user_account_id=acc,1%20x",
        "compartment_id=1606,user_account_id=acc%2C1%20x",
        "email_hash=h%201",
        "user_agent_id=vec:89998434",
    ]


def test_every_selector_names_the_same_point(api, point):
    for selector in selectors(point):
        response = api.get(f"{BASE}/user_points/{selector}")
        assert response.status_code == 200, selector
        assert data(response)["id"] == str(point.pk)


def test_a_point_renders_its_identifiers_and_profiles(api, point):
    found = data(api.get(f"{BASE}/user_points/{point.pk}"))
    assert found["creation_ts"] > 0
    assert sorted(found["identifiers"], key=lambda item: item["type"]) == [
        {"type": "USER_ACCOUNT", "compartment_id": 1606, "user_account_id": "acc,1 x"},
        {"type": "USER_AGENT", "user_agent_id": "vec:89998434"},
        {"type": "USER_EMAIL", "email_hash": "h 1", "email": "d@example.com"},
    ]
    assert [(p["$compartment_id"], p["$user_account_id"]) for p in found["profiles"]] == [
        (1606, "acc,1 x"),
        (1, None),
    ]
    assert all(p["$user_point_id"] == str(point.pk) for p in found["profiles"])


def test_an_email_identifier_without_its_clear_address_renders_null(api, crm_compartment):
    api.put(profile_path("email_hash=h9", 1606), {"a": 1})
    found = data(api.get(f"{BASE}/user_points/email_hash=h9"))
    assert found["identifiers"] == [{"type": "USER_EMAIL", "email_hash": "h9", "email": None}]


def test_a_point_read_makes_five_queries_by_any_selector(api, point):
    """The point (its id a subquery on the identifier's table), then its accounts with their
    compartments, e-mails, agents, and profiles with theirs: no lookup of the compartments or
    of the identifier first, and no query per identifier or profile."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api.get(f"{BASE}/user_points/{point.pk}")  # the token is cached from here on
    for selector in selectors(point):
        with CaptureQueriesContext(connection) as captured:
            response = api.get(f"{BASE}/user_points/{selector}")
        assert len(data(response)["profiles"]) == 2
        domain = [
            q["sql"]
            for q in captured
            if "profiles_cache" not in q["sql"] and "SAVEPOINT" not in q["sql"]
        ]
        assert len(domain) == 5, (selector, domain)


def test_user_account_id_alone_means_the_default_compartment(api, datamart):
    point, _ = user_point_resolve(
        datamart=datamart, identifier=AccountIdentifier("in-default"), create=True
    )
    found = data(api.get(f"{BASE}/user_points/user_account_id=in-default"))
    assert found["id"] == str(point.pk)


def test_the_points_profiles(api, point):
    response = api.get(f"{BASE}/user_points/email_hash=h%201/user_profiles")
    body = response.json()
    assert body["count"] == 2 and body["next"] is None
    assert [p["firstname"] for p in data(response)] == ["David", "David"]


@pytest.mark.parametrize(
    "selector",
    [
        "0192f3a4-5b6c-7d8e-9f00-112233445566",  # a UUID no point has
        "email_hash=unknown",
        "user_agent_id=vec:0",
        "compartment_id=1606,user_account_id=nobody",
        "compartment_id=4242,user_account_id=acc,1 x",  # no such compartment
    ],
)
def test_an_unknown_point_answers_404(api, point, selector):
    assert error(api.get(f"{BASE}/user_points/{selector}"), 404)["error_code"] == "NOT_FOUND"
    assert error(api.get(f"{BASE}/user_points/{selector}/user_profiles"), 404)
    assert error(api.delete(f"{BASE}/user_points/{selector}"), 404)


@pytest.mark.parametrize(
    "selector",
    [
        "not-a-uuid",
        "user_point_id=123",
        "phone=0600",
        "email_hash=",
        "compartment_id=x,user_account_id=a",
        "compartment_id=1606",
        "user_account_id=" + "a" * 300,
    ],
)
def test_a_malformed_selector_answers_400(api, point, selector):
    body = error(api.get(f"{BASE}/user_points/{selector}"), 400)
    assert body["error_code"] == "INVALID_SELECTOR"
    assert body["field"] == "selector"


def test_another_datamarts_point_answers_404_like_a_missing_one(point, other_api, api):
    for selector in selectors(point):
        assert error(other_api.get(f"/api/v1/datamarts/2/user_points/{selector}"), 404)
    # Their token on our datamart's path is refused the same way, and nothing is deleted.
    theirs = other_api.delete(f"{BASE}/user_points/{point.pk}")
    missing = api.delete(f"{BASE}/user_points/{uuid.uuid4()}")
    assert error(theirs, 404)["error_code"] == error(missing, 404)["error_code"]
    assert UserPoint.objects.filter(pk=point.pk).exists()


def test_delete_removes_the_point_its_identifiers_and_profiles(api, point):
    response = api.delete(f"{BASE}/user_points/user_agent_id=vec:89998434")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "data": None}
    assert not UserPoint.objects.exists()
    assert not UserProfile.objects.exists() and not UserAccount.objects.exists()
    assert error(api.get(f"{BASE}/user_points/{point.pk}"), 404)


@pytest.mark.parametrize("method", ["put", "patch"])
def test_a_profile_write_through_another_datamarts_point_answers_404_and_creates_nothing(
    point, other_api, method
):
    # Datamart 2's token, on datamart 2's path, naming datamart 1's point by its id.
    profiles_before = list(UserProfile.objects.order_by("pk").values_list("pk", "properties"))
    for path in (
        f"/api/v1/datamarts/2/user_points/{point.pk}/user_profiles/compartment_id=1",
        f"/api/v1/datamarts/2/user_points/user_point_id={point.pk}/user_profiles/compartment_id=1",
        f"{BASE}/user_points/{point.pk}/user_profiles/compartment_id=1606/user_account_id=acc,1 x",
    ):
        response = getattr(other_api, method)(path, {"firstname": "Mallory"})
        assert error(response, 404)["error_code"] in {"USER_POINT_NOT_FOUND", "NOT_FOUND"}, path
    assert (
        list(UserProfile.objects.order_by("pk").values_list("pk", "properties")) == profiles_before
    )
    assert not UserProfile.objects.filter(compartment__datamart_id=2).exists()
    assert not UserPoint.objects.filter(datamart_id=2).exists()


@pytest.mark.parametrize("account", ["a/b", "crm/2024/42", "/lead"])
def test_ids_that_hold_a_slash_are_reached_through_every_route(api, crm_compartment, account):
    """A `/` in an id travels as %2F, which the server decodes before routing: the selector and
    the account take what lies between the routes' fixed words."""
    from urllib.parse import quote

    encoded = quote(account, safe="")
    selector = f"compartment_id=1606,user_account_id={encoded}"
    path = profile_path(selector, 1606, encoded)
    created = api.put(path, {"a": 1})
    assert created.status_code == 201, created.content
    assert data(created)["$user_account_id"] == account
    assert data(api.get(path))["a"] == 1
    point = data(api.get(f"{BASE}/user_points/{selector}"))
    assert point["identifiers"][0]["user_account_id"] == account
    by_id = profile_path(point["id"], 1606, encoded)
    assert data(api.patch(by_id, {"b": 2})) | {"$last_modified_ts": 0} == data(api.get(path)) | {
        "$last_modified_ts": 0
    }
    assert len(data(api.get(f"{BASE}/user_points/{selector}/user_profiles"))) == 1
    assert api.get(f"{BASE}/user_points/{selector}/history").status_code == 200
    assert api.delete(path).status_code in (200, 204)
    assert api.get(path).status_code == 404
    assert api.get(f"{BASE}/user_points/email_hash=h%2F1").status_code == 404


def test_an_id_ending_in_a_slash_is_named_by_its_encoded_slash_then_the_routes(
    api, crm_compartment
):
    """In the last segment, `del/` and `del` + the route's optional slash reach the app alike
    (`…=del/`): `del%2F/` is the portable way to name `del/` (behind gunicorn `del%2F` alone
    does too, tests/reliability/test_load.py), and a plain trailing slash stays the route's."""
    points = f"{BASE}/user_points"
    assert (
        api.put(f"{points}/email_hash=del%2F/user_profiles/compartment_id=1", {"w": 1}).status_code
        == 201
    )
    assert (
        api.put(f"{points}/email_hash=del/user_profiles/compartment_id=1", {"w": 2}).status_code
        == 201
    )
    assert [p["w"] for p in data(api.get(f"{points}/email_hash=del%2F/"))["profiles"]] == [1]
    assert [p["w"] for p in data(api.get(f"{points}/email_hash=del/"))["profiles"]] == [2]
    account = "compartment_id=1606,user_account_id=acc%2F"
    path = profile_path(account, 1606, "acc%2F") + "/"
    assert data(api.put(path, {"w": 3}))["$user_account_id"] == "acc/"
    assert data(api.get(path))["w"] == 3
    assert api.delete(f"{points}/email_hash=del%2F/").status_code == 200
    assert [p["w"] for p in data(api.get(f"{points}/email_hash=del"))["profiles"]] == [2]
