"""A real `celery -A profiles_site worker` process for tests, pointed at the test database.

The worker reads the same settings module as the site, from the environment: DATABASE_URL
names the pytest-django test database (the SQLite file, or test_<name> on PostgreSQL),
PROFILES_VAR_DIR a per-session folder holding the filesystem broker's queue (unless
CELERY_BROKER_URL names redis:// or amqp://, as CI does), MEDIA_ROOT the uploads folder
the test process stores files in.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the database Django is connected to (the test database)."""
    if settings_dict["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(settings_dict['NAME']).resolve()}"
    user = quote(settings_dict.get("USER") or "")
    password = settings_dict.get("PASSWORD")
    credentials = f"{user}:{quote(password)}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgresql://{credentials}{host}:{port}/{settings_dict['NAME']}"


class CeleryWorker:
    """Start, stop and SIGKILL a worker; its output goes to a log file kept for failures."""

    def __init__(self, *, env: dict[str, str], log_dir: Path, name: str = "imports-test") -> None:
        self.base_env = env
        self.log_dir = log_dir
        self.name = name
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.starts = 0
        self.custom = False  # started with other settings than the session's

    @property
    def node_name(self) -> str:
        return f"{self.name}@{os.uname().nodename}"

    def start(
        self,
        *,
        env: dict[str, str] | None = None,
        app: str = "profiles_site",
        concurrency: int = 1,
        timeout: float = 60,
    ) -> None:
        assert self.process is None, "the worker is running already"
        self.starts += 1
        self.custom = bool(env) or app != "profiles_site" or concurrency != 1
        self.log_path = self.log_dir / f"{self.name}-{self.starts}.log"
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                app,
                "worker",
                "--pool=prefork",
                f"--concurrency={concurrency}",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "-n",
                self.node_name,
            ],
            cwd=ROOT,
            env={**self.base_env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() reaches the pool too
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited at start:\n{self.log()}")
            if b" ready." in self.log_path.read_bytes():
                return
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"the worker did not start in {timeout} s:\n{self.log()}")

    def _signal(self, signum: int, timeout: float) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        # The pool's children are in the group too: wait until none is left.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        self.process = None
        self.custom = False

    def kill(self) -> None:
        """SIGKILL the worker and its pool: no cleanup, no acknowledgement, nothing."""
        self._signal(signal.SIGKILL, 10)

    def stop(self) -> None:
        self._signal(signal.SIGTERM, 30)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-6000:]
