"""How each app's api/urls.py declares its routes under /api/v1/: the shared path fragments,
and one pattern per route that answers with or without a trailing slash (no redirect)."""

from __future__ import annotations

from django.urls import URLPattern, re_path

DM = r"datamarts/(?P<dm>[0-9]{1,18})"
ID = r"[0-9]{1,18}"


def route_patterns(routes) -> list[URLPattern]:
    """(regex, view class, name) triples → URL patterns named `api-<name>`."""
    patterns = []
    for regex, view, name in routes:
        patterns += [
            re_path(rf"^{regex}$", view.as_view(), name=f"api-{name}"),
            re_path(rf"^{regex}/$", view.as_view()),
        ]
    return patterns
