"""The API's per-token rate limit, counted in the shared cache so it holds across web processes.

A fixed window: the count of the caller's requests in the current period (a minute for
`1200/minute`) is one cache key, incremented atomically. On Redis (CACHE_URL) that is one
round trip, `INCR` and `EXPIRE` in a pipeline; on the database cache, Django's `incr` (a read
then a write: concurrent requests may each count one less) or `add` for a window's first.
"""

from __future__ import annotations

import time

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from profiles.api.authentication import TokenUser


def window_count(key: str, *, period: int) -> int:
    """Count one more request under `key`, which lives for the period; the new count."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        full_key = cache.make_and_validate_key(key)
        # Django's Redis client, to send both commands in one round trip.
        with cache._cache.get_client(full_key, write=True).pipeline() as pipe:
            count, _ = pipe.incr(full_key).expire(full_key, period, nx=True).execute()
        return int(count)
    try:
        return cache.incr(key)
    except ValueError:  # the window's first request (or a race with another one: it counts)
        if cache.add(key, 1, timeout=period):
            return 1
        return cache.incr(key)


class ApiTokenRateThrottle(SimpleRateThrottle):
    """`API_RATE_LIMIT` requests per token (per staff user for sessions), answered with 429."""

    scope = "api_token"

    def get_rate(self):
        # Read at each request, not at import, so a changed setting applies (tests, reloads).
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        user = request.user
        if isinstance(user, TokenUser):
            ident = f"token:{user.token.pk}"
        elif user is not None and user.is_authenticated:
            ident = f"user:{user.pk}"
        else:
            return None
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        now = time.time()
        window = int(now // self.duration)
        self.wait_seconds = (window + 1) * self.duration - now
        count = window_count(f"{self.key}:{window}", period=int(self.duration) + 1)
        return count <= self.num_requests

    def wait(self):
        return self.wait_seconds
