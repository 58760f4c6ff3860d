"""Every datamart route refuses a query parameter it does not read (400 UNKNOWN_PARAMETER naming
it), before anything is read or written: a typo such as `?dry_run=true` on an erase, which
cannot be undone, or `?forse=true` on a revert, is never silently ignored (docs/rules.md)."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern

from imports.api import urls as import_urls
from profiles.api import urls as profile_urls
from profiles.api.views import DatamartView
from profiles.identifiers import EmailIdentifier
from profiles.models import UserPoint
from profiles.services import user_point_resolve
from tests.profiles.api.client import BASE, data, error

# A value for each path part of the routes; the parameter is refused before any is looked up.
SAMPLES = {
    "dm": "1",
    "selector": "email_hash=h1",
    "compartment_id": "1606",
    "user_account_id": "a1",
    "import_id": "1",
    "execution_id": "1",
}
METHODS = ("get", "post", "put", "patch", "delete")


def datamart_routes() -> list[tuple[str, str, str]]:
    """(view name, method, path) of every method of every datamart route of the API."""
    routes = []
    for pattern in [*profile_urls.urlpatterns, *import_urls.urlpatterns]:
        assert isinstance(pattern, URLPattern)
        view = getattr(pattern.callback, "cls", None) or pattern.callback.view_class
        if not issubclass(view, DatamartView):
            continue
        regex = pattern.pattern.regex.pattern.removeprefix("^").removesuffix("/?$")
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda group: SAMPLES[group[1]], regex)
        assert "(" not in path and "\\" not in path, path
        routes += [
            (view.__name__, method, f"/api/v1/{path}")
            for method in METHODS
            if hasattr(view, method)
        ]
    return routes


ROUTES = datamart_routes()


def test_every_datamart_route_of_both_apps_is_covered():
    views = {view for view, _, _ in ROUTES}
    assert {"UserPointEraseView", "ExecutionRevertView", "ProfileSearchView"} <= views
    assert len(views) == 16, sorted(views)


@pytest.mark.django_db
@pytest.mark.parametrize(("view", "method", "path"), ROUTES, ids=[f"{v}-{m}" for v, m, _ in ROUTES])
def test_a_parameter_the_route_does_not_read_is_refused(api, datamart, view, method, path):
    call = getattr(api, method)
    url = f"{path}?zz_unknown=1"
    response = call(url, {}) if method in ("put", "patch") else call(url)
    body = error(response, 400)
    assert (body["error_code"], body["field"]) == ("UNKNOWN_PARAMETER", "zz_unknown")


@pytest.mark.django_db
def test_an_erase_with_a_dry_run_parameter_erases_nothing(api, datamart):
    point, _ = user_point_resolve(
        datamart=datamart, identifier=EmailIdentifier("h-erase"), create=True
    )
    body = error(api.post(f"{BASE}/user_points/email_hash=h-erase/erase?dry_run=true"), 400)
    assert (body["error_code"], body["field"]) == ("UNKNOWN_PARAMETER", "dry_run")
    assert UserPoint.objects.filter(pk=point.pk).exists()
    assert api.post(f"{BASE}/user_points/email_hash=h-erase/erase").status_code == 200
    assert not UserPoint.objects.filter(pk=point.pk).exists()


@pytest.mark.django_db
def test_the_parameters_a_route_reads_are_still_taken(api, datamart):
    user_point_resolve(datamart=datamart, identifier=EmailIdentifier("h-page"), create=True)
    assert data(api.get(f"{BASE}/user_points/email_hash=h-page/history?limit=1")) == []
    body = error(api.get(f"{BASE}/user_points/email_hash=h-page/history?limt=1"), 400)
    assert body["field"] == "limt"
    assert data(api.get(f"{BASE}/compartments?limit=1&format=json"))
    assert data(api.get(f"{BASE}/document_imports?limit=1")) == []
