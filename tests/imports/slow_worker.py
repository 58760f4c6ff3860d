"""The real Celery app, slowed down: each chunk waits IMPORT_TEST_CHUNK_SECONDS before it is
written, so a browser test can watch an import run (its pace, chart and errors) and cancel it.
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
    batch_write = runner.batch_write

    def slow_batch_write(prepared, **options):
        time.sleep(seconds)
        return batch_write(prepared, **options)

    runner.batch_write = slow_batch_write
