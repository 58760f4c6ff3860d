"""A real web server (gunicorn, as README's production section runs it) and a small load client.

Used by the reliability tests (tests/reliability/) and by bench/api_bench.py: requests go over
TCP to separate worker processes, so what is measured is what a client of the deployed app
sees (a connection per request: gunicorn's sync workers close it after each answer).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """`gunicorn profiles_site.wsgi` with N sync workers on a free port of 127.0.0.1."""

    def __init__(self, *, env: dict[str, str], log_path: Path, workers: int = 2) -> None:
        self.env = env
        self.log_path = log_path
        self.workers = workers
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, *, ready_path: str = "/api/v1/", timeout: float = 60) -> None:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(self.workers),
                "--bind",
                self.host,
                "--worker-tmp-dir",
                "/dev/shm" if Path("/dev/shm").is_dir() else "/tmp",
                "profiles_site.wsgi:application",
            ],
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT), **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited at start:\n{self.log()}")
            with contextlib.suppress(OSError):
                status, _ = request(self.host, "GET", ready_path)
                if status < 500:
                    return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer in {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    def __enter__(self) -> Gunicorn:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def request(
    host: str, method: str, path: str, *, body: bytes | None = None, headers: dict | None = None
) -> tuple[int, bytes]:
    """One request on a new connection: (status, body)."""
    connection = http.client.HTTPConnection(host, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# What a load client sends: (method, path, body, headers), chosen afresh for each request.
Call = tuple[str, str, bytes | None, dict]


@dataclass
class LoadResult:
    """Requests sent during a timed run, their latencies and their statuses."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # connection errors, first bodies of 5xx

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        """Milliseconds; the nearest-rank percentile."""
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    def summary(self) -> str:
        statuses = ", ".join(
            f"{status}: {count}" for status, count in sorted(self.statuses.items())
        )
        return (
            f"{self.requests} requests in {self.seconds:.1f} s: {self.per_second:.0f} req/s, "
            f"p50 {self.percentile(0.5):.1f} ms, p99 {self.percentile(0.99):.1f} ms "
            f"(mean {statistics.fmean(self.latencies) * 1000 if self.latencies else 0:.1f} ms); "
            f"statuses {statuses}"
        )


def load_run(
    host: str, next_call: Callable[[int], Call], *, clients: int, seconds: float
) -> LoadResult:
    """`clients` threads, each sending `next_call(client number)` back to back for `seconds`."""
    result = LoadResult()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(number: int) -> None:
        while time.monotonic() < deadline:
            method, path, body, headers = next_call(number)
            started = time.perf_counter()
            try:
                status, content = request(host, method, path, body=body, headers=headers)
            except OSError as failure:
                with lock:
                    result.failures.append(f"{method} {path}: {failure!r}")
                continue
            elapsed = time.perf_counter() - started
            with lock:
                result.latencies.append(elapsed)
                result.statuses[status] += 1
                if status >= 500 and len(result.failures) < 5:
                    result.failures.append(f"{method} {path}: {status} {content[:300]!r}")

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - started
    return result
