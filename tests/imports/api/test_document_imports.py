"""Document imports and executions: definitions, raw uploads, status, errors, cancel."""

from __future__ import annotations

import contextlib
import csv
import http.client
import io
import json
import time

import pytest

from imports.models import DocumentImport, Execution, ExecutionError
from profiles.models import UserProfile
from profiles.services import api_token_create
from tests.profiles.api.client import BASE, ApiClient, data, error
from tests.profiles.api.test_pagination import HOSTILE_CURSORS

IMPORTS = f"{BASE}/document_imports"
NDJSON = (
    b'{"operation":"UPSERT","compartment_id":1606,"user_account_id":"c9879698769OIUYOIY9879879",'
    b'"user_profile":{"$compartment_id":1606,"$user_account_id":"c9879698769OIUYOIY9879879",'
    b'"firstname":"David","newsletter_options":{"subscribed":true,"preferred_periods":"MONTHLY"}}}\n'
)
EXECUTION_KEYS = {
    "id",
    "document_import_id",
    "status",
    "created_ts",
    "start_ts",
    "end_ts",
    "progress",
    "counters",
}
COUNTER_KEYS = {
    "total",
    "processed",
    "created",
    "updated",
    "deleted",
    "unchanged",
    "not_found",
    "failed",
}


def create_import(api, **fields) -> dict:
    response = api.post(IMPORTS, {"name": "CRM daily", **fields})
    assert response.status_code == 201, response.content
    return data(response)


def upload(api, import_id: int, body: bytes = NDJSON, content_type="application/x-ndjson", **extra):
    return api.client.post(
        f"{IMPORTS}/{import_id}/executions", data=body, content_type=content_type, **extra
    )


def test_create_a_document_import_with_the_platforms_body(api):
    body = {
        "document_type": "USER_PROFILE",
        "mime_type": "APPLICATION_X_NDJSON",
        "encoding": "utf-8",
        "name": "CRM daily",
    }
    created = data(api.post(IMPORTS, body))
    assert created["id"] > 0 and created["datamart_id"] == 1 and created["created_ts"] > 0
    assert {key: created[key] for key in body} == body


def test_create_defaults_to_ndjson_utf8(api):
    created = create_import(api)
    assert (created["mime_type"], created["encoding"], created["document_type"]) == (
        "APPLICATION_X_NDJSON",
        "utf-8",
        "USER_PROFILE",
    )
    assert create_import(api, encoding="LATIN-1")["encoding"] == "iso8859-1"


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"name": "x", "id": 5}, "id", "READ_ONLY_FIELD"),
        ({"name": "x", "datamart_id": 2}, "datamart_id", "READ_ONLY_FIELD"),
        ({"name": "x", "created_ts": 1}, "created_ts", "READ_ONLY_FIELD"),
        ({"name": "x", "owner": "me"}, "owner", "UNKNOWN_FIELD"),
        ({"name": "x", "mime_type": "text/csv"}, "mime_type", "INVALID_FIELD"),
        ({"name": "x", "document_type": "USER_ACTIVITY"}, "document_type", "INVALID_FIELD"),
        ({"name": "x", "encoding": "klingon"}, "encoding", "INVALID_ENCODING"),
        # Known to Python, but no reader can cut its lines on bytes: refused now, not at upload.
        ({"name": "x", "encoding": "utf-16"}, "encoding", "UNSUPPORTED_ENCODING"),
        ({"name": ["x"]}, "name", "INVALID_FIELD"),
        ({}, "name", "INVALID_FIELD"),
    ],
)
def test_create_with_a_bad_body_answers_400(api, body, field, code):
    found = error(api.post(IMPORTS, body), 400)
    assert (found["field"], found["error_code"]) == (field, code)
    assert not DocumentImport.objects.exists()


def test_list_and_get_document_imports_with_paging(api):
    ids = [create_import(api, name=f"import {n}")["id"] for n in range(3)]
    first = api.get(IMPORTS, {"limit": "2"}).json()
    assert [item["id"] for item in first["data"]] == ids[:2]
    second = api.get(IMPORTS, {"limit": "2", "cursor": first["next"]}).json()
    assert [item["id"] for item in second["data"]] == ids[2:] and second["next"] is None
    assert data(api.get(f"{IMPORTS}/{ids[1]}"))["name"] == "import 1"
    assert error(api.get(f"{IMPORTS}/999999"), 404)


