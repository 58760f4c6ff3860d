"""What the fault, load and access scenarios share: real processes and a report of each run.

- `workers`: a factory of real Celery worker processes on the test database (the session's
  worker is stopped first, so no other process takes these tests' messages).
- `report(scenario, did=…, measured=…)`: prints the scenario's figures and appends them to
  test-artifacts/reliability.md, whatever pytest's capture (the terminal summary prints it too).
- `profiles_checksum(datamart_id)`: a digest of a datamart's profiles and identifiers that does
  not depend on generated ids, so two imports of one file into two datamarts compare equal.

These scenarios need PostgreSQL (row locks, pg_terminate_backend) and the Redis broker: each
module carries `needs_postgres_and_redis`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from django.db import connection

from imports.models import Execution
from tests.imports.helpers import CRM, mixed_import, snapshot, wait_for
from tests.workers import ROOT, CeleryWorker, database_url

REPORT = ROOT / "test-artifacts" / "reliability.md"
_broker = os.environ.get("CELERY_BROKER_URL", "")

needs_postgres_and_redis = [
    pytest.mark.postgres,
    pytest.mark.worker,
    pytest.mark.skipif(
        not _broker.startswith("redis://"),
        reason="needs the Redis broker and PostgreSQL: CI's second pass runs it "
        "(DATABASE_URL=postgresql://… CELERY_BROKER_URL=redis://…)",
    ),
    pytest.mark.django_db(transaction=True),
]


def setting(name: str, default: int) -> int:
    """A size of a scenario, from the environment (RELIABILITY_…) or its default."""
    return int(os.environ.get(f"RELIABILITY_{name}", default))


# --- the report --------------------------------------------------------------------------------

_reported: list[str] = []


def report(scenario: str, *, did: str, measured: str) -> None:
    """One row of the scenario table: printed now, kept in test-artifacts/reliability.md."""
    print(f"\n[reliability] {scenario}\n  did: {did}\n  measured: {measured}", flush=True)
    REPORT.parent.mkdir(exist_ok=True)
    if not _reported:
        REPORT.write_text(
            "# Reliability scenarios (tests/reliability/)\n\n"
            "| scenario | what the test did | what it measured |\n|---|---|---|\n"
        )
    row = f"| {scenario} | {did} | {measured} |".replace("\n", " ")
    _reported.append(row)
    with REPORT.open("a") as out:
        out.write(row + "\n")


def reported_rows() -> list[str]:
    return list(_reported)


# --- processes ---------------------------------------------------------------------------------


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a live process (its peak resident memory), in MB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def pool_pids(worker: CeleryWorker) -> list[int]:
    """The worker's main process and its pool children."""
    if worker.process is None:
        return []
    found = [worker.process.pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{worker.process.pid}/task/{worker.process.pid}/children")
        found += [int(pid) for pid in children.read_text().split()]
    return found


def children_peak_rss_mb() -> float:
    """The largest peak resident memory among this process's waited-for children, in MB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


class Workers:
    """Worker processes started by one test; every one still running is stopped at its end."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.started: list[CeleryWorker] = []
        self.peak_mb = 0.0

    def start(self, name: str, **settings: str) -> CeleryWorker:
        worker = CeleryWorker(env=self.env, log_dir=self.log_dir, name=f"reliab-{name}")
        worker.start(env={**settings, "LOG_LEVEL": "INFO"})
        self.started.append(worker)
        return worker

    def restart(self, worker: CeleryWorker, **settings: str) -> None:
        worker.start(env={**settings, "LOG_LEVEL": "INFO"})

    def sample_memory(self) -> float:
        for worker in self.started:
            for pid in pool_pids(worker):
                self.peak_mb = max(self.peak_mb, peak_rss_mb(pid))
        return self.peak_mb

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {w.log_path} ---\n{w.log()[-3000:]}" for w in self.started)


@pytest.fixture
def worker_env(django_db_setup, django_db_blocker, session_var_dir) -> dict[str, str]:
    with django_db_blocker.unblock():
        url = database_url(connection.settings_dict)
    (session_var_dir / "logs").mkdir(exist_ok=True)
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "profiles_site.settings",
        "DATABASE_URL": url,
        "PROFILES_VAR_DIR": str(session_var_dir),
        "MEDIA_ROOT": str(session_var_dir / "media"),
        "CELERY_BROKER_URL": _broker,
        "PYTHONPATH": str(ROOT),
        "CELERY_WORKER_LOST_WAIT": "0.5",
    }


@pytest.fixture
def workers(worker_env, celery_worker_session, session_var_dir, request):
    """Start workers of this test; the session's shared worker is stopped so that it takes none
    of this test's messages (the next test that needs it starts it again)."""
    from profiles_site.celery import app

    celery_worker_session.stop()
    app.control.purge()
    started = Workers(worker_env, session_var_dir / "logs")
    yield started
    started.stop_all()
    report_ = getattr(request.node, "rep_call", None)
    if report_ is not None and report_.failed:
        print(started.logs())


# --- files and outcomes ------------------------------------------------------------------------


def profiles_checksum(datamart_id: int) -> str:
    """sha256 of the datamart's profiles keyed by their points' identifiers (not by ids)."""
    state = snapshot(datamart_id)
    rows = sorted(
        json.dumps([sorted(labels), compartment, account_id, properties], sort_keys=True)
        for (labels, compartment, account_id), properties in state["profiles"].items()
    )
    digest = hashlib.sha256()
    for row in [*rows, json.dumps(state["points"])]:
        digest.update(row.encode())
    return digest.hexdigest()[:16]


def counters_add_up(execution: Execution) -> bool:
    """Every line is counted once: processed lines are the sum of the outcome counters."""
    counters = execution.counters()
    outcomes = sum(counters[name] or 0 for name in Execution.COUNTERS)
    return counters["processed"] == counters["total"] == outcomes


# --- a Redis server of our own -----------------------------------------------------------------


class RedisServer:
    """`redis-server` on a free port, with an append-only file so a restart keeps the queue
    (as a production broker is configured); stopped and started again by the test."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.process: subprocess.Popen | None = None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ],
            stdout=(self.folder / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for(self.ping, timeout=20, message="redis-server to answer")

    def ping(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), 1) as s,
        ):
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
        return False

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()  # SIGTERM: redis writes its append-only file and exits
        self.process.wait(20)
        self.process = None


__all__ = [
    "CRM",
    "RedisServer",
    "Workers",
    "counters_add_up",
    "mixed_import",
    "needs_postgres_and_redis",
    "profiles_checksum",
    "report",
    "setting",
    "wait_for",
    "worker_env",
    "workers",
]
