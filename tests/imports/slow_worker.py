"""The real Celery app, slowed down: each chunk waits IMPORT_TEST_CHUNK_SECONDS before it is
written, so a browser test can watch an import run (its pace, chart and errors) and cancel it.
The wait comes before the chunk's transaction, not inside it: on SQLite a transaction holds the
database's write lock, and a wait inside it kept the web server's Cancel waiting behind chunk
after chunk.
Started as `celery -A tests.imports.slow_worker worker`; nothing else differs from
`-A profiles_site`."""

from __future__ import annotations

import os
import time

from celery.signals import worker_process_init

from profiles_site.celery import app

__all__ = ["app"]


@worker_process_init.connect
def _slow_down(**kwargs) -> None:
    from imports import runner

    seconds = float(os.environ.get("IMPORT_TEST_CHUNK_SECONDS", "0.3"))
    commit_chunk = runner._commit_chunk

    def slow_commit_chunk(*args, **kwargs):
        time.sleep(seconds)
        return commit_chunk(*args, **kwargs)

    runner._commit_chunk = slow_commit_chunk
