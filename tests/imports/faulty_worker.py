"""The real Celery app with one fault: the pool process applying a given line dies (SIGKILL).

Started as `celery -A tests.imports.faulty_worker worker` with IMPORT_TEST_CRASH_LINE set, it
stands for a line whose chunk keeps killing the worker (an out-of-memory kill, a crash in a C
library). Nothing else differs from `-A profiles_site`.
"""

from __future__ import annotations

import os
import signal

from celery.signals import worker_process_init

from profiles_site.celery import app

__all__ = ["app"]


@worker_process_init.connect
def _arm(**kwargs) -> None:
    from imports import runner

    crash_line = int(os.environ["IMPORT_TEST_CRASH_LINE"])
    batch_write = runner.batch_write

    def crashing_batch_write(prepared, **options):
        if any(record.line == crash_line for record in prepared.records):
            os.kill(os.getpid(), signal.SIGKILL)
        return batch_write(prepared, **options)

    runner.batch_write = crashing_batch_write
