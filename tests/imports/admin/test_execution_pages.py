"""The execution's page (counters, errors, progress, cancel, retry, failed lines), the list of
executions and the document imports, scoped to the user's datamarts."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.utils.html import strip_tags

from imports.formats import FileFormat, detect_format
from imports.models import DocumentImport, Execution
from imports.runner import execution_run
from imports.services import execution_start
from imports.uploads import document_import_for_upload
from tests.imports.admin.conftest import EXECUTIONS

CSV = (
    b"user_account_id,compartment_id,$compartment_id,$user_account_id,firstname,age:int\r\n"
    b"c-1,1606,1606,c-1,David,41\r\n"
    b"c-2,1606,1606,c-2,Eve,forty\r\n"
    b"c-3,1606,1606,c-3,Zoe,33\r\n"
    b"c-4,9999,9999,c-4,Bob,20\r\n"
)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def start(datamart, content: bytes = CSV, name: str = "crm.csv", user=None) -> Execution:
    fmt = detect_format(name) or FileFormat.NDJSON
    return execution_start(
        document_import=document_import_for_upload(datamart=datamart, file_format=fmt),
        upload=ContentFile(content, name=name),
        file_name=name,
        created_by=user,
        file_format=fmt.value,
        enqueue=False,
    )


def run(execution: Execution) -> Execution:
    execution_run(execution_id=execution.pk, worker="test")
    execution.refresh_from_db()
    return execution


@pytest.fixture
def finished(datamart, crm_compartment, importer) -> Execution:
    return run(start(datamart, user=importer))


def page_of(client, execution: Execution):
    return client.get(f"{EXECUTIONS}{execution.pk}/change/")


def test_execution_page_shows_status_counters_and_errors(importer_client, finished, importer):
    assert finished.status == Execution.Status.SUCCEEDED
    response = page_of(importer_client, finished)
    assert response.status_code == 200
    page = response.content.decode()
    counters = {name: value for name, _label, value in response.context["counters"]}
    assert counters == {
        "total": 4,
        "processed": 4,
        "created": 2,
        "updated": 0,
        "deleted": 0,
        "unchanged": 0,
        "not_found": 0,
        "failed": 2,
    }
    assert 'id="execution-status">SUCCEEDED<' in page
    assert 'aria-valuenow="100"' in page
    # The errors table: line, identifier, field, code, message.
    rows = [(error.line, error.error_code) for error in response.context["errors"]]
    assert rows == [(3, "INVALID_CELL"), (5, "UNKNOWN_COMPARTMENT")]
    assert "compartment_id=1606,user_account_id=c-2" in page.replace("<wbr>", "")
    assert "crm.csv" in page and "ines" in page  # the file and its uploader
    # Finished: no polling, no cancel; the failed lines can be downloaded.
    assert "this page updates by itself" not in page and "<script>" not in page
    assert 'id="cancel-execution"' not in page and 'id="retry-execution"' not in page
    assert 'id="failed-lines"' in page


def test_a_running_execution_page_polls_its_progress(importer_client, datamart, importer):
    execution = start(datamart, user=importer)
    page = page_of(importer_client, execution).content.decode()
    assert "this page updates by itself" in page
    assert f'data-progress-url="{EXECUTIONS}{execution.pk}/progress/"' in page
    assert 'id="cancel-execution"' in page
    progress = importer_client.get(f"{EXECUTIONS}{execution.pk}/progress/")
    assert "no-store" in progress["Cache-Control"]
    assert progress.json() == {
        "id": execution.pk,
        "status": "PENDING",
        "status_label": "PENDING",
        "failures": "",
        "finished": False,
        "cancel_requested": False,
        "progress": 0.0,
        "percent": 0,
        "counters": {
            "total": None,
            "processed": 0,
            "created": 0,
            "updated": 0,
            "deleted": 0,
            "unchanged": 0,
            "not_found": 0,
            "failed": 0,
        },
        "error_code": "",
        "error_message": "",
    }


def test_progress_endpoint_follows_the_run(importer_client, datamart, crm_compartment, importer):
    execution = run(start(datamart, user=importer))
    payload = importer_client.get(f"{EXECUTIONS}{execution.pk}/progress/").json()
    assert (payload["status"], payload["finished"], payload["percent"]) == ("SUCCEEDED", True, 100)
    assert payload["counters"]["created"] == 2 and payload["counters"]["failed"] == 2


def test_cancel_button_cancels_a_pending_execution(importer_client, datamart, importer):
    execution = start(datamart, user=importer)
    response = importer_client.post(f"{EXECUTIONS}{execution.pk}/cancel/", follow=True)
    execution.refresh_from_db()
    assert execution.status == Execution.Status.CANCELED
    assert "The import is canceled: no line was applied." in response.content.decode()
    assert importer_client.get(f"{EXECUTIONS}{execution.pk}/cancel/").status_code == 405


def test_cancel_of_a_running_execution_asks_its_worker_to_stop(importer_client, datamart, importer):
    execution = start(datamart, user=importer)
    execution.transition(Execution.Status.RUNNING)
    response = importer_client.post(f"{EXECUTIONS}{execution.pk}/cancel/", follow=True)
    execution.refresh_from_db()
    assert execution.status == Execution.Status.RUNNING and execution.cancel_requested
    page = response.content.decode()
    assert "Cancel requested" in page
    assert 'id="cancel-execution"' not in page  # asked once


def test_retry_button_starts_the_same_file_again(
    importer_client, datamart, importer, django_capture_on_commit_callbacks
):
    execution = start(datamart, user=importer)
    importer_client.post(f"{EXECUTIONS}{execution.pk}/cancel/")
    page = page_of(importer_client, execution).content.decode()
    assert 'id="retry-execution"' in page
    with django_capture_on_commit_callbacks() as callbacks:
        response = importer_client.post(f"{EXECUTIONS}{execution.pk}/retry/")
    retry = Execution.objects.exclude(pk=execution.pk).get()
    assert response["Location"] == f"{EXECUTIONS}{retry.pk}/change/"
    assert (retry.status, retry.retry_of, retry.file.name) == (
        Execution.Status.PENDING,
        execution,
        execution.file.name,
    )
    assert [callback.args for callback in callbacks] == [(retry.pk,)]
    assert f"execution #{execution.pk}" in page_of(importer_client, retry).content.decode()


def test_retry_of_a_succeeded_execution_says_why_not(importer_client, finished):
    response = importer_client.post(f"{EXECUTIONS}{finished.pk}/retry/", follow=True)
    assert "Cannot retry: only a FAILED or CANCELED execution can be retried" in (
        response.content.decode()
    )
    assert Execution.objects.count() == 1


def test_failed_lines_download_in_the_source_format(importer_client, finished):
    response = importer_client.get(f"{EXECUTIONS}{finished.pk}/failed-lines/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="crm.failed-lines.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][-2:] == ["_line", "_error"]
    assert [(row[0], row[-2]) for row in rows[1:]] == [("c-2", "3"), ("c-4", "5")]


def test_a_failed_execution_shows_why(importer_client, datamart, importer):
    execution = run(start(datamart, content=b"\xff\xfe\x00a", name="crm.csv", user=importer))
    assert execution.status == Execution.Status.FAILED
    page = page_of(importer_client, execution).content.decode()
    assert 'id="execution-error"' in page and execution.error_code in page


def test_errors_are_paginated(importer_client, datamart, importer):
    lines = b"".join(b'{"operation":"UPSERT","email_hash":"h%d"}\n' % i for i in range(120))
    execution = run(start(datamart, content=lines, name="bad.ndjson", user=importer))
    assert execution.failed == 120
    first = page_of(importer_client, execution)
    assert [error.line for error in first.context["errors"]][:3] == [1, 2, 3]
    assert first.context["errors_pages"] == 3
    third = importer_client.get(f"{EXECUTIONS}{execution.pk}/change/?errors_page=3")
    assert [error.line for error in third.context["errors"]] == list(range(101, 121))
    assert "page 3 of 3" in third.content.decode()


def test_execution_list_shows_who_uploaded_what_when_and_the_outcome(
    importer_client, finished, datamart, other_datamart
):
    theirs = start(other_datamart)
    response = importer_client.get(EXECUTIONS)
    page = response.content.decode()
    assert [row.pk for row in response.context["cl"].result_list] == [finished.pk]
    assert "crm.csv" in page and "ines" in page and "SUCCEEDED" in page
    text = " ".join(strip_tags(page).split())
    assert "2 created · 2 errors" in text
    assert "SUCCEEDED · 2 of 4 lines failed" in text
    assert f"#{theirs.pk}<" not in page


def test_execution_list_filters_by_status_and_document_import(
    importer_client, finished, datamart, other_datamart, importer
):
    pending = start(datamart, content=b'{"operation":"DELETE","email_hash":"x"}\n', name="a.ndjson")
    DocumentImport.objects.create(datamart=other_datamart, name="Their nightly CRM")
    by_status = importer_client.get(EXECUTIONS, {"status__exact": "PENDING"})
    assert [row.pk for row in by_status.context["cl"].result_list] == [pending.pk]
    by_import = importer_client.get(
        EXECUTIONS, {"document_import": str(finished.document_import_id)}
    )
    assert [row.pk for row in by_import.context["cl"].result_list] == [finished.pk]
    assert "Their nightly CRM" not in by_import.content.decode()


def test_another_datamarts_execution_answers_404_everywhere(
    login, outsider, finished, django_capture_on_commit_callbacks
):
    client = login(outsider)
    for suffix in ("change/", "progress/", "failed-lines/", "history/"):
        assert client.get(f"{EXECUTIONS}{finished.pk}/{suffix}").status_code == 404, suffix
    for suffix in ("cancel/", "retry/"):
        assert client.post(f"{EXECUTIONS}{finished.pk}/{suffix}").status_code == 404, suffix
    assert client.get(f"{EXECUTIONS}999999/change/").status_code == 404
    assert Execution.objects.count() == 1


def test_without_the_import_permission_executions_are_out_of_reach(
    make_staff, datamart, login, finished
):
    client = login(make_staff("eve", [datamart]))
    assert client.get(EXECUTIONS).status_code == 403
    for suffix in ("change/", "progress/", "failed-lines/"):
        assert client.get(f"{EXECUTIONS}{finished.pk}/{suffix}").status_code == 403, suffix
    assert client.post(f"{EXECUTIONS}{finished.pk}/retry/").status_code == 403
    assert "Import executions" not in client.get("/admin/profiles/userprofile/").content.decode()


def test_viewers_of_executions_may_read_but_not_cancel_or_download(
    make_staff, datamart, login, finished
):
    viewer = make_staff("vic", [datamart])
    viewer.user_permissions.add(Permission.objects.get(codename="view_execution"))
    client = login(get_user_model().objects.get(pk=viewer.pk))
    page = page_of(client, finished).content.decode()
    assert "SUCCEEDED" in page and 'id="failed-lines"' not in page
    assert client.get(f"{EXECUTIONS}{finished.pk}/failed-lines/").status_code == 403
    assert client.post(f"{EXECUTIONS}{finished.pk}/cancel/").status_code == 403


def test_the_execution_page_reads_no_source_record(importer_client, finished):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert page_of(importer_client, finished).status_code == 200
    error_queries = [q["sql"] for q in queries if "imports_executionerror" in q["sql"]]
    assert error_queries and not any('."raw"' in sql for sql in error_queries)
