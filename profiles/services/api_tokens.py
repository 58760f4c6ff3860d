"""API tokens (SPEC §5): stored hashed, one datamart each, revocable.

A token found by its digest is kept in the shared cache (`CACHE_URL`'s Redis, else the database
cache) for `API_TOKEN_CACHE_SECONDS`, with its datamart, so a request authenticates in one cache
read instead of a query. Every save or delete of a token, and every save of its datamart, drops
the cached copy at once (`api_token_forget`, connected to the models' signals in
`profiles.apps`), so a revoked token is refused by every web process from its next request.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from profiles.models import ApiToken, Datamart

# The last-used time is written at most this often, not on every request.
LAST_USED_PRECISION_SECONDS = 60


def api_token_digest(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


def api_token_create(*, datamart: Datamart, name: str) -> tuple[ApiToken, str]:
    """A new token; the raw value is returned once and only its digest is kept."""
    raw_token = f"pst_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        datamart=datamart, name=name, digest=api_token_digest(raw_token), prefix=raw_token[:10]
    )
    return token, raw_token


def _cache_key(digest: str) -> str:
    return f"api-token:{digest}"


def api_token_cache_key(*, digest: str) -> str:
    """The cache key of the cached copy of the token of that digest, for a caller that reads it
    with other keys."""
    return _cache_key(digest)


def api_token_authenticate(*, digest: str, read: dict | None = None) -> ApiToken | None:
    """The active token of that digest (`api_token_digest` of the raw value a client sent),
    with its datamart loaded; None if unknown or revoked.

    `read`: values the caller read from the cache with the token's key (`api_token_cache_key`)
    among them, to spare a round trip, a miss included; otherwise the key is read here.
    """
    key = _cache_key(digest)
    token = read.get(key) if read is not None else cache.get(key)
    if token is None:
        token = (
            ApiToken.objects.select_related("datamart")
            .filter(digest=digest, revoked_ts__isnull=True)
            .first()
        )
        if token is None:
            return None
        cache.set(key, token, settings.API_TOKEN_CACHE_SECONDS)
    now = timezone.now()
    last_used = token.last_used_ts
    if last_used is None or (now - last_used).total_seconds() > LAST_USED_PRECISION_SECONDS:
        # An update of the one column, not a save: the cached copy is refreshed, not dropped.
        ApiToken.objects.filter(pk=token.pk).update(last_used_ts=now)
        token.last_used_ts = now
        cache.set(key, token, settings.API_TOKEN_CACHE_SECONDS)
    return token


def api_token_forget(*, tokens: list[ApiToken]) -> None:
    """Drop the cached copies of these tokens: the next request reads them from the database."""
    if tokens:
        cache.delete_many([_cache_key(token.digest) for token in tokens])


def api_token_revoke(*, token: ApiToken) -> None:
    if token.revoked_ts is None:
        token.revoked_ts = timezone.now()
        token.save(update_fields=["revoked_ts"])


def api_token_rename(*, token: ApiToken, name: str) -> ApiToken:
    token.name = name
    token.save(update_fields=["name"])
    return token
