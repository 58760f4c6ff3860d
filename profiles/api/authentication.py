"""API tokens sent as `Authorization: <token>` (the platform's own form) or `Bearer <token>`."""

from __future__ import annotations

import functools
from collections.abc import Callable

from rest_framework import authentication, exceptions

from profiles.api.auth_failures import FailedAuthenticationThrottle
from profiles.api.throttling import ApiTokenRateThrottle, send_read_and_count
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


class _Authentication:
    """A request's authentication, finished once: its (user, token), None, or its error."""

    def __init__(self, finish: Callable[[], tuple[TokenUser, ApiToken] | None]) -> None:
        self._finish = finish
        self._outcome = _NOT_YET

    def __call__(self) -> tuple[TokenUser, ApiToken] | None:
        if self._outcome is _NOT_YET:
            try:
                self._outcome = self._finish()
            except exceptions.APIException as error:
                self._outcome = error
        if isinstance(self._outcome, exceptions.APIException):
            raise self._outcome
        return self._outcome


class ApiTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        return self.begin(request)()

    def begin(self, request) -> _Authentication:
        """Start authenticating the request: its round trip to the cache is sent, and calling
        what is returned reads the answer and gives `authenticate`'s (user, token), None
        without an Authorization header, or raises its error. In between, the profile route
        runs its query while the cache answers.

        It is kept on Django's request, its outcome included: a request the profile route
        passed on to its DRF view is authenticated, counted and recorded once.
        """
        django_request = getattr(request, "_request", request)
        started = getattr(django_request, "token_authentication", None)
        if started is None:
            started = _Authentication(self.send_checks(django_request))
            django_request.token_authentication = started
        return started

    def send_checks(self, request) -> Callable[[], tuple[TokenUser, ApiToken] | None]:
        header = request.META.get("HTTP_AUTHORIZATION", "").strip()
        if not header:
            return lambda: None
        failures = FailedAuthenticationThrottle()
        scheme, _, rest = header.partition(" ")
        raw_token = rest.strip() if scheme.lower() in {"bearer", "token"} else header
        if not raw_token or " " in raw_token or not raw_token.isprintable():
            return functools.partial(self.refuse_malformed, request, failures)
        # The address's failures, the token's cached copy and (on Redis) the request counted
        # for the token's rate limit, in one round trip to the cache.
        digest = api_token_digest(raw_token)
        keys = [failures.address_key(request), api_token_cache_key(digest=digest)]
        rate_limit = ApiTokenRateThrottle()
        counter, period = None, 0
        if rate_limit.rate is not None:
            counter, period = rate_limit.counter(rate_limit.token_key(digest))
        answer = send_read_and_count(keys, counter=counter, period=period)

        def finish() -> tuple[TokenUser, ApiToken]:
            read, count = answer()
            if count is not None:
                request.counted_request = (counter, count)
            self.refuse_if_blocked(request, failures, read=read)
            token = api_token_authenticate(digest=digest, read=read)
            if token is None:
                failures.failure_record()
                raise exceptions.AuthenticationFailed(
                    "unknown or revoked API token", code="INVALID_TOKEN"
                )
            return (TokenUser(token), token)

        return finish

    def refuse_malformed(self, request, failures) -> None:
        self.refuse_if_blocked(request, failures)
        failures.failure_record()
        raise exceptions.AuthenticationFailed(
            "malformed Authorization header: send `Authorization: <token>` or "
            "`Authorization: Bearer <token>`",
            code="MALFORMED_AUTHORIZATION",
        )

    @staticmethod
    def refuse_if_blocked(request, failures, *, read: dict | None = None) -> None:
        if failures.is_blocked(request, read=read):
            wait = failures.wait()
            refused = exceptions.Throttled(
                detail="too many failed authentications from this address: retry in "
                f"{max(1, int(wait or 1))} seconds",
            )
            # Set after: given to the constructor, DRF appends its own "Expected available in
            # N seconds." to the message. The handler answers it as Retry-After.
            refused.wait = wait
            raise refused

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
