"""Fixtures of the import endpoints' tests: the API tests' own, shared (token, clients, isolated
uploads and throttle counters)."""

from __future__ import annotations

import pytest

from tests.profiles.api import conftest as api_tests

_isolated_api_state = api_tests._isolated_api_state
token = api_tests.token
api = api_tests.api
other_api = api_tests.other_api
fuzz_token = api_tests.fuzz_token


@pytest.fixture
def eager(monkeypatch):
    """Queued executions run in the request's process once it commits (with
    django_capture_on_commit_callbacks(execute=True)): the runner's code, without a worker."""
    from profiles_site.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)
