"""Export from the profile list: the list's filters, formula escaping, streaming, the background
path for large sets, and files that re-import to the same data."""

from __future__ import annotations

import csv
import io
import json
import os

import openpyxl
import pytest
from django.contrib import admin
from django.contrib.admin import AdminSite
from django.http import StreamingHttpResponse
from import_export.admin import ImportExportMixin

from imports import export_files
from imports.admin.profile_import_export import ProfileImportExportAdmin
from imports.exports import export_job_run
from imports.formats import FileFormat, format_spec
from imports.models import ExportJob
from imports.preview import import_preview
from imports.readers import ReaderOptions
from imports.resources import format_class_for
from imports.runner import execution_run
from imports.services import execution_start
from imports.uploads import document_import_for_upload
from imports.writers import FORMULA_PREFIXES
from profiles.admin.user_profiles import UserProfileAdmin
from profiles.identifiers import AccountIdentifier, EmailIdentifier, UserAgentIdentifier
from profiles.merge import MergeMode, Strategy
from profiles.models import UserProfile
from tests.factories import command_write
from tests.imports.admin.conftest import EXPORT_URL, PROFILES
from tests.profiles.admin.test_profile_list import HOSTILE_PROPERTY_FILTERS

FORCE_REPLACE = MergeMode(Strategy.FORCE_REPLACE)
FORMAT_INDEX = {"CSV": "0", "XLSX": "1", "JSON": "2", "NDJSON": "3"}
FORMULAS = ["=1+1", "+33 6 12 34 56 78", "-minus", "@SUM(A1)", "\ttab", "\rreturn", "=HYPERLINK()"]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def upsert(datamart, identifier, user_profile: dict) -> UserProfile:
    return command_write(
        datamart, identifier=identifier, user_profile=user_profile, mode=FORCE_REPLACE
    ).profile


@pytest.fixture
def crowd(datamart, crm_compartment):
    """Profiles of every shape: accounts, anonymous ones, nested values, formulas, odd keys."""
    return [
        upsert(
            datamart,
            AccountIdentifier("c-1", 1606),
            {
                "$compartment_id": 1606,
                "$user_account_id": "c-1",
                "firstname": "David",
                "age": 41,
                "score": -2.5,
                "vip": True,
                "nothing": None,
                "nl": {"subscribed": True, "period": "MONTHLY"},
                "tags": ["a", "b"],
                "contracts": [{"id": "c1", "s": "on"}],
                "formula": "=1+1",
                "dotted.key": "x",
            },
        ),
        upsert(
            datamart,
            AccountIdentifier("=cmd|' /C calc'!A0", 1606),
            {"$compartment_id": 1606, "$user_account_id": "=cmd|' /C calc'!A0", "firstname": "-x"},
        ),
        # Anonymous, in the default compartment, of a point known by its email.
        upsert(datamart, EmailIdentifier("h-anon"), {"firstname": "Anon", "age": "41"}),
        # Anonymous in the CRM compartment, of a point known by its user agent.
        upsert(datamart, UserAgentIdentifier("vec:1"), {"$compartment_id": 1606, "city": "Nice"}),
        # An account profile whose point has no such account identifier, only an email.
        upsert(
            datamart,
            EmailIdentifier("h-k9"),
            {"$compartment_id": 1606, "$user_account_id": "k-9", "firstname": "Kay"},
        ),
    ]


def snapshot() -> dict:
    return {
        (str(p.user_point_id), p.compartment.compartment_id, p.user_account_id): p.properties
        for p in UserProfile.objects.select_related("compartment")
    }


def export(client, file_format: str, query: str = "", **fields) -> StreamingHttpResponse:
    data = {"format": FORMAT_INDEX[file_format], "datamart": "1", "resource": "0", **fields}
    response = client.post(f"{EXPORT_URL}{query}", data)
    assert response.status_code == 200, response.content[:2000]
    assert isinstance(response, StreamingHttpResponse)
    return response


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def saved(tmp_path, content: bytes, file_format: str) -> str:
    path = tmp_path / f"export.{file_format.lower()}"
    path.write_bytes(content)
    return str(path)


def test_without_the_export_permission_there_is_no_button_and_the_url_answers_403(
    make_staff, datamart, login, crowd
):
    client = login(make_staff("ivan", [datamart], ("profiles.import_profiles",)))
    page = client.get(PROFILES).content.decode()
    assert 'class="export_link"' not in page and 'class="import_link"' in page
    assert client.get(EXPORT_URL).status_code == 403
    assert client.post(EXPORT_URL, {"format": "0", "datamart": "1"}).status_code == 403


