"""Fixtures of the API tests: a token of datamart 1, a client that sends it, isolated state."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from profiles.services import api_token_create
from tests.profiles.api.client import ApiClient


@pytest.fixture(autouse=True)
def _isolated_api_state(settings, tmp_path):
    """Uploads go to a temporary folder; throttle counters start from zero in each test."""
    settings.MEDIA_ROOT = tmp_path / "media"
    cache.clear()
    yield
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


def pytest_terminal_summary(terminalreporter):
    from tests.profiles.api import fuzz_stats

    if fuzz_stats.cases:
        terminalreporter.write_line(
            f"schemathesis: {len(fuzz_stats.cases)} operations, "
            f"{sum(fuzz_stats.cases.values())} cases"
        )