def test_another_datamarts_imports_and_executions_answer_404(api, other_api):
    created = create_import(api)
    execution = data(upload(api, created["id"]))
    theirs = "/api/v1/datamarts/2/document_imports"
    assert data(other_api.get(theirs)) == []
    for path in (
        f"{IMPORTS}/{created['id']}",
        f"{IMPORTS}/{created['id']}/executions",
        f"{IMPORTS}/{created['id']}/executions/{execution['id']}",
        f"{IMPORTS}/{created['id']}/executions/{execution['id']}/errors",
        f"{theirs}/{created['id']}",
        f"{theirs}/{created['id']}/executions/{execution['id']}",
    ):
        assert error(other_api.get(path), 404), path
    assert error(upload(other_api, created["id"]), 404)
    assert error(
        other_api.post(f"{IMPORTS}/{created['id']}/executions/{execution['id']}/cancel"), 404
    )
    assert Execution.objects.get().status == Execution.Status.PENDING


def test_upload_answers_at_once_with_the_pending_execution(api, token):
    created = create_import(api)
    response = upload(api, created["id"])
    assert response.status_code == 201
    execution = data(response)
    assert set(execution) == EXECUTION_KEYS and set(execution["counters"]) == COUNTER_KEYS
    assert execution["status"] == "PENDING" and execution["document_import_id"] == created["id"]
    assert execution["start_ts"] is None and execution["end_ts"] is None
    assert 0 <= execution["progress"] <= 1
    stored = Execution.objects.get(pk=execution["id"])
    assert stored.api_token_id == token[0].pk
    with stored.file.open("rb") as handle:
        assert handle.read() == NDJSON


def test_upload_keeps_the_content_disposition_file_name(api):
    created = create_import(api)
    execution = data(
        upload(api, created["id"], HTTP_CONTENT_DISPOSITION='attachment; filename="crm.ndjson"')
    )
    assert Execution.objects.get(pk=execution["id"]).file_name == "crm.ndjson"


@pytest.mark.parametrize(
    ("disposition", "stored"),
    [
        ('attachment; filename="evil\x00.ndjson"', "evil.ndjson"),
        ("attachment; filename*=utf-8''evil%00.ndjson", "evil.ndjson"),
        ('attachment; filename="a\tb\x1bc\x7f\u200b\u2028.ndjson"', "abc.ndjson"),
        ("attachment; filename*=utf-8''%ED%A0%80x.ndjson", "\ufffd\ufffd\ufffdx.ndjson"),
        ('attachment; filename="../../x.ndjson"', "x.ndjson"),
        ('attachment; filename="C:\\x\\y.csv"', "y.csv"),
        ('attachment; filename="/etc/passwd"', "passwd"),
        ('attachment; filename=".."', "upload.ndjson"),
        ('attachment; filename="\x00"', "upload.ndjson"),
        ('attachment; filename="données clients.ndjson"', "données clients.ndjson"),
    ],
)
def test_upload_stores_a_safe_base_name_of_the_content_disposition(api, disposition, stored):
    created = create_import(api)
    response = upload(api, created["id"], HTTP_CONTENT_DISPOSITION=disposition)
    assert response.status_code == 201, response.content
    execution = Execution.objects.get(pk=data(response)["id"])
    assert execution.file_name == stored
    assert execution.file.name.startswith("imports/") and ".." not in execution.file.name
    with execution.file.open("rb") as handle:
        assert handle.read() == NDJSON


@pytest.mark.postgres
def test_a_nul_in_the_upload_file_name_is_stored_without_it_on_postgresql(api):
    """PostgreSQL refuses a NUL in a text column at the INSERT: the name was a 500 before it
    was cleaned. (Inside the test's transaction, so no task is queued for a running worker.)"""
    created = create_import(api)
    disposition = 'attachment; filename="evil\x00.ndjson"'
    response = upload(api, created["id"], HTTP_CONTENT_DISPOSITION=disposition)
    assert response.status_code == 201, response.content
    assert Execution.objects.get(pk=data(response)["id"]).file_name == "evil.ndjson"


