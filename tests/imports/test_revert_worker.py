"""A 100k-line import reverted by a real Celery worker: the profiles table comes back."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core.files.base import ContentFile

from imports.models import DocumentImport, Execution
from imports.revert import execution_revert
from imports.services import execution_start
from profiles.models import ProfileChange, UserProfile
from tests.imports.helpers import account, import_file, mixed_import, ndjson, wait_finished

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def profiles_checksum() -> str:
    """md5 of the profiles table's rows in address order: point, compartment, account and
    properties (as canonical JSON). Ids and timestamps are left out: a profile brought back is
    a new row."""
    digest = hashlib.md5()
    rows = UserProfile.objects.order_by("user_point_id", "compartment_id", "user_account_id")
    for point, compartment, account_id, properties in rows.values_list(
        "user_point_id", "compartment_id", "user_account_id", "properties"
    ).iterator(chunk_size=5000):
        line = json.dumps([str(point), compartment, account_id, properties], sort_keys=True)
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()


def test_a_100k_line_import_reverted_on_the_worker_gives_the_table_back_and_so_does_its_revert(
    celery_worker, datamart, crm_compartment
):
    document_import = DocumentImport.objects.create(datamart=datamart, name="CRM")
    # 30k accounts before: the big file updates and deletes some, and creates the others.
    seed = import_file(
        document_import,
        ndjson(*(account(f"c{i}", {"seed": i, "nl": {"on": True}}) for i in range(30_000))),
    )
    assert seed.created == 30_000
    before = profiles_checksum()

    execution = execution_start(
        document_import=document_import,
        upload=ContentFile(mixed_import(100_000), name="big.ndjson"),
        file_name="big.ndjson",
    )
    wait_finished(execution, timeout=600)
    assert execution.status == Execution.Status.SUCCEEDED, execution.error_message
    assert execution.created and execution.updated and execution.deleted
    imported = profiles_checksum()
    assert imported != before

    revert = execution_revert(execution=execution)
    wait_finished(revert, timeout=600)
    assert revert.status == Execution.Status.SUCCEEDED, revert.error_message
    assert revert.worker == celery_worker.node_name
    assert revert.failed == 0 and revert.progress == 1.0
    assert revert.processed == ProfileChange.objects.filter(execution_id=execution.pk).count()
    # Deleted seeds come back, updated ones are restored, created profiles go.
    assert revert.created > 0 and revert.updated > 0 and revert.deleted > 0
    assert profiles_checksum() == before

    again = execution_revert(execution=revert)
    wait_finished(again, timeout=600)
    assert again.status == Execution.Status.SUCCEEDED, again.error_message
    assert again.failed == 0
    assert profiles_checksum() == imported
    assert (again.created, again.updated, again.deleted) == (
        revert.deleted,
        revert.updated,
        revert.created,
    )