def test_export_button_carries_the_lists_filters(importer_client, crowd, crm_compartment):
    page = importer_client.get(PROFILES, {"compartment": crm_compartment.pk}).content.decode()
    assert f'{EXPORT_URL}?compartment={crm_compartment.pk}" class="export_link"' in page
    form = importer_client.get(
        EXPORT_URL, {"compartment": crm_compartment.pk, "property": "vip=true", "q": "c-1"}
    ).content.decode()
    assert "compartment <strong>CRM (1606)</strong>" in form
    assert "property <strong>vip=true</strong>" in form
    assert "search <strong>c-1</strong>" in form
    assert "1 profile matches" in form
    counted = importer_client.get(EXPORT_URL, {"compartment": crm_compartment.pk}).content
    assert "4 profiles match" in counted.decode()


@pytest.mark.parametrize("expression", HOSTILE_PROPERTY_FILTERS)
def test_the_export_page_says_a_property_filter_cannot_be_compared(
    importer_client, crowd, expression
):
    response = importer_client.get(EXPORT_URL, {"property": expression})
    assert response.status_code == 200
    shown = [str(message) for message in response.context["messages"]]
    assert len(shown) == 1 and shown[0], shown
    assert "0 profiles match" in response.content.decode()


@pytest.mark.parametrize("file_format", ["CSV", "XLSX", "JSON", "NDJSON"])
def test_export_keeps_the_lists_filters(importer_client, crowd, crm_compartment, file_format):
    query = f"?compartment={crm_compartment.pk}&property=firstname%3DDavid"
    content = body(export(importer_client, file_format, query))
    text = content.decode("utf-8", errors="replace") if file_format != "XLSX" else ""
    if file_format == "XLSX":
        sheet = openpyxl.load_workbook(io.BytesIO(content)).active
        text = json.dumps([[cell.value for cell in row] for row in sheet.iter_rows()])
    assert "David" in text
    for other in ("Anon", "Nice", "Kay"):
        assert other not in text


@pytest.mark.parametrize("file_format", ["CSV", "XLSX", "JSON", "NDJSON"])
def test_an_export_previews_as_all_unchanged(
    importer_client, crowd, datamart, tmp_path, file_format
):
    response = export(importer_client, file_format)
    assert f'.{file_format.lower()}"' in response["Content-Disposition"]
    path = saved(tmp_path, body(response), file_format)
    preview = import_preview(
        datamart=datamart,
        path=path,
        file_format=file_format,
        options=ReaderOptions(),
        default_mode=MergeMode(Strategy.PARTIAL_UPDATE, merge_objects=True),
    )
    assert preview.errors == []
    assert preview.counts == {
        "created": 0,
        "updated": 0,
        "deleted": 0,
        "unchanged": len(crowd),
        "not_found": 0,
        "failed": 0,
    }
    assert preview.warnings == []


@pytest.mark.parametrize("file_format", ["CSV", "XLSX", "NDJSON"])
def test_an_export_imported_through_the_pipeline_gives_back_the_same_profiles(
    importer_client, crowd, datamart, file_format
):
    content = body(export(importer_client, file_format))
    before = snapshot()
    UserProfile.objects.all().delete()  # the points and their identifiers stay
    fmt = FileFormat(file_format)
    execution = execution_start(
        document_import=document_import_for_upload(datamart=datamart, file_format=fmt),
        upload=io.BytesIO(content),
        file_name=f"export.{file_format.lower()}",
        file_format=fmt.value,
        enqueue=False,
    )
    execution_run(execution_id=execution.pk, worker="test")
    execution.refresh_from_db()
    assert (execution.status, execution.created, execution.failed) == ("SUCCEEDED", len(crowd), 0)
    assert snapshot() == before


def test_csv_export_escapes_formulas(importer_client, datamart, crm_compartment, tmp_path):
    for index, value in enumerate(FORMULAS):
        upsert(
            datamart,
            AccountIdentifier(value, 1606),
            {"$compartment_id": 1606, "$user_account_id": value, "note": value, "n": -index},
        )
    content = body(export(importer_client, "CSV"))
    rows = list(csv.reader(io.StringIO(content.decode(), newline="")))
    for row in rows:
        for cell in row:
            if cell.startswith(FORMULA_PREFIXES):
                float(cell)  # only a plain number may start with "-"
    notes = {row[rows[0].index("note:json")] for row in rows[1:]}
    assert notes == {json.dumps(value) for value in FORMULAS}
    accounts = {row[rows[0].index("user_account_id")] for row in rows[1:]}
    assert accounts == {"'" + value for value in FORMULAS}
    # And the file imports back to exactly the same values.
    preview = import_preview(
        datamart=datamart,
        path=saved(tmp_path, content, "CSV"),
        file_format="CSV",
        options=ReaderOptions(),
        default_mode=FORCE_REPLACE,
    )
    assert preview.counts["unchanged"] == len(FORMULAS) and preview.errors == []


