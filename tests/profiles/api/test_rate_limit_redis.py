"""The API's rate limit on the Redis cache (CACHE_URL), against a real Redis: a token request's
authentication reads the token and counts the request in one round trip."""

from __future__ import annotations

import pytest

from profiles_site.cache import RedisCache
from tests.profiles.api.client import profile_path
from tests.profiles.test_redis_cache import REDIS_URL, _redis_up

pytestmark = pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")


@pytest.fixture
def redis_rate_limit(settings):
    """The cache on Redis (a key prefix of its own), 3 requests a minute a token."""
    from django.core.cache import caches

    settings.CACHES = {
        "default": {
            "BACKEND": "profiles_site.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "round-trip-test",
        }
    }
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_token": "3/minute", "auth_failure": "20/minute"},
    }
    caches["default"].clear()
    yield
    caches["default"].clear()


def test_a_token_request_reads_the_token_and_counts_it_in_one_round_trip(
    redis_rate_limit, token, api, monkeypatch
):
    """On Redis the authentication's one round trip (failures, token, rate-limit count) is the
    request's only one: the throttle uses its count, and the limit still holds."""
    import profiles.api.throttling as throttling

    round_trips = []
    real = RedisCache.send_get_many_and_incr

    def counted(self, keys, **kwargs):
        round_trips.append(len(keys))
        return real(self, keys, **kwargs)

    monkeypatch.setattr(RedisCache, "send_get_many_and_incr", counted)
    monkeypatch.setattr(throttling, "window_count", None)  # a second round trip would fail
    statuses = [api.get("/api/v1/datamarts/1/compartments").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert round_trips == [2, 2, 2, 2]


def test_a_profile_read_passed_on_to_drf_is_counted_once(redis_rate_limit, api, crm_compartment):
    """A 404 read goes from the profile route to ProfileView: the count the authentication
    made in its round trip is the one the throttle uses, not a second one."""
    found = profile_path("compartment_id=1606,user_account_id=a1", 1606, "a1")
    missing = profile_path("compartment_id=1606,user_account_id=a1", 1606, "a2")
    assert api.put(found, {"a": 1}).status_code == 201
    statuses = [api.get(path).status_code for path in (missing, found, missing)]
    assert statuses == [404, 200, 429]
