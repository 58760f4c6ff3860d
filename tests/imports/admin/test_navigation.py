"""Getting around the back-office: the execution page links what it names, a document
import lists its executions, the exports list links each file, the user links lead to the API."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from imports.models import ExportJob
from tests.imports.admin.conftest import EXECUTIONS
from tests.imports.admin.test_execution_pages import run, start


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def test_the_execution_page_links_its_datamart_document_import_and_uploader(
    datamart, crm_compartment, importer, importer_client, django_user_model, login
):
    execution = run(start(datamart, user=importer))
    page = importer_client.get(f"{EXECUTIONS}{execution.pk}/change/").content.decode()
    assert f'<a href="/admin/profiles/datamart/{datamart.pk}/change/">Demo (1)</a>' in page
    document_import = execution.document_import
    assert (
        f'<a href="/admin/imports/documentimport/{document_import.pk}/change/">'
        f"{document_import.name}</a>"
    ) in page
    # the uploader's page, for whoever may open users
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    page = login(root).get(f"{EXECUTIONS}{execution.pk}/change/").content.decode()
    assert f'<a href="/admin/auth/user/{importer.pk}/change/">ines</a>' in page


def test_a_document_imports_page_lists_its_executions(
    datamart, crm_compartment, importer, importer_client
):
    first = run(start(datamart, user=importer))
    second = run(start(datamart, user=importer, name="again.csv"))
    url = f"/admin/imports/documentimport/{first.document_import_id}/change/"
    page = importer_client.get(url).content.decode()
    assert page.index(f'href="{EXECUTIONS}{second.pk}/change/"') < page.index(
        f'href="{EXECUTIONS}{first.pk}/change/"'
    )
    assert "again.csv" in page and "2 created · 2 errors" in page
    assert page.count("SUCCEEDED · 2 of 4 lines failed") == 2  # as every status is shown


def test_the_exports_list_links_each_written_file(datamart, importer, importer_client):
    written = ExportJob.objects.create(
        datamart=datamart, created_by=importer, file_format="CSV", status="SUCCEEDED", rows=1
    )
    written.file.save("profiles.csv", ContentFile(b"a\r\n"))
    pending = ExportJob.objects.create(datamart=datamart, created_by=importer, file_format="CSV")
    page = importer_client.get("/admin/imports/exportjob/").content.decode()
    download = f"/admin/imports/exportjob/{written.pk}/download/"
    assert f'href="{download}"' in page
    assert f"/admin/imports/exportjob/{pending.pk}/download/" not in page
    response = importer_client.get(download)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"a\r\n"


def test_the_user_links_lead_to_the_api_root_and_its_docs(importer_client):
    page = importer_client.get("/admin/").content.decode()
    assert '<a href="/api/v1/" id="api-root-link">API</a>' in page
    assert '<a href="/api/v1/docs" id="api-docs-link">API docs</a>' in page
    assert importer_client.get("/api/v1/docs").status_code == 200
