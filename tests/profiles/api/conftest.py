"""Fixtures of the API tests: a token of datamart 1, a client that sends it, isolated state.

tests/imports/api/conftest.py shares them with the import endpoints' tests.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from profiles.api import throttling
from profiles.services import api_token_create
from tests.profiles.api.client import ApiClient


@pytest.fixture(autouse=True)
def _isolated_api_state(settings, tmp_path, request, monkeypatch):
    """Uploads go to a temporary folder; throttle counters start from zero in each test, and
    their clock stays in the middle of an hour, so no window ends between a test's requests.

    The counters live in the database cache (or Redis): a test without the database sends no
    authenticated request, so it has none to clear.
    """
    settings.MEDIA_ROOT = tmp_path / "media"
    mid_hour = time.time() // 3600 * 3600 + 1800
    monkeypatch.setattr(throttling, "time", SimpleNamespace(time=lambda: mid_hour))
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or bool(
        marker and marker.kwargs.get("transaction")
    )
    uses_database = transactional or marker is not None or "db" in request.fixturenames
    if uses_database:
        request.getfixturevalue("transactional_db" if transactional else "db")
        cache.clear()
    yield
    if uses_database:
        cache.clear()


@pytest.fixture
def token(datamart):
    """(ApiToken, raw value) of datamart 1."""
    return api_token_create(datamart=datamart, name="crm-sync")


@pytest.fixture
def api(token) -> ApiClient:
    return ApiClient(token[1])


@pytest.fixture
def other_api(other_datamart) -> ApiClient:
    """A client of datamart 2, for cross-datamart checks."""
    return ApiClient(api_token_create(datamart=other_datamart, name="other")[1])


@pytest.fixture
def fuzz_token(datamart, settings):
    """A raw token of datamart 1 without a rate limit, for schemathesis (tests.profiles.api.fuzzing)
    calling the WSGI application directly."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_token": "1000000/minute"},
    }
    # Django's test client does this too: a request's end must not close the test's connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield api_token_create(datamart=datamart, name="schemathesis")[1]
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