def test_xlsx_export_holds_no_formula(importer_client, datamart, crm_compartment):
    for value in FORMULAS:
        upsert(
            datamart,
            AccountIdentifier(value.strip() or "x", 1606),
            {"$compartment_id": 1606, "$user_account_id": value.strip() or "x", "note": value},
        )
    sheet = openpyxl.load_workbook(io.BytesIO(body(export(importer_client, "XLSX")))).active
    for row in sheet.iter_rows():
        for cell in row:
            assert cell.data_type != "f"
            if isinstance(cell.value, str):
                assert not cell.value.startswith(FORMULA_PREFIXES), cell.value


def test_json_export_is_an_array_of_force_replace_commands(importer_client, crowd):
    commands = json.loads(body(export(importer_client, "JSON")))
    assert len(commands) == len(crowd)
    assert {command["update_strategy"] for command in commands} == {"FORCE_REPLACE"}
    david = next(c for c in commands if c["user_profile"].get("firstname") == "David")
    assert david["compartment_id"] == 1606 and david["user_account_id"] == "c-1"
    assert david["user_profile"]["nl"] == {"subscribed": True, "period": "MONTHLY"}
    anonymous = next(c for c in commands if c["user_profile"].get("firstname") == "Anon")
    assert anonymous["email_hash"] == "h-anon"
    assert "$user_account_id" not in anonymous["user_profile"]
    kay = next(c for c in commands if c["user_profile"].get("firstname") == "Kay")
    assert kay["email_hash"] == "h-k9" and kay["user_profile"]["$user_account_id"] == "k-9"


def test_ndjson_export_streams_in_chunks_as_rows_are_read(importer_client, crowd, monkeypatch):
    monkeypatch.setattr(export_files, "EXPORT_BATCH", 2)
    chunks = [chunk for chunk in export(importer_client, "NDJSON").streaming_content if chunk]
    assert len(chunks) == 3  # 5 profiles, 2 at a time
    assert sum(chunk.count(b"\n") for chunk in chunks) == len(crowd)


def test_an_empty_export_is_a_valid_file(importer_client, datamart):
    assert json.loads(body(export(importer_client, "JSON"))) == []
    assert body(export(importer_client, "NDJSON")) == b""


def test_a_user_of_several_datamarts_exports_one_datamart(
    crowd, other_datamart, login, django_user_model
):
    upsert(other_datamart, EmailIdentifier("h-other"), {"firstname": "Otto"})
    admin_user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client = login(admin_user)
    form = client.get(EXPORT_URL).content.decode()
    assert 'name="datamart"' in form and "Other (2)" in form
    text = body(export(client, "NDJSON", datamart="2")).decode()
    assert "Otto" in text and "David" not in text
    missing = client.post(EXPORT_URL, {"format": "3", "resource": "0"})
    assert "This field is required" in missing.content.decode()


def test_a_large_export_runs_in_the_background_and_links_to_its_file(
    importer_client, importer, crowd, crm_compartment, settings, django_capture_on_commit_callbacks
):
    settings.EXPORT_BACKGROUND_ROWS = 2
    query = f"?compartment={crm_compartment.pk}"
    with django_capture_on_commit_callbacks() as callbacks:
        response = importer_client.post(
            f"{EXPORT_URL}{query}", {"format": "0", "datamart": "1", "resource": "0"}
        )
    job = ExportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/imports/exportjob/{job.pk}/change/"
    assert (job.status, job.created_by, job.filters) == (
        "PENDING",
        importer,
        f"compartment={crm_compartment.pk}",
    )
    assert len(callbacks) == 1 and callbacks[0].func.__self__.name == "imports.run_export_job"
    assert callbacks[0].args == (job.pk,)
    assert job.filters_label == "compartment: CRM (1606)"
    pending_page = importer_client.get(response["Location"]).content.decode()
    assert 'http-equiv="refresh"' in pending_page and "PENDING" in pending_page
    assert "compartment: CRM (1606)" in pending_page

    export_job_run(export_job_id=job.pk)  # what the worker does
    job.refresh_from_db()
    assert (job.status, job.rows) == ("SUCCEEDED", 4)
    page = importer_client.get(response["Location"]).content.decode()
    assert 'id="export-download"' in page and 'http-equiv="refresh"' not in page
    download = importer_client.get(f"/admin/imports/exportjob/{job.pk}/download/")
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert len(rows) == 5  # the header and the four CRM profiles: the filter was kept
    assert "Anon" not in json.dumps(rows)
    export_job_run(export_job_id=job.pk)  # a second delivery leaves the finished job alone
    job.refresh_from_db()
    assert job.status == "SUCCEEDED" and os.path.exists(job.file.path)


