"""The API's per-token rate limit, counted in the shared cache so it holds across web processes.

A fixed window: the count of the caller's requests in the current period (a minute for
`1200/minute`) is one cache key, incremented atomically. On Redis (CACHE_URL) a token's count
rides in the round trip that reads the token (`send_read_and_count`, called by the authentication:
the counter is named by the token's digest, known before the token is); a staff session's is
one round trip of its own, `INCR` and `EXPIRE` in a pipeline. On the database cache, Django's
`incr` (a read then a write: concurrent requests may each count one less) or `add` for a
window's first.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from django.core.cache import caches
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from profiles.models import ApiToken
from profiles_site.cache import RedisCache


def send_read_and_count(
    keys: list[str], *, counter: str | None, period: int
) -> Callable[[], tuple[dict, int | None]]:
    """The cache's values of `keys`, and on Redis one more request counted under `counter` in
    the same round trip (its new count): the round trip is sent now, and the function returned
    reads the answer. Other caches, or no counter (no rate limit), read at once and count
    nothing (None for the count)."""
    cache = caches["default"]
    if counter is not None and isinstance(cache, RedisCache):
        return cache.send_get_many_and_incr(keys, counter=counter, timeout=period)
    read = cache.get_many(keys)
    return lambda: (read, None)


def token_ident(digest: str) -> str:
    """Who a token's requests are counted as: its digest's prefix (the authentication counts
    before it has found the token)."""
    return f"token:{digest[:16]}"


def window_count(key: str, *, period: int) -> int:
    """Count one more request under `key`, which lives for the period; the new count."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        return cache.get_many_and_incr([], counter=key, timeout=period)[1]
    try:
        return cache.incr(key)
    except ValueError:  # the window's first request (or a race with another one: it counts)
        if cache.add(key, 1, timeout=period):
            return 1
        return cache.incr(key)


class SettingsRateThrottle(SimpleRateThrottle):
    """A rate of `DEFAULT_THROTTLE_RATES`, read at each request, not at import, so a changed
    setting applies (tests, reloads); parsed once per rate."""

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def parse_rate(self, rate):
        return _parsed_rate(rate)


@functools.lru_cache(maxsize=16)
def _parsed_rate(rate: str | None) -> tuple[int | None, int | None]:
    return SimpleRateThrottle.parse_rate(None, rate)


class ApiTokenRateThrottle(SettingsRateThrottle):
    """`API_RATE_LIMIT` requests per token (per staff user for sessions), answered with 429."""

    scope = "api_token"

    def get_cache_key(self, request, view):
        user = request.user
        if isinstance(request.auth, ApiToken):
            return self.token_key(request.auth.digest)
        if user is not None and user.is_authenticated:
            return self.key_of(f"user:{user.pk}")
        return None

    def token_key(self, digest: str) -> str:
        """The cache key of the requests of the token of that digest."""
        return self.key_of(token_ident(digest))

    def key_of(self, ident: str) -> str:
        """The cache key of the requests counted as `ident` (before its window)."""
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def counter(self, key: str) -> tuple[str, int]:
        """The cache key counting the current window's requests under `key`, and how long it
        lives (one second past the window)."""
        now = time.time()
        window = int(now // self.duration)
        self.wait_seconds = (window + 1) * self.duration - now
        return f"{key}:{window}", int(self.duration) + 1

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        return key is None or self.key_allowed(request, key)

    def token_allowed(self, request, *, token: ApiToken) -> bool:
        """`allow_request` for a token's request answered outside DRF (the profile route)."""
        return self.rate is None or self.key_allowed(request, self.token_key(token.digest))

    def key_allowed(self, request, key: str) -> bool:
        """Whether the request, counted under `key`, is within the rate."""
        self.key = key
        counter, period = self.counter(key)
        # The request may be counted already: by the authentication (`send_read_and_count`), or
        # here, by the profile route before it passed the request on to DRF.
        django_request = getattr(request, "_request", request)
        counted = getattr(django_request, "counted_request", None)
        if counted is not None and counted[0] == counter:
            count = counted[1]
        else:
            count = window_count(counter, period=period)
            django_request.counted_request = (counter, count)
        return count <= self.num_requests

    def wait(self):
        return self.wait_seconds
