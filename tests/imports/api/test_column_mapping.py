"""A document import's column mapping through the API: written, validated, applied by the run."""

from __future__ import annotations

import csv
import hashlib
import io

import pytest

from imports.models import DocumentImport, Execution
from profiles.models import UserEmail, UserProfile
from tests.imports.api.test_document_imports import IMPORTS, create_import, upload
from tests.imports.helpers import CRM_COLUMN_MAPPING
from tests.profiles.api.client import data, error

CRM_MAPPING = CRM_COLUMN_MAPPING
CRM_CSV = (
    b"Customer ID,E-mail,First Name,Birth date,Opt-in,Notes\n"
    b"C-1,  Ann@Example.COM ,Ann,1990-05-01,yes,VIP\n"
    b"C-2,bob@example.com,Bob,,no,\n"
)


def sha256_email(address: str) -> str:
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


def test_the_mapping_is_a_field_of_post_get_and_patch(api):
    created = create_import(api, mime_type="TEXT_CSV", column_mapping=CRM_MAPPING)
    assert created["column_mapping"] == CRM_MAPPING
    assert data(api.get(f"{IMPORTS}/{created['id']}"))["column_mapping"] == CRM_MAPPING
    patched = data(
        api.patch(f"{IMPORTS}/{created['id']}", {"column_mapping": {"Id": "email_hash"}})
    )
    assert patched["column_mapping"] == {"Id": "email_hash"}
    assert patched["name"] == "CRM daily" and patched["mime_type"] == "TEXT_CSV"
    renamed = data(api.patch(f"{IMPORTS}/{created['id']}", {"name": "CRM weekly"}))
    assert renamed["column_mapping"] == {"Id": "email_hash"}  # left out: kept
    cleared = data(api.patch(f"{IMPORTS}/{created['id']}", {"column_mapping": None}))
    assert cleared["column_mapping"] is None
    assert create_import(api)["column_mapping"] is None


@pytest.mark.parametrize(
    ("mapping", "field", "code"),
    [
        ({"Customer ID": "customer.id:date"}, "column_mapping.Customer ID", "INVALID_TYPE"),
        ({"Customer ID": "_error"}, "column_mapping.Customer ID", "UNKNOWN_TARGET"),
        ({"A": "email_hash", "E-mail": "email_hash"}, "column_mapping.E-mail", "DUPLICATE_TARGET"),
        (
            {"E-mail": {"to": "email_hash", "transform": "md5"}},
            "column_mapping.E-mail",
            "INVALID_TRANSFORM",
        ),
        (["user_account_id"], "column_mapping", "INVALID_COLUMN_MAPPING"),
    ],
)
def test_a_bad_mapping_answers_400_naming_the_header(api, mapping, field, code):
    found = error(
        api.post(IMPORTS, {"name": "x", "mime_type": "TEXT_CSV", "column_mapping": mapping}), 400
    )
    assert (found["field"], found["error_code"]) == (field, code)
    header = field.partition(".")[2]
    assert header in found["error"]
    assert not DocumentImport.objects.exists()
    created = create_import(api, mime_type="TEXT_CSV")
    found = error(api.patch(f"{IMPORTS}/{created['id']}", {"column_mapping": mapping}), 400)
    assert (found["field"], found["error_code"]) == (field, code)
    assert DocumentImport.objects.get().column_mapping is None


def test_json_document_imports_take_no_mapping(api):
    found = error(api.post(IMPORTS, {"name": "x", "column_mapping": {"A": "email_hash"}}), 400)
    assert (found["field"], found["error_code"]) == (
        "column_mapping",
        "COLUMN_MAPPING_NOT_APPLICABLE",
    )
    created = create_import(api, mime_type="TEXT_CSV", column_mapping={"A": "email_hash"})
    found = error(
        api.patch(f"{IMPORTS}/{created['id']}", {"mime_type": "APPLICATION_X_NDJSON"}), 400
    )
    assert found["error_code"] == "COLUMN_MAPPING_NOT_APPLICABLE"


def test_a_crm_file_runs_through_the_mapping(
    api, crm_compartment, eager, django_capture_on_commit_callbacks
):
    created = create_import(api, mime_type="TEXT_CSV", column_mapping=CRM_MAPPING)
    with django_capture_on_commit_callbacks(execute=True):
        execution = data(upload(api, created["id"], CRM_CSV, content_type="text/csv"))
    polled = data(api.get(f"{IMPORTS}/{created['id']}/executions/{execution['id']}"))
    assert polled["status"] == "SUCCEEDED" and polled["counters"]["created"] == 2, polled
    ann = UserEmail.objects.get(email_hash=sha256_email("ann@example.com")).user_point
    profile = UserProfile.objects.get(user_point=ann)
    assert profile.user_account_id == "C-1"
    assert profile.properties == {
        "first_name": "Ann",
        "birth_date": "1990-05-01",
        "newsletter": {"opt_in": True},
    }
    # Changing the mapping later does not change how that execution reads its file.
    api.patch(f"{IMPORTS}/{created['id']}", {"column_mapping": {"Id": "email_hash"}})
    assert Execution.objects.get().column_mapping == CRM_MAPPING


def test_a_header_the_mapping_does_not_name_fails_the_execution_before_any_write(
    api, crm_compartment, eager, django_capture_on_commit_callbacks
):
    mapping = {key: value for key, value in CRM_MAPPING.items() if key != "Notes"}
    created = create_import(api, mime_type="TEXT_CSV", column_mapping=mapping)
    with django_capture_on_commit_callbacks(execute=True):
        execution = data(upload(api, created["id"], CRM_CSV, content_type="text/csv"))
    polled = data(api.get(f"{IMPORTS}/{created['id']}/executions/{execution['id']}"))
    assert polled["status"] == "FAILED"
    assert polled["error"]["error_code"] == "UNMAPPED_HEADER"
    assert "'Notes'" in polled["error"]["message"]
    assert polled["counters"]["processed"] == 0
    assert not UserProfile.objects.exists()


def test_failed_lines_keep_the_source_headers_and_reimport_through_the_mapping(
    api, crm_compartment, eager, django_capture_on_commit_callbacks
):
    created = create_import(api, mime_type="TEXT_CSV", column_mapping=CRM_MAPPING)
    body = CRM_CSV + b"C-3,carl@example.com,Carl,,perhaps,\n"
    with django_capture_on_commit_callbacks(execute=True):
        execution = data(upload(api, created["id"], body, content_type="text/csv"))
    errors = data(api.get(f"{IMPORTS}/{created['id']}/executions/{execution['id']}/errors"))
    assert [(e["line"], e["error_code"]) for e in errors] == [(4, "INVALID_CELL")]
    assert "'Opt-in'" in errors[0]["message"]
    from imports.services import execution_failed_lines

    failed = b"".join(execution_failed_lines(execution=Execution.objects.get()).chunks)
    header, row = csv.reader(io.StringIO(failed.decode()))
    assert header == [*CRM_CSV.decode().splitlines()[0].split(","), "_line", "_error"]
    assert row[:6] == ["C-3", "carl@example.com", "Carl", "", "perhaps", ""]
    fixed = failed.replace(b"perhaps", b"yes")
    with django_capture_on_commit_callbacks(execute=True):
        again = data(upload(api, created["id"], fixed, content_type="text/csv"))
    polled = data(api.get(f"{IMPORTS}/{created['id']}/executions/{again['id']}"))
    assert polled["status"] == "SUCCEEDED" and polled["counters"]["created"] == 1, polled
