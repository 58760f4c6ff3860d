"""Settings: a server or a worker refuses to start without SECRET_KEY when DEBUG is off."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.workers import ROOT

# Loads the settings the way gunicorn or a Celery worker does (not manage.py, not pytest).
SERVE = (
    "import sys; sys.argv = ['gunicorn']; import django; django.setup(); "
    "from django.conf import settings; print(settings.SECRET_KEY)"
)


def _start(**env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    return subprocess.run(
        [sys.executable, "-c", SERVE],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "profiles_site.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_secret_key_and_debug_off_the_settings_refuse_to_start():
    started = _start()
    assert started.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not set" in started.stderr


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"SECRET_KEY": "a-production-key"}, "a-production-key"),
        ({"DEBUG": "true"}, "insecure-local-development-key-change-me"),
    ],
)
def test_a_set_key_or_debug_starts(env, key):
    started = _start(**env)
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == key


def test_manage_py_commands_that_serve_nothing_run_without_a_key():
    base = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    checked = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
