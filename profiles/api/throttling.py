from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from profiles.api.authentication import TokenUser


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