def test_upload_of_a_large_file_is_streamed_to_storage(api, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024  # bigger bodies go through a temporary file
    created = create_import(api)
    body = NDJSON * 2000
    execution = data(upload(api, created["id"], body))
    stored = Execution.objects.get(pk=execution["id"])
    assert stored.file_size == len(body)
    with stored.file.open("rb") as handle:
        assert handle.read() == body


@pytest.mark.parametrize(
    ("mime_type", "content_type"),
    [
        ("APPLICATION_X_NDJSON", "application/x-ndjson; charset=utf-8"),
        ("APPLICATION_X_NDJSON", "application/ndjson"),
        ("TEXT_CSV", "text/csv"),
        ("APPLICATION_JSON", "application/json"),
        ("APPLICATION_XLSX", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ],
)
def test_upload_accepts_the_content_type_of_the_definition(api, mime_type, content_type):
    created = create_import(api, mime_type=mime_type)
    assert upload(api, created["id"], b"x,y\n1,2\n", content_type).status_code == 201


@pytest.mark.parametrize("content_type", ["text/csv", "application/json", "text/plain", ""])
def test_upload_with_another_content_type_answers_415(api, content_type):
    created = create_import(api)
    response = upload(api, created["id"], NDJSON, content_type)
    assert error(response, 415)["error_code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert "application/x-ndjson" in response.json()["error"]
    assert not Execution.objects.exists()


def test_upload_of_an_empty_body_answers_400(api):
    created = create_import(api)
    # The test client drops Content-Type with an empty body; a real client sends it.
    response = upload(api, created["id"], b"", CONTENT_TYPE="application/x-ndjson")
    body = error(response, 400)
    assert (body["error_code"], body["error"]) == (
        "EMPTY_FILE",
        "the file is empty: send the file to import",
    )
    assert not Execution.objects.exists()


def test_a_chunked_upload_without_a_length_answers_411_not_an_empty_file(
    transactional_db, live_server, token, api
):
    """Over real HTTP, a client streaming its file (chunked, no Content-Length) is told to send
    a length; Django would read such a body as empty and answer EMPTY_FILE."""
    created = create_import(api)
    server = http.client.HTTPConnection(live_server.url.removeprefix("http://"), timeout=30)

    def streamed_file():
        yield NDJSON[:40]
        time.sleep(0.3)  # the server answers on the headers, before this part is sent
        yield NDJSON[40:]

    try:
        # The server answers and closes without reading the rest of the body: a broken pipe.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            server.request(
                "POST",
                f"{IMPORTS}/{created['id']}/executions",
                body=streamed_file(),  # an iterable: http.client sends it chunked
                headers={"Authorization": token[1], "Content-Type": "application/x-ndjson"},
            )
        response = server.getresponse()
        body = json.loads(response.read())
    finally:
        server.close()
    assert response.status == 411
    assert body["status"] == "error"
    assert body["error_code"] == "LENGTH_REQUIRED"
    assert "Content-Length" in body["error"]
    assert not Execution.objects.exists()


def test_an_upload_over_the_size_cap_is_a_failed_execution_and_its_body_is_not_read(
    api, settings, monkeypatch
):
    """SPEC §4: over the size cap the execution fails, FILE_TOO_LARGE; the cap is checked on
    the declared Content-Length, before a byte of the body is read or stored."""
    settings.IMPORT_MAX_FILE_BYTES = 10
    created = create_import(api)
    from imports.api.parsers import RawUploadParser

    monkeypatch.setattr(RawUploadParser, "parse", None)  # reading the body would fail
    response = upload(
        api, created["id"], HTTP_CONTENT_DISPOSITION='attachment; filename="crm.ndjson"'
    )
    execution = data(response)
    assert response.status_code == 201
    assert execution["status"] == "FAILED"
    assert execution["error"]["error_code"] == "FILE_TOO_LARGE"
    assert f"{len(NDJSON)} bytes, over the limit of 10 bytes" in execution["error"]["message"]
    stored = Execution.objects.get()
    assert (stored.file_name, stored.file_size, stored.file.name) == ("crm.ndjson", len(NDJSON), "")
    listed = data(api.get(f"{IMPORTS}/{created['id']}/executions"))
    assert [(item["id"], item["status"]) for item in listed] == [(stored.pk, "FAILED")]


def test_an_upload_refuses_a_query_parameter_it_does_not_take(api):
    """A typo such as `update_stratgy` would otherwise import with the default strategy."""
    created = create_import(api)
    path = f"{IMPORTS}/{created['id']}/executions?update_stratgy=FORCE_REPLACE"
    response = api.client.post(path, data=NDJSON, content_type="application/x-ndjson")
    found = error(response, 400)
    assert (found["error_code"], found["field"]) == ("UNKNOWN_PARAMETER", "update_stratgy")
    assert not Execution.objects.exists()
    listed = api.get(f"{IMPORTS}/{created['id']}/executions?limt=5")
    assert error(listed, 400)["error_code"] == "UNKNOWN_PARAMETER"


def test_an_upload_in_another_encoding_says_which_in_its_content_type(
    api, crm_compartment, eager, django_capture_on_commit_callbacks
):
    """SPEC §3: an encoding other than the definition's (utf-8) applies when the upload says
    which: `charset` in its Content-Type."""
    created = create_import(api, mime_type="TEXT_CSV")
    latin = "email_hash,city\nh1,Besançon\n".encode("latin-1")
    path = f"{IMPORTS}/{created['id']}/executions"
    with django_capture_on_commit_callbacks(execute=True):
        # generic(): the bytes as they are (post() would re-encode them in the charset).
        response = api.client.generic("POST", path, latin, "text/csv; charset=latin-1")
    execution = data(api.get(f"{IMPORTS}/{created['id']}/executions/{data(response)['id']}"))
    assert execution["status"] == "SUCCEEDED" and execution["counters"]["created"] == 1
    assert UserProfile.objects.get().properties == {"city": "Besançon"}
    assert Execution.objects.get().encoding == "iso8859-1"  # the codec latin-1 names
    found = error(api.client.generic("POST", path, latin, "text/csv; charset=klingon"), 400)
    assert (found["error_code"], found["field"]) == ("INVALID_ENCODING", "charset")
    assert Execution.objects.count() == 1


def test_the_failed_lines_of_an_upload_in_another_encoding_say_which(
    api, crm_compartment, eager, django_capture_on_commit_callbacks
):
    """The failed-lines file is written in the upload's encoding, and its Content-Type says
    which, so a browser or a client decodes `Besançon` right."""
    created = create_import(api, mime_type="TEXT_CSV")
    latin = "email_hash,age:int,city\nh1,x,Besançon\n".encode("latin-1")
    path = f"{IMPORTS}/{created['id']}/executions"
    with django_capture_on_commit_callbacks(execute=True):
        response = api.client.generic("POST", path, latin, "text/csv; charset=latin-1")
    failed = api.client.get(f"{path}/{data(response)['id']}/failed_lines")
    assert failed["Content-Type"] == "text/csv; charset=iso8859-1"
    assert "Besançon" in b"".join(failed.streaming_content).decode("iso8859-1")


def test_upload_defaults_can_be_chosen(api):
    created = create_import(api)
    path = f"{IMPORTS}/{created['id']}/executions?update_strategy=FORCE_REPLACE"
    response = api.client.post(path, data=NDJSON, content_type="application/x-ndjson")
    stored = Execution.objects.get(pk=data(response)["id"])
    assert stored.default_update_strategy == "FORCE_REPLACE"
    bad = f"{IMPORTS}/{created['id']}/executions?merge_objects=perhaps"
    response = api.client.post(bad, data=NDJSON, content_type="application/x-ndjson")
    assert error(response, 400)["error_code"] == "INVALID_MERGE_OBJECTS"


def test_executions_list_newest_first_and_get_one(api):
    created = create_import(api)
    ids = [data(upload(api, created["id"]))["id"] for _ in range(3)]
    listed = api.get(f"{IMPORTS}/{created['id']}/executions", {"limit": "2"}).json()
    assert [item["id"] for item in listed["data"]] == ids[::-1][:2]
    rest = api.get(f"{IMPORTS}/{created['id']}/executions", {"cursor": listed["next"]}).json()
    assert [item["id"] for item in rest["data"]] == ids[:1]
    one = data(api.get(f"{IMPORTS}/{created['id']}/executions/{ids[0]}"))
    assert one["id"] == ids[0] and set(one) == EXECUTION_KEYS


def test_an_execution_is_found_only_under_its_own_import(api):
    first, second = create_import(api), create_import(api)
    execution = data(upload(api, first["id"]))
    assert error(api.get(f"{IMPORTS}/{second['id']}/executions/{execution['id']}"), 404)


def test_errors_are_listed_in_line_order_with_paging(api):
    created = create_import(api)
    execution = Execution.objects.get(pk=data(upload(api, created["id"]))["id"])
    for line in (5, 2, 9):
        ExecutionError.objects.create(
            execution=execution,
            line=line,
            identifier=f"email_hash=h{line}",
            error_code="RESERVED_KEY",
            message="custom property key '$x' uses the reserved '$' prefix",
        )
    path = f"{IMPORTS}/{created['id']}/executions/{execution.pk}/errors"
    first = api.get(path, {"limit": "2"}).json()
    assert first["data"] == [
        {
            "line": 2,
            "identifier": "email_hash=h2",
            "error_code": "RESERVED_KEY",
            "message": "custom property key '$x' uses the reserved '$' prefix",
        },
        {
            "line": 5,
            "identifier": "email_hash=h5",
            "error_code": "RESERVED_KEY",
            "message": "custom property key '$x' uses the reserved '$' prefix",
        },
    ]
    rest = api.get(path, {"limit": "2", "cursor": first["next"]}).json()
    assert [item["line"] for item in rest["data"]] == [9] and rest["next"] is None


@pytest.mark.parametrize("cursor", HOSTILE_CURSORS[:3] + ["not base64!"])
def test_the_import_lists_answer_400_to_a_hostile_cursor(api, cursor):
    created = create_import(api)
    execution = data(upload(api, created["id"]))
    executions = f"{IMPORTS}/{created['id']}/executions"
    for path in (IMPORTS, executions, f"{executions}/{execution['id']}/errors"):
        body = error(api.get(path, {"cursor": cursor}), 400)
        assert (body["error_code"], body["field"]) == ("INVALID_CURSOR", "cursor"), path


def test_cancel_answers_the_execution(api):
    created = create_import(api)
    execution = data(upload(api, created["id"]))
    response = api.post(f"{IMPORTS}/{created['id']}/executions/{execution['id']}/cancel")
    assert response.status_code == 200
    canceled = data(response)
    assert canceled["id"] == execution["id"] and set(canceled) == EXECUTION_KEYS
    assert canceled["status"] in {"CANCELED", "PENDING", "RUNNING"}
    assert error(api.post(f"{IMPORTS}/{created['id']}/executions/999999/cancel"), 404)


def test_the_platforms_documented_flow(
    api, crm_compartment, django_capture_on_commit_callbacks, monkeypatch
):
    """Create a document import, post an NDJSON execution, poll it, read the profile."""
    from profiles_site.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)
    created = create_import(
        api, document_type="USER_PROFILE", mime_type="APPLICATION_X_NDJSON", encoding="utf-8"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(api, created["id"])
    assert response.status_code == 201 and data(response)["status"] == "PENDING"
    polled = data(api.get(f"{IMPORTS}/{created['id']}/executions/{data(response)['id']}"))
    assert set(polled) == EXECUTION_KEYS
    assert polled["status"] == "SUCCEEDED", polled
    assert polled["counters"]["created"] == 1 and polled["progress"] == 1
    selector = "compartment_id=1606,user_account_id=c9879698769OIUYOIY9879879"
    profile = data(
        api.get(
            f"{BASE}/user_points/{selector}/user_profiles/compartment_id=1606"
            "/user_account_id=c9879698769OIUYOIY9879879"
        )
    )
    assert profile["firstname"] == "David"
    assert profile["newsletter_options"] == {"subscribed": True, "preferred_periods": "MONTHLY"}


def test_a_staff_upload_records_the_user(datamart):
    from django.contrib.auth import get_user_model
    from django.test import Client

    admin = get_user_model().objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(admin)
    created = data(ApiClient(client=client).post(IMPORTS, {"name": "from the browser"}))
    response = upload(ApiClient(client=client), created["id"])
    assert Execution.objects.get(pk=data(response)["id"]).created_by == admin
    assert api_token_create  # tokens and sessions share the endpoints


def test_a_failed_execution_says_why_and_a_successful_one_has_no_error(
    api, crm_compartment, django_capture_on_commit_callbacks, monkeypatch
):
    """SPEC §5: a FAILED execution adds "error": {"error_code", "message"}."""
    from profiles_site.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)
    xlsx = create_import(api, mime_type="APPLICATION_XLSX")
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(
            api,
            xlsx["id"],
            body=b"this is not a workbook",
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    failed = data(api.get(f"{IMPORTS}/{xlsx['id']}/executions/{data(response)['id']}"))
    assert failed["status"] == "FAILED"
    assert set(failed) == EXECUTION_KEYS | {"error"}
    assert set(failed["error"]) == {"error_code", "message"}
    assert failed["error"]["error_code"] and failed["error"]["message"]
    listed = data(api.get(f"{IMPORTS}/{xlsx['id']}/executions"))
    assert listed[0]["error"] == failed["error"]

    ndjson = create_import(api)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(api, ndjson["id"])
    succeeded = data(api.get(f"{IMPORTS}/{ndjson['id']}/executions/{data(response)['id']}"))
    assert succeeded["status"] == "SUCCEEDED" and "error" not in succeeded


def test_the_errors_page_reads_no_source_record(api):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    created = create_import(api)
    execution = Execution.objects.get(pk=data(upload(api, created["id"]))["id"])
    ExecutionError.objects.create(
        execution=execution, line=1, error_code="X", message="m", raw={"a": "x" * 10_000}
    )
    with CaptureQueriesContext(connection) as queries:
        body = api.get(f"{IMPORTS}/{created['id']}/executions/{execution.pk}/errors").json()
    assert [item["line"] for item in body["data"]] == [1]
    error_queries = [q["sql"] for q in queries if "imports_executionerror" in q["sql"]]
    assert error_queries and not any('."raw"' in sql for sql in error_queries)


def test_an_api_client_downloads_the_failed_lines_and_uploads_them_corrected(
    api, other_api, crm_compartment, eager, django_capture_on_commit_callbacks
):
    """SPEC §4: the line errors are downloadable as a file of the failed lines, in the source
    format with `_line` and `_error` added; corrected, it imports as it is."""
    created = create_import(api, mime_type="TEXT_CSV")
    executions = f"{IMPORTS}/{created['id']}/executions"
    csv_text = "email_hash,age:int,city\nh1,30,Paris\nh2,thirty,Lyon\nh3,41,Nice\nh4,x,Metz\n"
    with django_capture_on_commit_callbacks(execute=True):
        first = data(upload(api, created["id"], csv_text.encode(), content_type="text/csv"))
    response = api.client.get(f"{executions}/{first['id']}/failed_lines", HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="upload.failed-lines.csv"' in response["Content-Disposition"]
    failed = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(failed)))
    assert rows[0] == ["email_hash", "age:int", "city", "_line", "_error"]
    assert [row[:4] for row in rows[1:]] == [
        ["h2", "thirty", "Lyon", "3"],
        ["h4", "x", "Metz", "5"],
    ]
    assert "age:int" in rows[1][4]
    corrected = failed.replace('"thirty"', '"30"').replace('"x"', '"52"')
    with django_capture_on_commit_callbacks(execute=True):
        second = data(upload(api, created["id"], corrected.encode(), content_type="text/csv"))
    polled = data(api.get(f"{executions}/{second['id']}"))
    assert (polled["status"], polled["counters"]["created"], polled["counters"]["failed"]) == (
        "SUCCEEDED",
        2,
        0,
    )
    assert UserProfile.objects.get(properties__city="Metz").properties == {
        "age": 52,
        "city": "Metz",
    }
    # Another datamart's token, or a missing execution, finds nothing.
    theirs = other_api.client.get(f"{executions}/{first['id']}/failed_lines")
    assert error(theirs, 404)["error_code"] == "NOT_FOUND"
    assert error(api.client.get(f"{executions}/999999/failed_lines"), 404)


def test_an_upload_can_be_told_that_empty_cells_are_empty_strings(
    api, crm_compartment, eager, django_capture_on_commit_callbacks
):
    """SPEC §3: an empty cell means the key is absent, unless the import is told otherwise:
    `?empty_cells=empty_string` (untyped and `:str` columns; a typed one stays absent)."""
    created = create_import(api, mime_type="TEXT_CSV")
    executions = f"{IMPORTS}/{created['id']}/executions"
    body = b"email_hash,city,note:str,age:int\ne1,,,\n"
    with django_capture_on_commit_callbacks(execute=True):
        told = api.client.post(
            f"{executions}?empty_cells=empty_string", data=body, content_type="text/csv"
        )
    assert data(api.get(f"{executions}/{data(told)['id']}"))["status"] == "SUCCEEDED"
    assert UserProfile.objects.get().properties == {"city": "", "note": ""}
    # Not told: the same line's empty cells are absent keys, so it changes nothing.
    with django_capture_on_commit_callbacks(execute=True):
        default = upload(api, created["id"], body, content_type="text/csv")
    assert data(api.get(f"{executions}/{data(default)['id']}"))["counters"]["unchanged"] == 1
    assert UserProfile.objects.get().properties == {"city": "", "note": ""}
    found = error(
        api.client.post(f"{executions}?empty_cells=blank", data=body, content_type="text/csv"), 400
    )
    assert (found["error_code"], found["field"]) == ("INVALID_PARAMETER", "empty_cells")
