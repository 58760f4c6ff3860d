"""Who may call the API: tokens (bare or Bearer), staff sessions, and the datamart scope."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from profiles.models import ApiToken, DatamartMembership
from profiles.services import api_token_create, api_token_revoke, datamart_create
from tests.profiles.api.client import BASE, ApiClient, data, error

COMPARTMENTS = f"{BASE}/compartments"


def test_a_bare_token_and_a_bearer_token_both_authenticate(token):
    raw = token[1]
    for header in (raw, f"Bearer {raw}", f"bearer   {raw}"):
        response = ApiClient(header).get(COMPARTMENTS)
        assert response.status_code == 200, header
        assert [c["compartment_id"] for c in data(response)] == [1]


def test_missing_authorization_answers_401_with_www_authenticate(datamart):
    response = ApiClient().get(COMPARTMENTS)
    body = error(response, 401)
    assert body["error_code"] == "NOT_AUTHENTICATED"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_token_answers_401(datamart):
    body = error(ApiClient("pst_not-a-token").get(COMPARTMENTS), 401)
    assert body["error_code"] == "INVALID_TOKEN"


def test_a_revoked_token_answers_401(token):
    api_token_revoke(token=token[0])
    response = ApiClient(token[1]).get(COMPARTMENTS)
    assert error(response, 401)["error_code"] == "INVALID_TOKEN"
    assert "WWW-Authenticate" in response


@pytest.mark.parametrize("change", ["revoke", "delete the token", "delete its datamart"])
def test_a_token_used_a_moment_ago_is_refused_at_once_after_a_change(token, change):
    """A token found once is served from the shared cache: a revocation (service, admin action
    or command), a deletion of it or of its datamart must not wait for the cache to expire."""
    client = ApiClient(token[1])
    assert client.get(COMPARTMENTS).status_code == 200  # now cached
    match change:
        case "revoke":
            api_token_revoke(token=ApiToken.objects.get(pk=token[0].pk))
        case "delete the token":
            ApiToken.objects.get(pk=token[0].pk).delete()
        case "delete its datamart":
            token[0].datamart.delete()
    response = client.get(COMPARTMENTS)
    assert error(response, 401)["error_code"] == "INVALID_TOKEN"


def test_an_authenticated_request_reads_the_token_from_the_cache_not_the_database(token):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = ApiClient(token[1])
    with CaptureQueriesContext(connection) as first:
        assert client.get(COMPARTMENTS).status_code == 200
    with CaptureQueriesContext(connection) as second:
        assert client.get(COMPARTMENTS).status_code == 200
    assert any("profiles_apitoken" in q["sql"] for q in first)
    assert not any("profiles_apitoken" in q["sql"] for q in second)


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Basic dXNlcjpwYXNz x", "tok en"])
def test_a_malformed_authorization_header_answers_401(datamart, header):
    body = error(ApiClient(header).get(COMPARTMENTS), 401)
    assert body["error_code"] == "MALFORMED_AUTHORIZATION"


def test_authentication_is_checked_before_the_datamart_exists(db):
    assert error(ApiClient().get("/api/v1/datamarts/77/compartments"), 401)


def test_another_datamarts_token_answers_404_like_a_missing_datamart(datamart, other_api, api):
    theirs = error(other_api.get(COMPARTMENTS), 404)
    missing = error(api.get("/api/v1/datamarts/999/compartments"), 404)
    assert theirs["error_code"] == missing["error_code"] == "NOT_FOUND"
    assert error(other_api.post(COMPARTMENTS, {"compartment_id": 5, "name": "x"}), 404)


def test_token_use_is_recorded(token, api):
    assert token[0].last_used_ts is None
    api.get(COMPARTMENTS)
    assert ApiToken.objects.get(pk=token[0].pk).last_used_ts is not None


def test_requests_over_the_rate_limit_answer_429_with_retry_after(settings, token, api):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_token": "3/minute"},
    }
    statuses = [api.get(COMPARTMENTS).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = api.get(COMPARTMENTS)
    assert error(response, 429)["error_code"] == "RATE_LIMITED"
    assert int(response["Retry-After"]) >= 1
    # The limit is per token: another token of the same datamart is not limited by this one.
    other = ApiClient(api_token_create(datamart=token[0].datamart, name="second")[1])
    assert other.get(COMPARTMENTS).status_code == 200


# --- staff sessions -------------------------------------------------------------------------


def _logged_in(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


@pytest.fixture
def staff(datamart):
    user = get_user_model().objects.create_user("staff", password="pw", is_staff=True)
    DatamartMembership.objects.create(user=user, datamart=datamart)
    return user


def test_a_staff_session_sees_its_datamarts_only(staff, other_datamart):
    client = _logged_in(staff)
    assert client.get(COMPARTMENTS).status_code == 200
    body = error(client.get("/api/v1/datamarts/2/compartments"), 404)
    assert body["error_code"] == "NOT_FOUND"


def test_a_superuser_session_sees_every_datamart(datamart, other_datamart):
    admin = get_user_model().objects.create_superuser("root", password="pw")
    client = _logged_in(admin)
    assert client.get(COMPARTMENTS).status_code == 200
    assert client.get("/api/v1/datamarts/2/compartments").status_code == 200


def test_a_non_staff_session_is_forbidden(datamart):
    user = get_user_model().objects.create_user("someone", password="pw")
    DatamartMembership.objects.create(user=user, datamart=datamart)
    assert error(_logged_in(user).get(COMPARTMENTS), 403)["error_code"] == "PERMISSION_DENIED"


def test_a_staff_session_write_needs_the_csrf_token(staff):
    client = _logged_in(staff)
    body = json.dumps({"compartment_id": 7, "name": "Shop"})
    refused = client.post(COMPARTMENTS, body, content_type="application/json")
    assert error(refused, 403)
    csrf = "a" * 32  # the cookie a page of the site sets, echoed in the header as a browser does
    client.cookies["csrftoken"] = csrf
    accepted = client.post(
        COMPARTMENTS, body, content_type="application/json", HTTP_X_CSRFTOKEN=csrf
    )
    assert accepted.status_code == 201


def test_a_staff_write_is_recorded_with_the_user(staff):
    from profiles.models import ProfileChange

    client = Client()
    client.force_login(staff)
    datamart_create(datamart_id=1, name="Demo", default_compartment_id=1)
    response = client.put(
        f"{BASE}/user_points/email_hash=h1/user_profiles/compartment_id=1",
        json.dumps({"a": 1}),
        content_type="application/json",
    )
    assert response.status_code == 201
    change = ProfileChange.objects.get()
    assert (change.source, change.user_id, change.api_token_id) == ("api", staff.pk, None)


def test_bad_token_guesses_are_throttled_per_address_with_429(settings, token):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_token": "1000/minute", "auth_failure": "3/minute"},
    }
    guesses = [ApiClient(f"pst_guess{i}").get(COMPARTMENTS).status_code for i in range(3)]
    assert guesses == [401, 401, 401]
    blocked = ApiClient(f"pst_guess{4}").get(COMPARTMENTS)
    body = error(blocked, 429)
    assert body["error_code"] == "RATE_LIMITED"
    assert body["error"].startswith("too many failed authentications from this address")
    assert body["error"].endswith(" seconds") and "Expected" not in body["error"]
    assert int(blocked["Retry-After"]) >= 1
    # The good token gets no answer either from this address, until the window passes…
    assert error(ApiClient(token[1]).get(COMPARTMENTS), 429)
    # …while another address is not held back by these guesses.
    elsewhere = Client(HTTP_AUTHORIZATION=token[1], REMOTE_ADDR="10.1.2.3")
    assert ApiClient(client=elsewhere).get(COMPARTMENTS).status_code == 200
