"""Faults: workers killed or stopped, the database connection cut, the broker restarted.

Each scenario imports into datamart 1 through real worker processes while a clean import of the
same file runs in this process into datamart 2; the two must end equal (profiles checksum,
counters), whatever happened to the workers.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest
from django.core.files.base import ContentFile
from django.db import connection

from imports.models import DocumentImport, Execution, ExecutionError
from imports.services import execution_start
from profiles.services import compartment_create
from tests.imports.helpers import run, upload
from tests.reliability.harness import (
    CRM,
    RedisServer,
    counters_add_up,
    mixed_import,
    needs_postgres_and_redis,
    profiles_checksum,
    report,
    setting,
    wait_for,
)

pytestmark = needs_postgres_and_redis

CHUNK = "2000"


@pytest.fixture
def two_datamarts(datamart, crm_compartment, other_datamart):
    compartment_create(datamart=other_datamart, compartment_id=CRM, name="CRM")
    return datamart, other_datamart


def start_import(datamart, content: bytes, name: str = "big.ndjson") -> Execution:
    document_import = DocumentImport.objects.create(datamart=datamart, name=name)
    return execution_start(
        document_import=document_import,
        upload=ContentFile(content, name=name),
        file_name=name,
    )


def clean_import_in_background(datamart, content: bytes) -> tuple[threading.Thread, dict]:
    """The same file imported in this process (no fault), in a thread with its own connection."""
    outcome: dict = {}

    def work() -> None:
        try:
            started = time.monotonic()
            execution = run(
                upload(DocumentImport.objects.create(datamart=datamart, name="clean"), content)
            )
            outcome.update(execution=execution, seconds=time.monotonic() - started)
        except BaseException as failure:  # reported by the test
            outcome["failure"] = failure
        finally:
            connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    return thread, outcome


def finished(execution: Execution) -> bool:
    execution.refresh_from_db()
    return execution.is_finished


def compare_with_clean(execution: Execution, clean: Execution) -> dict:
    """The faulted import against the clean one: same statuses, counters and table."""
    execution.refresh_from_db()
    assert execution.status == Execution.Status.SUCCEEDED, execution.error_message
    assert clean.status == Execution.Status.SUCCEEDED, clean.error_message
    assert execution.counters() == clean.counters()
    assert counters_add_up(execution), execution.counters()
    faulted, reference = (
        profiles_checksum(execution.datamart_id),
        profiles_checksum(clean.datamart_id),
    )
    assert faulted == reference
    errors = ExecutionError.objects.filter(execution=execution).count()
    assert errors == execution.failed  # no line error recorded twice
    return {"checksum": faulted, "errors": errors, **execution.counters()}


def test_a_worker_sigkilled_three_times_mid_import_ends_like_a_clean_import(
    two_datamarts, workers, settings
):
    lines = setting("KILLED_IMPORT_LINES", 100_000)
    rng = random.Random(setting("SEED", 12))
    settings.IMPORT_CHUNK_SIZE = int(CHUNK)
    target, reference = two_datamarts
    content = mixed_import(lines)
    worker = workers.start("killed", IMPORT_CHUNK_SIZE=CHUNK)
    started = time.monotonic()
    execution = start_import(target, content)
    clean_thread, clean = clean_import_in_background(reference, content)

    kill_points = sorted(rng.sample(range(lines // 10, lines * 8 // 10, 1000), 3))
    kills = []
    for point in kill_points:

        def past(point=point):
            execution.refresh_from_db()
            return execution.checkpoint_line >= point or execution.is_finished

        wait_for(past, timeout=240, message=f"the import to pass line {point}")
        time.sleep(rng.uniform(0, 0.3))  # anywhere inside the next chunk
        workers.sample_memory()
        worker.kill()
        execution.refresh_from_db()
        kills.append(execution.checkpoint_line)
        assert execution.status == Execution.Status.RUNNING
        assert execution.processed == execution.checkpoint_line  # counters commit with it
        workers.restart(worker, IMPORT_CHUNK_SIZE=CHUNK)  # resumes its former life's work

    wait_for(lambda: finished(execution), timeout=300, interval=0.2, message="the import")
    elapsed = time.monotonic() - started
    workers.sample_memory()
    clean_thread.join(300)
    assert "failure" not in clean, clean.get("failure")
    figures = compare_with_clean(execution, clean["execution"])
    report(
        "Faults: worker SIGKILLed 3 times",
        did=f"{lines:,}-line NDJSON import (chunks of {CHUNK}); worker SIGKILLed just past "
        f"checkpoints {kills} (random, seed {setting('SEED', 12)}), restarted each time; the "
        "same file imported cleanly into another datamart meanwhile",
        measured=f"SUCCEEDED in {elapsed:.1f} s (clean import {clean['seconds']:.1f} s); "
        f"checksum {figures['checksum']} = clean; counters equal and add up: "
        f"processed {figures['processed']:,} = created {figures['created']:,} + updated "
        f"{figures['updated']:,} + … + failed {figures['failed']}; {figures['errors']} line "
        f"errors (none twice); worker peak RSS {workers.peak_mb:.0f} MB",
    )


def backends_of_other_sessions() -> list[tuple[int, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, state FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"
        )
        return cursor.fetchall()


def test_a_terminated_database_connection_retries_the_chunk_with_the_same_result(
    two_datamarts, workers, settings
):
    lines = setting("TERMINATED_IMPORT_LINES", 20_000)
    settings.IMPORT_CHUNK_SIZE = int(CHUNK)
    target, reference = two_datamarts
    content = mixed_import(lines)
    clean = run(upload(DocumentImport.objects.create(datamart=reference, name="clean"), content))
    worker = workers.start("terminated", IMPORT_CHUNK_SIZE=CHUNK)
    execution = start_import(target, content)
    wait_for(
        lambda: execution.refresh_from_db() or execution.checkpoint_line >= 4000,
        timeout=120,
        message="a few chunks",
    )
    terminated = []
    deadline = time.monotonic() + 60
    while len(terminated) < 3 and time.monotonic() < deadline:
        for pid, state in backends_of_other_sessions():  # the worker's chunk, mid-transaction
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            terminated.append(state)
            time.sleep(0.5)
            break
        time.sleep(0.01)
    wait_for(lambda: finished(execution), timeout=180, interval=0.2, message="the import")
    figures = compare_with_clean(execution, clean)
    retries = worker.log().count("applying it again")
    assert terminated, "no backend of the worker was caught running"
    assert retries >= 1, worker.log()
    report(
        "Faults: chunk's database connection terminated",
        did=f"{lines:,}-line import; pg_terminate_backend on the worker's backend "
        f"{len(terminated)} times while it was {sorted(set(terminated))}",
        measured=f"{retries} chunk retries logged, SUCCEEDED; checksum {figures['checksum']} "
        f"= clean; counters equal (processed {figures['processed']:,}, failed "
        f"{figures['failed']})",
    )


def test_a_worker_stopped_with_sigterm_mid_chunk_hands_the_import_over(
    two_datamarts, workers, settings
):
    lines = setting("DEPLOY_IMPORT_LINES", 30_000)
    settings.IMPORT_CHUNK_SIZE = int(CHUNK)
    target, reference = two_datamarts
    content = mixed_import(lines)
    old = workers.start("deploy-old", IMPORT_CHUNK_SIZE=CHUNK)
    execution = start_import(target, content)
    clean_thread, clean = clean_import_in_background(reference, content)
    wait_for(
        lambda: execution.refresh_from_db() or execution.checkpoint_line >= 6000,
        timeout=120,
        message="a few chunks",
    )
    time.sleep(0.1)  # inside a chunk
    stopping = time.monotonic()
    old.stop()  # SIGTERM to the worker and its pool, as a deploy does
    stop_seconds = time.monotonic() - stopping
    execution.refresh_from_db()
    at_stop = (execution.status, execution.checkpoint_line)
    assert execution.processed == execution.checkpoint_line
    new = workers.start("deploy-new", IMPORT_CHUNK_SIZE=CHUNK)
    wait_for(lambda: finished(execution), timeout=100, interval=0.2, message="the import")
    clean_thread.join(300)
    assert "failure" not in clean, clean.get("failure")
    figures = compare_with_clean(execution, clean["execution"])
    report(
        "Faults: worker stopped with SIGTERM (deploy)",
        did=f"{lines:,}-line import; SIGTERM to the worker's process group mid-chunk, then a "
        "new worker (another node name) started",
        measured=f"old worker gone in {stop_seconds:.1f} s, execution then {at_stop[0]} at "
        f"line {at_stop[1]:,}; finished by {execution.worker or new.node_name}: SUCCEEDED, "
        f"checksum {figures['checksum']} = clean, counters equal",
    )


def test_a_broker_restart_leaves_no_execution_pending_or_running_and_none_applied_twice(
    two_datamarts, workers, worker_env, tmp_path, settings
):
    from profiles_site.celery import app

    files = setting("BROKER_RESTART_FILES", 4)
    lines = setting("BROKER_RESTART_LINES", 4_000)
    settings.IMPORT_CHUNK_SIZE = 1000
    datamart, reference = two_datamarts
    redis = RedisServer(tmp_path)
    redis.start()
    # The test sends the tasks itself, to a Redis of its own that it can restart.
    own_broker = app.connection_for_write(redis.url(5))
    try:
        workers.env = {**worker_env, "CELERY_BROKER_URL": redis.url(5)}
        workers.start("broker", IMPORT_CHUNK_SIZE="1000")
        executions = [
            upload(
                DocumentImport.objects.create(datamart=datamart, name=f"f{n}"),
                mixed_import(lines, prefix=f"f{n}-"),
            )
            for n in range(files)
        ]
        for execution in executions:
            app.send_task("imports.run_execution", args=[execution.pk], connection=own_broker)
        wait_for(
            lambda: Execution.objects.filter(status=Execution.Status.RUNNING).exists(),
            timeout=60,
            message="one execution running",
        )
        before = dict(Counter(Execution.objects.values_list("status", flat=True)))
        restarted = time.monotonic()
        redis.stop()
        time.sleep(2)
        redis.start()
        down = time.monotonic() - restarted
        for execution in executions:
            wait_for(lambda e=execution: finished(e), timeout=240, message=f"{execution}")
        assert {e.status for e in executions} == {Execution.Status.SUCCEEDED}, [
            (e.pk, e.status, e.error_message) for e in executions
        ]
        processed = []
        for execution in executions:
            assert counters_add_up(execution), execution.counters()
            assert execution.failed == ExecutionError.objects.filter(execution=execution).count()
            processed.append(execution.processed)
        # Applied once: the table equals the same files imported once each, in the same order.
        for n in range(files):
            run(
                upload(
                    DocumentImport.objects.create(datamart=reference, name=f"f{n}"),
                    mixed_import(lines, prefix=f"f{n}-"),
                )
            )
        checksum = profiles_checksum(datamart.pk)
        assert checksum == profiles_checksum(reference.pk)
        report(
            "Faults: Redis (broker) restarted",
            did=f"{files} imports of {lines:,} lines queued on a Redis of our own "
            f"(append-only file); Redis stopped and started again ({down:.1f} s down) while "
            f"executions were {before}",
            measured=f"all {files} SUCCEEDED, none left PENDING or RUNNING; each counted once "
            f"(processed {processed}, line errors = failed); table checksum {checksum} = the "
            "same files imported once each",
        )
    finally:
        workers.stop_all()
        redis.stop()
        own_broker.close()
