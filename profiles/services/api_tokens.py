"""API tokens (SPEC §5): stored hashed, one datamart each, revocable."""

from __future__ import annotations

import hashlib
import secrets

from django.utils import timezone

from profiles.models import ApiToken, Datamart


def api_token_digest(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


def api_token_create(*, datamart: Datamart, name: str) -> tuple[ApiToken, str]:
    """A new token; the raw value is returned once and only its digest is kept."""
    raw_token = f"pst_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        datamart=datamart, name=name, digest=api_token_digest(raw_token), prefix=raw_token[:10]
    )
    return token, raw_token


def api_token_authenticate(*, raw_token: str) -> ApiToken | None:
    token = (
        ApiToken.objects.select_related("datamart")
        .filter(digest=api_token_digest(raw_token), revoked_ts__isnull=True)
        .first()
    )
    if token is not None:
        now = timezone.now()
        # Write the last-used time at most once a minute, not on every request.
        if token.last_used_ts is None or (now - token.last_used_ts).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_ts=now)
            token.last_used_ts = now
    return token


def api_token_revoke(*, token: ApiToken) -> None:
    if token.revoked_ts is None:
        token.revoked_ts = timezone.now()
        token.save(update_fields=["revoked_ts"])


def api_token_rename(*, token: ApiToken, name: str) -> ApiToken:
    token.name = name
    token.save(update_fields=["name"])
    return token
