"""The parts of a split execution run in local processes (`import_profiles --parallel N`).

Each part runs in a forked child process with its own database connection and its own worker
name (host:pid), exactly as a Celery worker runs it (`imports.partitions.partition_run`); the
parent follows the execution's counters. A child killed midway leaves its part RUNNING at its
last checkpoint: a worker resumes it like any stale execution.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
from collections.abc import Callable

from django.db import connections

from imports.models import Execution
from imports.partitions import partition_run


def local_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _part_process(execution_id: int, number: int) -> None:
    try:
        partition_run(execution_id=execution_id, number=number, worker=local_worker_name())
    finally:
        connections.close_all()


def partitions_run_locally(
    *,
    execution_id: int,
    parts: list[int],
    progress: Callable[[int, int | None], None] | None = None,
    poll_seconds: float = 0.5,
) -> list[int | None]:
    """Run the parts, one process each, until all end; returns their exit codes."""
    connections.close_all()  # a forked child must not share the parent's connection
    context = multiprocessing.get_context("fork")
    processes = [
        context.Process(target=_part_process, args=(execution_id, number), name=f"part-{number}")
        for number in parts
    ]
    for process in processes:
        process.start()

    def report() -> None:
        if progress is not None:
            row = Execution.objects.filter(pk=execution_id).values("processed", "total_lines")
            state = row.first()
            if state is not None:
                progress(state["processed"], state["total_lines"])

    while any(process.is_alive() for process in processes):
        report()
        time.sleep(poll_seconds)
    for process in processes:
        process.join()
    report()
    return [process.exitcode for process in processes]
