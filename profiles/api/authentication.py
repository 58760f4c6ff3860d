"""API tokens sent as `Authorization: <token>` (the platform's own form) or `Bearer <token>`."""

from __future__ import annotations

from django.core.cache import cache
from rest_framework import authentication, exceptions

from profiles.api.auth_failures import FailedAuthenticationThrottle
from profiles.api.throttling import ApiTokenRateThrottle, read_and_count, token_ident
from profiles.models import ApiToken
from profiles.services import api_token_authenticate, api_token_cache_key, api_token_digest


class TokenUser:
    """The caller of a token-authenticated request: DRF's permissions see an authenticated user.

    It is no Django user (no id, no staff rights); the token stays on `request.auth`.
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, token: ApiToken) -> None:
        self.token = token

    @property
    def datamart_id(self) -> int:
        return self.token.datamart_id

    def __str__(self) -> str:
        return f"API token {self.token}"


_NOT_YET = object()


class ApiTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        """The token's (user, token); None without an Authorization header.

        Its outcome, an error included, is kept on Django's request: a request the profile
        route passed on to its DRF view is authenticated, counted and recorded once.
        """
        django_request = getattr(request, "_request", request)
        outcome = getattr(django_request, "token_authentication", _NOT_YET)
        if outcome is _NOT_YET:
            try:
                outcome = self.authenticate_once(django_request)
            except exceptions.APIException as error:
                outcome = error
            django_request.token_authentication = outcome
        if isinstance(outcome, exceptions.APIException):
            raise outcome
        return outcome

    def authenticate_once(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "").strip()
        if not header:
            return None
        failures = FailedAuthenticationThrottle()
        scheme, _, rest = header.partition(" ")
        raw_token = rest.strip() if scheme.lower() in {"bearer", "token"} else header
        if not raw_token or " " in raw_token or not raw_token.isprintable():
            self.refuse_if_blocked(request, failures)
            failures.failure_record()
            raise exceptions.AuthenticationFailed(
                "malformed Authorization header: send `Authorization: <token>` or "
                "`Authorization: Bearer <token>`",
                code="MALFORMED_AUTHORIZATION",
            )
        # The address's failures, the token's cached copy and (on Redis) the request counted
        # for the token's rate limit, in one round trip to the cache.
        keys = [failures.address_key(request), api_token_cache_key(raw_token=raw_token)]
        rate_limit = ApiTokenRateThrottle()
        if rate_limit.rate is None:
            read = cache.get_many(keys)
        else:
            key = rate_limit.key_of(token_ident(api_token_digest(raw_token)))
            counter, period = rate_limit.counter(key)
            read, count = read_and_count(keys, counter=counter, period=period)
            if count is not None:
                request.counted_request = (counter, count)
        self.refuse_if_blocked(request, failures, read=read)
        token = api_token_authenticate(raw_token=raw_token, read=read)
        if token is None:
            failures.failure_record()
            raise exceptions.AuthenticationFailed(
                "unknown or revoked API token", code="INVALID_TOKEN"
            )
        return (TokenUser(token), token)

    @staticmethod
    def refuse_if_blocked(request, failures, *, read: dict | None = None) -> None:
        if failures.is_blocked(request, read=read):
            wait = failures.wait()
            raise exceptions.Throttled(
                wait=wait,
                detail="too many failed authentications from this address: retry in "
                f"{max(1, int(wait or 1))} seconds",
            )

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
