"""`GET /api/v1/`: the API root, listing every endpoint with its methods, read from the URL
configuration itself (every app's routes named `api-…`), so the list cannot drift from it."""

from __future__ import annotations

import re

from django.urls import get_resolver
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from profiles.api.views import ApiView

API_PREFIX = "api/v1/"
_NAMED_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_SKIPPED_METHODS = {"options", "head", "trace"}


def _path_template(regex: str) -> str:
    """`^datamarts/(?P<dm>[0-9]{1,18})/compartments$` → `datamarts/{dm}/compartments`."""
    return _NAMED_GROUP.sub(r"{\1}", regex).removeprefix("^").removesuffix("$").rstrip("/?")


def _walk(patterns, prefix: str):
    for pattern in patterns:
        nested = getattr(pattern, "url_patterns", None)
        if nested is not None:
            yield from _walk(nested, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def api_endpoints() -> list[dict]:
    """Each named API route once: its path under /api/v1/, its methods and its name."""
    endpoints: dict[str, dict] = {}
    for regex, pattern in _walk(get_resolver().url_patterns, ""):
        name = pattern.name or ""
        if not regex.startswith(API_PREFIX) or not name.startswith("api-"):
            continue
        view_class = getattr(pattern.callback, "view_class", None) or getattr(
            pattern.callback, "cls", None
        )
        methods = sorted(
            method.upper()
            for method in getattr(view_class, "http_method_names", [])
            if method not in _SKIPPED_METHODS and hasattr(view_class, method)
        )
        path = "/" + API_PREFIX + _path_template(regex.removeprefix(API_PREFIX))
        endpoints.setdefault(name, {"path": path, "methods": methods, "name": name[4:]})
    return list(endpoints.values())


class ApiRootView(ApiView):
    """The API's entry point: what it offers and where its documentation is."""

    permission_classes = [AllowAny]

    @extend_schema(exclude=True)
    def get(self, request):
        return Response(
            {
                "name": "Profiles API",
                "authentication": (
                    "Authorization: <token> or Authorization: Bearer <token>; "
                    "staff may browse it with their back-office session"
                ),
                "docs": request.build_absolute_uri("/api/v1/docs"),
                "schema": request.build_absolute_uri("/api/v1/schema"),
                "endpoints": api_endpoints(),
            }
        )
