"""A large export from the profile list, written by the real Celery worker process."""

from __future__ import annotations

import csv
import io

import pytest

from imports.models import ExportJob
from tests.imports.admin.conftest import EXPORT_URL
from tests.imports.helpers import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_worker_writes_a_large_export_and_its_page_links_to_the_file(
    celery_worker, importer_client, make_profile, datamart, crm_compartment, settings
):
    settings.EXPORT_BACKGROUND_ROWS = 3
    for index in range(5):
        make_profile(datamart, f"c-{index}", {"n": index, "formula": "=1+1"}, compartment_id=1606)
    make_profile(datamart, "elsewhere", {"n": 99})  # default compartment: filtered out
    response = importer_client.post(
        f"{EXPORT_URL}?compartment={crm_compartment.pk}",
        {"format": "0", "datamart": "1", "resource": "0"},
    )
    job = ExportJob.objects.get()
    assert response["Location"] == f"/admin/imports/exportjob/{job.pk}/change/"

    def written():
        job.refresh_from_db()
        return job.is_finished

    wait_for(written, timeout=60, message=f"export job {job.pk} to finish")
    assert (job.status, job.rows, job.error_message) == ("SUCCEEDED", 5, "")
    page = importer_client.get(response["Location"]).content.decode()
    assert "Download the file (5 profiles, CSV)" in page
    download = importer_client.get(f"/admin/imports/exportjob/{job.pk}/download/")
    assert download["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert sorted(row[rows[0].index("user_account_id")] for row in rows[1:]) == [
        f"c-{index}" for index in range(5)
    ]
    assert {row[rows[0].index("formula:json")] for row in rows[1:]} == {'"=1+1"'}
