"""Executions run by a real Celery worker process on the test database."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from imports.models import DocumentImport, Execution, ExecutionError
from imports.services import execution_cancel, execution_start
from profiles.models import ProfileChange, UserProfile
from profiles.services import compartment_create
from tests.imports.helpers import (
    CRM,
    account,
    mixed_import,
    ndjson,
    properties_of,
    run,
    snapshot,
    upload,
    wait_finished,
    wait_for,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_an_upload_is_queued_on_commit_and_a_worker_runs_it_to_succeeded(
    celery_worker, document_import
):
    content = ndjson(account("c1", {"firstname": "David"}), account("c2", {"firstname": "Ines"}))
    execution = execution_start(
        document_import=document_import,
        upload=ContentFile(content, name="crm.ndjson"),
        file_name="crm.ndjson",
    )
    wait_finished(execution)
    assert execution.status == Execution.Status.SUCCEEDED, execution.error_message
    assert execution.counters()["created"] == 2
    assert execution.worker == celery_worker.node_name
    assert properties_of("c2") == {"firstname": "Ines"}


def test_a_worker_killed_mid_file_resumes_on_restart_and_ends_like_a_clean_import(
    celery_worker, datamart, crm_compartment, other_datamart, settings
):
    settings.IMPORT_CHUNK_SIZE = 2000
    compartment_create(datamart=other_datamart, compartment_id=CRM, name="CRM")
    content = mixed_import(100_000)
    worker_settings = {"IMPORT_CHUNK_SIZE": "2000"}
    celery_worker.stop()
    celery_worker.start(env=worker_settings)

    document_import = DocumentImport.objects.create(datamart=datamart, name="CRM")
    execution = execution_start(
        document_import=document_import,
        upload=ContentFile(content, name="big.ndjson"),
        file_name="big.ndjson",
    )

    def far_enough():
        execution.refresh_from_db()
        return execution.checkpoint_line >= 24_000

    wait_for(far_enough, timeout=120, interval=0.05, message="some chunks to commit")
    celery_worker.kill()
    execution.refresh_from_db()
    assert execution.status == Execution.Status.RUNNING
    assert 24_000 <= execution.processed < 100_000
    assert execution.processed == execution.checkpoint_line  # counters commit with the checkpoint

    celery_worker.start(env=worker_settings)  # resumes what its previous life left (same node)
    clean = run(
        upload(DocumentImport.objects.create(datamart=other_datamart, name="clean"), content)
    )
    wait_finished(execution, timeout=180)
    assert execution.status == Execution.Status.SUCCEEDED, execution.error_message
    assert clean.status == Execution.Status.SUCCEEDED
    assert execution.counters() == clean.counters()
    assert execution.counters()["failed"] == 200
    assert snapshot(datamart.pk) == snapshot(other_datamart.pk)
    assert ExecutionError.objects.filter(execution=execution).count() == 200  # none twice
    assert ProfileChange.objects.filter(execution_id=execution.pk).count() == (
        ProfileChange.objects.filter(execution_id=clean.pk).count()
    )


def test_a_chunk_that_keeps_killing_its_worker_fails_after_a_few_attempts(
    celery_worker, document_import
):
    celery_worker.stop()
    celery_worker.start(
        app="tests.imports.faulty_worker",
        env={"IMPORT_TEST_CRASH_LINE": "3", "IMPORT_CHUNK_SIZE": "2", "IMPORT_MAX_ATTEMPTS": "2"},
    )
    execution = execution_start(
        document_import=document_import,
        upload=ContentFile(
            ndjson(*(account(f"c{i}", {"n": i}) for i in range(6))), name="p.ndjson"
        ),
        file_name="p.ndjson",
    )
    wait_finished(execution, timeout=120)
    assert execution.status == Execution.Status.FAILED
    assert execution.error_code == "CHUNK_KEEPS_FAILING"
    assert "after line 2" in execution.error_message
    assert execution.processed == 2 and properties_of("c1") == {"n": 1}
    assert properties_of("c2") is None


def test_cancel_stops_a_running_import_between_chunks(celery_worker, document_import):
    execution = execution_start(
        document_import=document_import,
        upload=ContentFile(
            ndjson(*(account(f"c{i}", {"n": i}) for i in range(40_000))), name="p.ndjson"
        ),
        file_name="p.ndjson",
    )

    def started():
        execution.refresh_from_db()
        return execution.checkpoint_line >= 2000

    wait_for(started, timeout=60, interval=0.05, message="the first chunks")
    execution_cancel(execution=execution)
    wait_finished(execution)
    assert execution.status == Execution.Status.CANCELED
    assert execution.processed < 40_000
    assert f"after line {execution.checkpoint_line}" in execution.error_message
    assert UserProfile.objects.count() == execution.processed


def test_running_the_task_again_for_a_finished_execution_changes_nothing(
    celery_worker, document_import
):
    from imports.tasks import run_execution

    execution = execution_start(
        document_import=document_import,
        upload=ContentFile(ndjson(account("c1", {"n": 1})), name="p.ndjson"),
        file_name="p.ndjson",
    )
    wait_finished(execution)
    before = (
        snapshot(document_import.datamart_id),
        execution.end_ts,
        ProfileChange.objects.count(),
    )
    run_execution.delay(execution.pk)
    run_execution.delay(execution.pk)
    second = execution_start(
        document_import=document_import,
        upload=ContentFile(ndjson(account("c2", {"n": 2})), name="q.ndjson"),
        file_name="q.ndjson",
    )
    wait_finished(second)  # the queue is processed in order: the duplicates ran before
    execution.refresh_from_db()
    assert (
        snapshot(document_import.datamart_id)["profiles"][
            (frozenset({f"account:{CRM}/c1"}), CRM, "c1")
        ]
    ) == {"n": 1}
    assert execution.end_ts == before[1]
    assert ProfileChange.objects.count() == before[2] + 1
