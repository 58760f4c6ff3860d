"""Executions run by a real Celery worker process on the test database."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from imports.models import Execution
from imports.services import execution_start
from tests.imports.helpers import account, ndjson, properties_of, wait_finished

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