def test_export_jobs_are_scoped_and_need_the_export_permission(
    importer, crowd, login, outsider, make_staff, datamart
):
    job = ExportJob.objects.create(datamart=datamart, created_by=importer, file_format="CSV")
    export_job_run(export_job_id=job.pk)
    other = login(outsider)
    for suffix in ("change/", "download/"):
        assert other.get(f"/admin/imports/exportjob/{job.pk}/{suffix}").status_code == 404
    no_export = login(make_staff("imogen", [datamart], ("profiles.import_profiles",)))
    assert no_export.get(f"/admin/imports/exportjob/{job.pk}/change/").status_code == 403
    assert no_export.get("/admin/imports/exportjob/").status_code == 403


def test_a_background_export_fails_when_its_user_lost_the_permission(importer, crowd, datamart):
    job = ExportJob.objects.create(datamart=datamart, created_by=importer, file_format="CSV")
    importer.user_permissions.remove(*importer.user_permissions.filter(codename="export_profiles"))
    export_job_run(export_job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "FAILED" and "may not export" in job.error_message
    assert not job.file


def test_every_format_of_the_screens_is_offered(importer_client):
    page = importer_client.get(EXPORT_URL).content.decode()
    for title in ("csv", "xlsx", "json", "ndjson"):
        assert f">{title}</option>" in page


@pytest.mark.parametrize("sort", ["1", "5", "-1", "-5"])
def test_an_export_follows_the_lists_sort_in_the_request_and_in_the_worker(
    importer_client, importer, crowd, settings, sort
):
    listed = importer_client.get(PROFILES, {"o": sort}).context["cl"].result_list
    expected = [profile.properties.get("firstname") for profile in listed]
    streamed = body(export(importer_client, "NDJSON", f"?o={sort}")).decode().splitlines()
    assert [json.loads(line)["user_profile"].get("firstname") for line in streamed] == expected
    settings.EXPORT_BACKGROUND_ROWS = 1
    importer_client.post(
        f"{EXPORT_URL}?o={sort}", {"format": "3", "datamart": "1", "resource": "0"}
    )
    job = ExportJob.objects.get()
    assert job.filters == f"o={sort}" + (f"&ordering={ORDERINGS[sort]}" if sort != "-5" else "")
    export_job_run(export_job_id=job.pk)
    job.refresh_from_db()
    written = job.file.open("rb").read().decode().splitlines()
    assert [json.loads(line)["user_profile"].get("firstname") for line in written] == expected


# The list's column positions (after the checkboxes): 1 is the profile (id), 5 the last change.
ORDERINGS = {"1": "id", "-1": "-id", "5": "last_modified_ts%2C-id"}


def test_the_worker_reads_the_profiles_without_the_admin(
    importer, crowd, datamart, crm_compartment, monkeypatch
):
    def no_admin(*args, **kwargs):
        raise AssertionError("the export worker asked the admin")

    monkeypatch.setattr(AdminSite, "get_model_admin", no_admin)
    job = ExportJob.objects.create(
        datamart=datamart,
        created_by=importer,
        file_format="CSV",
        filters=f"compartment={crm_compartment.pk}&q=c-1",
    )
    export_job_run(export_job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.rows, job.error_message) == ("SUCCEEDED", 1, "")


def test_export_files_are_named_and_typed_as_the_screens_formats(importer_client):
    for file_format in FileFormat:
        screen_format = format_class_for(file_format)()
        assert format_spec(file_format).content_type == screen_format.get_content_type()
        assert format_spec(file_format).extension == screen_format.get_extension()


def test_one_admin_serves_the_profile_list_with_its_import_and_export_screens():
    registered = admin.site.get_model_admin(UserProfile)
    assert isinstance(registered, ProfileImportExportAdmin)
    assert isinstance(registered, UserProfileAdmin) and isinstance(registered, ImportExportMixin)
