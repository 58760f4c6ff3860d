"""Celery tasks: they take ids and call the runner or the services; running one twice gives the
same database. The services (and `imports.revert`) queue these tasks, so the tasks import them
inside the function: the one import cycle the layout keeps."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading

from celery import shared_task
from celery.signals import worker_ready
from django.db import close_old_connections, connections

from imports.partitions import execution_dispatch, partition_run
from imports.runner import shutdown_requested

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, ignore_result=True, name="imports.run_execution")
def run_execution(self, execution_id: int) -> None:
    """Run the execution here (a revert, or an import unsplit), or split the import and queue
    its parts (IMPORT_PARALLELISM)."""
    from imports.revert import execution_is_revert, revert_run

    worker = self.request.hostname or ""
    if execution_is_revert(execution_id):
        revert_run(execution_id=execution_id, worker=worker)
        return
    with _stop_after_the_chunk_on_sigterm():
        parts = execution_dispatch(execution_id=execution_id, worker=worker)
    if parts is None:  # handed over by a stopping worker: the next one goes on from the checkpoint
        run_execution.delay(execution_id)
        return
    for number in parts:
        run_execution_part.delay(execution_id, number)


@shared_task(bind=True, acks_late=True, ignore_result=True, name="imports.run_execution_part")
def run_execution_part(self, execution_id: int, number: int) -> None:
    with _stop_after_the_chunk_on_sigterm():
        handed_over = partition_run(
            execution_id=execution_id, number=number, worker=self.request.hostname or ""
        )
    if handed_over:  # by a stopping worker: the next one goes on from the part's checkpoint
        run_execution_part.delay(execution_id, number)


@contextlib.contextmanager
def _stop_after_the_chunk_on_sigterm():
    """While an execution (or a part of one) runs, SIGTERM (sent to the worker's process group: a deploy) makes the
    pool process finish its chunk and hand the execution over, instead of dying mid-chunk with
    the execution left RUNNING for a worker that is gone. A second SIGTERM stops it at once.

    Installed per task: the pool puts its own handler back after each process starts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def stop_after_the_chunk(signum, frame) -> None:
        if shutdown_requested.is_set():
            signal.signal(signal.SIGTERM, previous)
            signal.raise_signal(signal.SIGTERM)
            return
        logger.info("asked to stop: the execution is handed over after this chunk")
        shutdown_requested.set()

    signal.signal(signal.SIGTERM, stop_after_the_chunk)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@shared_task(ignore_result=True, name="imports.resume_executions")
def resume_executions(worker: str = "") -> list[int]:
    """Queue again the executions a dead worker left behind (also fit for a beat schedule)."""
    from imports.services import executions_to_resume

    ids = executions_to_resume(worker=worker)
    for execution_id in ids:
        run_execution.delay(execution_id)
    return ids


@worker_ready.connect
def _resume_on_start(sender=None, **kwargs) -> None:
    """A worker that starts resumes what its previous life (same node name) left RUNNING."""
    worker = getattr(sender, "hostname", "") or ""
    close_old_connections()
    try:
        ids = resume_executions(worker)
        if ids:
            logger.info("queued again the unfinished executions %s", ids)
    except Exception:  # a worker must start even when the database is briefly away
        logger.exception("could not look for unfinished executions")
    finally:
        connections.close_all()  # the pool's children must not share this process's connection


@shared_task(acks_late=True, ignore_result=True, name="imports.run_export_job")
def run_export_job(export_job_id: int) -> None:
    from imports.exports import export_job_run

    export_job_run(export_job_id=export_job_id)
