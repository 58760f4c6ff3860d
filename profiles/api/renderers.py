"""The response envelope of SPEC §5: `{"status": "ok", "data": …}` around every success."""

from __future__ import annotations

from typing import Any

from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer


class Envelope(dict):
    """A response body that is already enveloped (errors, pages); the renderer leaves it alone."""

    @classmethod
    def ok(cls, data: Any) -> Envelope:
        return cls(status="ok", data=data)

    @classmethod
    def page(cls, items: list, *, next_cursor: str | None) -> Envelope:
        return cls(status="ok", data=items, count=len(items), next=next_cursor)

    @classmethod
    def error(cls, *, code: str, message: str, **extra: Any) -> Envelope:
        return cls(status="error", error=message, error_code=code, **extra)


class EnvelopeJSONRenderer(JSONRenderer):
    """Compact JSON; bare payloads of successful responses get wrapped in the envelope."""

    # NaN and Infinity are not JSON: rendering one is a bug, never a silent `NaN` on the wire.
    strict = True

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if not isinstance(data, Envelope):
            data = Envelope.ok(data)
        return super().render(data, accepted_media_type, renderer_context)


class StaffBrowsableAPIRenderer(BrowsableAPIRenderer):
    """DRF's browsable API (its own bundled static files, no CDN), shown around the enveloped
    JSON: only a staff member browsing with their admin session gets it (see below)."""


def browses_as_staff(request) -> bool:
    """A logged-in staff member's browser: an admin session, no API token, HTML accepted.

    Read from Django's own request (its session user), so choosing the renderer never runs the
    API's authentication: a token client always gets JSON, whatever its Accept header says.
    """
    django_request = getattr(request, "_request", request)
    if django_request.META.get("HTTP_AUTHORIZATION"):
        return False
    if "text/html" not in django_request.META.get("HTTP_ACCEPT", ""):
        return False
    user = getattr(django_request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


class JSONOnlyNegotiation(BaseContentNegotiation):
    """The API speaks JSON whatever the client's Accept header says (no 406 for `text/plain`);
    a staff member's browser gets the browsable API around the same JSON."""

    def select_parser(self, request, parsers):
        for parser in parsers:
            if parser.media_type == "*/*" or _media_type_matches(
                parser.media_type, request.content_type
            ):
                return parser
        return None

    def select_renderer(self, request, renderers, format_suffix=None):
        if browses_as_staff(request):
            for renderer in renderers:
                if isinstance(renderer, BrowsableAPIRenderer):
                    return renderer, renderer.media_type
        renderer = renderers[0]
        return renderer, renderer.media_type


def _media_type_matches(expected: str, given: str) -> bool:
    return expected == given.partition(";")[0].strip().lower()
