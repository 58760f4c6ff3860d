from __future__ import annotations

import os

import pytest
from django.db import connection

from profiles.models import Compartment, Datamart
from profiles.services import compartment_create, datamart_create

# The browser fixture (Debian's Chromium through Playwright), for every test that clicks a page.
pytest_plugins = ["tests.browser"]


def pytest_collection_modifyitems(config, items):
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: CI runs it with DATABASE_URL=postgresql://…")
    slow = pytest.mark.skip(reason="slow: CI runs it in its PostgreSQL pass")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)
        elif "reliability" in item.keywords:
            item.add_marker(slow)


_DATABASE_FIXTURES = {
    "db",
    "transactional_db",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
    "live_server",
}


@pytest.fixture(autouse=True)
def _cache_cleared(request):
    """Rate-limit counts (per token, failed authentications per address) and cached tokens
    start empty. Without CACHE_URL the cache is a table of the test database, cleared before
    the test's own transaction begins, and only for a test that has a database: pytest-django
    creates none for a run of tests that need none, and the table named by the settings would
    then be the development database's."""
    from django.core.cache import caches
    from django.core.cache.backends.db import DatabaseCache

    cache = caches["default"]
    if isinstance(cache, DatabaseCache):
        uses_database = request.node.get_closest_marker("django_db") is not None or bool(
            _DATABASE_FIXTURES & set(request.fixturenames)
        )
        if uses_database:
            request.getfixturevalue("django_db_setup")
            with request.getfixturevalue("django_db_blocker").unblock():
                cache.clear()
    else:
        cache.clear()
    yield


@pytest.fixture
def datamart(db) -> Datamart:
    return datamart_create(datamart_id=1, name="Demo", default_compartment_id=1)


@pytest.fixture
def crm_compartment(datamart) -> Compartment:
    return compartment_create(datamart=datamart, compartment_id=1606, name="CRM")


@pytest.fixture
def other_datamart(db) -> Datamart:
    return datamart_create(datamart_id=2, name="Other", default_compartment_id=1)


# --- uploads, the broker and real Celery workers -------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def session_var_dir(tmp_path_factory):
    """Uploads and the embedded broker's queue of a test session live in a temporary folder,
    never under var/, so a `make run` worker cannot meet a test's message."""
    from django.test import override_settings

    from profiles_site.celery import app

    root = tmp_path_factory.mktemp("profiles-var")
    (root / "media").mkdir()
    media = override_settings(MEDIA_ROOT=str(root / "media"))
    media.enable()
    broker_url = os.environ.get("CELERY_BROKER_URL", "filesystem://")
    if broker_url.startswith("filesystem://"):
        for sub in ("queue", "processed", "control"):
            (root / "broker" / sub).mkdir(parents=True, exist_ok=True)
        app.conf.broker_url = broker_url
        app.conf.broker_transport_options = {
            "data_folder_in": str(root / "broker" / "queue"),
            "data_folder_out": str(root / "broker" / "queue"),
            "processed_folder": str(root / "broker" / "processed"),
            "control_folder": str(root / "broker" / "control"),
            "store_processed": False,
        }
        if app._pool is not None:  # built for the former options: build it again
            app._pool.force_close_all()
            app._pool = None
            app.amqp._producer_pool = None
    yield root
    media.disable()


@pytest.fixture(scope="session")
def celery_worker_session(django_db_setup, django_db_blocker, session_var_dir):
    """One worker process for the session, started by the first test that asks for it."""
    from profiles_site.celery import app
    from tests.workers import ROOT, CeleryWorker, database_url

    with django_db_blocker.unblock():
        url = database_url(connection.settings_dict)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "profiles_site.settings",
        "DATABASE_URL": url,
        "PROFILES_VAR_DIR": str(session_var_dir),
        "MEDIA_ROOT": str(session_var_dir / "media"),
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "filesystem://"),
        "PYTHONPATH": str(ROOT),
        "CELERY_WORKER_LOST_WAIT": "0.5",
    }
    (session_var_dir / "logs").mkdir(exist_ok=True)
    app.control.purge()  # a shared broker (Redis in CI) may hold an earlier run's messages
    # One worker per pytest-xdist process, each with its own node name and test database.
    name = f"imports-test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    worker = CeleryWorker(env=env, log_dir=session_var_dir / "logs", name=name)
    yield worker
    worker.stop()


@pytest.fixture
def celery_worker(celery_worker_session, request):
    """A running worker on the test database; use with django_db(transaction=True).

    Tests may kill it and start it again, with other settings; the next test gets one with
    the default settings.
    """
    worker = celery_worker_session
    if worker.custom:
        worker.stop()
    if not worker.running:
        worker.stop()
        worker.start()
    yield worker
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(f"--- worker log ({worker.log_path}) ---\n{worker.log()}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def pytest_terminal_summary(terminalreporter):
    """The reliability scenarios' figures (tests/reliability/), and how many operations and cases
    the schema tests (tests/*/api/test_schema.py) fuzzed."""
    from tests.profiles.api import fuzz_stats
    from tests.reliability.harness import REPORT, reported_rows

    rows = reported_rows()
    if rows:
        terminalreporter.write_sep("-", f"reliability scenarios (also in {REPORT})")
        for row in rows:
            terminalreporter.write_line(row)
    if fuzz_stats.cases:
        terminalreporter.write_line(
            f"schemathesis: {len(fuzz_stats.cases)} operations, "
            f"{sum(fuzz_stats.cases.values())} cases"
        )
