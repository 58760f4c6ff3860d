"""The profile routes' two paths (profiles.api.profile_route): a token's GET that finds its
profile is answered outside DRF, everything else by ProfileView; both answer alike, and a
request passed on from one to the other is counted and recorded once."""

from __future__ import annotations

import pytest
from django.test import Client

from profiles.api import profile_route
from profiles.api.views import ProfileView
from profiles.services import api_token_create, api_token_revoke
from tests.profiles.api.client import BASE, profile_path

ACCOUNT = "compartment_id=1606,user_account_id=acct-1"
FOUND = profile_path(ACCOUNT, 1606, "acct-1")


@pytest.fixture
def stored(api, crm_compartment, other_datamart) -> dict:
    """A profile with an account, an anonymous one of an e-mail's point; their points' ids."""
    point = api.put(FOUND, {"firstname": "Ann", "nl": {"on": True}, "tags": [1, 2.5]}).json()
    email = api.put(profile_path("email_hash=e1", 1606), {"age": 41}).json()
    return {"account": point["data"]["$user_point_id"], "email": email["data"]["$user_point_id"]}


def _answer(response) -> tuple:
    return response.status_code, response.content, sorted(response.headers.items())


def _both_paths(authorization: str, path: str, monkeypatch) -> tuple[tuple, tuple]:
    """The route's answer, then ProfileView's alone (the route's own read switched off), each
    from a fresh cache: rate-limit and failure counts start from zero for both."""
    from django.core.cache import cache

    client = Client(HTTP_AUTHORIZATION=authorization)
    cache.clear()
    routed = _answer(client.get(path))
    with monkeypatch.context() as patched:
        patched.setattr(profile_route, "profile_read_by_token", lambda request, **route: None)
        cache.clear()
        by_view = _answer(client.get(path))
    return routed, by_view


PATHS = {
    "account selector, account address": FOUND,
    "trailing slash": FOUND + "/",
    "e-mail selector, anonymous address": profile_path("email_hash=e1", 1606),
    "missing profile of a known point": profile_path(ACCOUNT, 1606, "other"),
    "unknown point": profile_path("email_hash=nobody", 1606),
    "unknown compartment": profile_path(ACCOUNT, 77, "acct-1"),
    "bad selector": profile_path("colour=blue", 1606),
    "bad compartment id": profile_path(ACCOUNT, "abc", "acct-1"),  # type: ignore[arg-type]
    "compartment id past 2**31-1": profile_path(ACCOUNT, 2**31, "acct-1"),
    "account id too long": profile_path(ACCOUNT, 1606, "a" * 300),
    "another datamart": FOUND.replace(BASE, "/api/v1/datamarts/2"),
    "no such datamart": FOUND.replace(BASE, "/api/v1/datamarts/999"),
}


@pytest.mark.parametrize("path", PATHS.values(), ids=PATHS.keys())
def test_both_paths_answer_every_read_alike(stored, token, monkeypatch, path):
    routed, by_view = _both_paths(token[1], path, monkeypatch)
    assert routed == by_view


@pytest.mark.parametrize(
    "selector", ["{account}", "user_point_id={account}", "{email}"], ids=["uuid", "id=", "email"]
)
def test_both_paths_answer_point_id_selectors_alike(stored, token, monkeypatch, selector):
    path = profile_path(selector.format(**stored), 1606)
    routed, by_view = _both_paths(token[1], path, monkeypatch)
    assert routed == by_view


@pytest.mark.parametrize("authorization", ["pst_unknown", "Bearer two words", "Bearer", "revoked"])
def test_both_paths_refuse_bad_tokens_alike(stored, datamart, monkeypatch, authorization):
    if authorization == "revoked":
        revoked, authorization = api_token_create(datamart=datamart, name="gone")
        api_token_revoke(token=revoked)
    routed, by_view = _both_paths(authorization, FOUND, monkeypatch)
    assert routed == by_view
    assert routed[0] == 401


def test_a_found_profile_is_read_in_one_query_without_drf(stored, token, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=token[1])
    client.get(FOUND)  # the token is cached, its last use written

    def refuse(*args, **kwargs):
        raise AssertionError("ProfileView answered the read")

    monkeypatch.setattr(ProfileView, "initial", refuse)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(FOUND)
    assert response.status_code == 200
    assert response.json()["data"]["firstname"] == "Ann"
    # The database cache's queries aside (CACHE_URL unset): Redis counts in its own round trip.
    reads = [
        query["sql"]
        for query in queries
        if "profiles_cache" not in query["sql"] and "SAVEPOINT" not in query["sql"]
    ]
    assert len(reads) == 1 and "profiles_userprofile" in reads[0], reads


def test_a_read_passed_on_is_counted_once_against_the_rate_limit(stored, token, settings):
    from django.core.cache import cache

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_token": "3/minute", "auth_failure": "20/minute"},
    }
    cache.clear()
    client = Client(HTTP_AUTHORIZATION=token[1])
    missing = profile_path(ACCOUNT, 1606, "other")
    statuses = [client.get(path).status_code for path in (FOUND, missing, missing, FOUND)]
    assert statuses == [200, 404, 404, 429]


def test_a_bad_token_is_recorded_once(stored, settings):
    from django.core.cache import cache

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_token": "1200/minute", "auth_failure": "3/minute"},
    }
    cache.clear()
    client = Client(HTTP_AUTHORIZATION="pst_guess")
    assert [client.get(FOUND).status_code for _ in range(4)] == [401, 401, 401, 429]


def test_other_methods_and_query_parameters_go_to_profile_view(stored, token, monkeypatch):
    served = []
    real = profile_route.profile_read_by_token
    monkeypatch.setattr(
        profile_route,
        "profile_read_by_token",
        lambda request, **route: served.append(request.method) or real(request, **route),
    )
    client = Client(HTTP_AUTHORIZATION=token[1])
    assert client.get(FOUND, {"update_strategy": "x"}).status_code == 400  # UNKNOWN_PARAMETER
    assert client.head(FOUND).status_code == 200
    assert client.patch(FOUND, "{}", content_type="application/json").status_code == 200
    assert client.get(FOUND).status_code == 200
    assert served == ["GET"]
