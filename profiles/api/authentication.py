"""API tokens sent as `Authorization: <token>` (the platform's own form) or `Bearer <token>`."""

from __future__ import annotations

from rest_framework import authentication, exceptions

from profiles.services import api_token_authenticate


class ApiTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "").strip()
        if not header:
            return None
        scheme, _, rest = header.partition(" ")
        raw_token = rest.strip() if scheme.lower() in {"bearer", "token"} else header
        if not raw_token or " " in raw_token:
            raise exceptions.AuthenticationFailed("malformed Authorization header")
        token = api_token_authenticate(raw_token=raw_token)
        if token is None:
            raise exceptions.AuthenticationFailed("unknown or revoked API token")
        return (None, token)

    def authenticate_header(self, request):
        return "Bearer"
