"""Bad-token guesses: failed authentications counted per client IP address.

`API_AUTH_FAILURE_RATE` failures (unknown, revoked or malformed tokens) are allowed per window;
past it, every request of that address that carries an `Authorization` header answers 429
RATE_LIMITED (SPEC §5's envelope, with Retry-After) until the window has passed, whether its
token is good or not: a guesser learns nothing more. The address is REMOTE_ADDR (a client
cannot choose it, unlike X-Forwarded-For); behind a proxy, the proxy must set it. The counts
live in the cache of the API rate limit (`CACHE_URL`: shared by the web processes when it
names Redis).
"""

from __future__ import annotations

from profiles.api.throttling import SettingsRateThrottle


class FailedAuthenticationThrottle(SettingsRateThrottle):
    scope = "auth_failure"

    def get_cache_key(self, request, view):
        return self.cache_format % {
            "scope": self.scope,
            "ident": request.META.get("REMOTE_ADDR", ""),
        }

    def is_blocked(self, request, *, read: dict | None = None) -> bool:
        """Whether the address has used up its failures in the window.

        `read`: values the caller read from the cache with this address's key (`address_key`)
        among them, to spare a round trip; otherwise the key is read here.
        """
        if self.rate is None:
            return False
        self.key = self.address_key(request)
        self.now = self.timer()
        stored = read.get(self.key, []) if read is not None else self.cache.get(self.key, [])
        self.history = [moment for moment in stored if moment > self.now - self.duration]
        return len(self.history) >= self.num_requests

    def address_key(self, request) -> str:
        return self.get_cache_key(request, None)

    def failure_record(self) -> None:
        """Count one more failure of the address checked by `is_blocked`."""
        if self.rate is None:
            return
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)
