"""Import screens, steps 1 and 2: upload, preview (nothing written), confirm (a queued execution)."""

from __future__ import annotations

import io
import os
from datetime import timedelta

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from imports.models import DocumentImport, Execution, ExecutionError
from imports.uploads import STAGED_DIR, staged_uploads_clean
from profiles.models import ProfileChange, UserAccount, UserEmail, UserPoint, UserProfile
from tests.imports.admin.conftest import CONFIRM_URL, IMPORT_URL, PROFILES

CSV = (
    b"user_account_id,compartment_id,$compartment_id,$user_account_id,firstname,age:int,"
    b"nl.subscribed:bool\r\n"
    b"c-1,1606,1606,c-1,David,41,true\r\n"
    b"c-2,1606,1606,c-2,Eve,not-a-number,false\r\n"
    b"c-3,1606,,,Anon,30,\r\n"
)


def upload(client, content: bytes, name: str = "crm.csv", **fields):
    data = {
        "resource": "0",
        "import_file": SimpleUploadedFile(name, content),
        "format": "",
        "datamart": "1",
        "encoding": "utf-8",
        "update_strategy": "PARTIAL_UPDATE",
        "merge_objects": "on",
    }
    data.update(fields)
    return client.post(IMPORT_URL, data)


def table_counts() -> dict[str, int]:
    models = (
        UserPoint,
        UserAccount,
        UserEmail,
        UserProfile,
        ProfileChange,
        Execution,
        ExecutionError,
        DocumentImport,
    )
    return {model.__name__: model.objects.count() for model in models}


def staged_folders(settings) -> list[str]:
    root = os.path.join(settings.MEDIA_ROOT, STAGED_DIR)
    return sorted(os.listdir(root)) if os.path.isdir(root) else []


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def david(datamart, crm_compartment, make_profile):
    return make_profile(
        datamart, "c-1", {"firstname": "Dave", "city": "Paris"}, compartment_id=1606
    )


def test_profile_list_shows_import_and_export_buttons_to_staff_with_both_permissions(
    importer_client,
):
    page = importer_client.get(PROFILES).content.decode()
    assert 'class="import_link"' in page
    assert 'class="export_link"' in page
    assert "Import executions" in page


def test_without_the_import_permission_there_is_no_button_and_the_urls_answer_403(
    make_staff, datamart, login
):
    client = login(make_staff("nadia", [datamart], ("profiles.export_profiles",)))
    page = client.get(PROFILES).content.decode()
    assert 'class="import_link"' not in page
    assert 'class="export_link"' in page
    assert client.get(IMPORT_URL).status_code == 403
    assert upload(client, CSV).status_code == 403
    assert client.post(CONFIRM_URL, {"token": "0" * 32}).status_code == 403


def test_upload_shows_the_preview_and_writes_nothing(importer_client, david, settings):
    before = table_counts()
    response = upload(importer_client, CSV)
    assert response.status_code == 200
    page = response.content.decode()
    assert table_counts() == before
    counts = {key: count for _label, count, key in response.context["preview_counts"]}
    assert counts == {
        "created": 1,
        "updated": 1,
        "deleted": 0,
        "unchanged": 0,
        "not_found": 0,
        "failed": 1,
    }
    assert "Nothing has been written yet" in page
    assert "comma (,)" in page  # the delimiter found
    # The first error: line, field, code, message.
    error = response.context["preview"].errors[0]
    assert (error.line, error.field, error.error_code) == (3, "age:int", "INVALID_CELL")
    assert "not an integer" in page and "INVALID_CELL" in page
    # The per-profile diff: David's firstname changes, city stays, age and nl are added.
    first = response.context["preview_diffs"][0]
    assert first.profile == "1606/c-1" and first.diff.outcome == "updated"
    changes = {row.key: (row.before, row.after, row.change) for row in first.rows}
    assert changes["firstname"] == ('"Dave"', '"David"', "changed")
    assert changes["city"] == ('"Paris"', '"Paris"', "same")
    assert changes["age"] == ("", "41", "added")
    assert '<span class="outcome updated">updated</span>' in page
    assert page.index('<tr class="changed">') < page.index('<td class="key">firstname</td>')
    # The whole file is covered, and the confirm form names the staged upload.
    assert "The preview covers the whole file: 3 lines." in page
    assert len(staged_folders(settings)) == 1
    assert response.context["confirm_form"].initial["token"] == staged_folders(settings)[0]
    assert UserProfile.objects.get(pk=david.pk).properties == {"firstname": "Dave", "city": "Paris"}


def test_preview_warns_about_account_lines_whose_profile_names_no_compartment(
    importer_client, david
):
    response = upload(importer_client, CSV)
    warnings = " ".join(response.context["preview"].warnings)
    assert "1 line identified by an account names no $compartment_id" in warnings
    assert "(line 4)" in warnings
    assert "SPEC" not in response.content.decode()


@pytest.mark.parametrize(
    ("address", "warned"),
    [("1606,", True), (",c-3", True), (",", True), ("1606,c-3", False)],
)
def test_the_warning_holds_for_a_missing_compartment_or_a_missing_account(
    importer_client, datamart, crm_compartment, address, warned
):
    content = (
        b"user_account_id,compartment_id,$compartment_id,$user_account_id,firstname\r\n"
        + f"c-3,1606,{address},Anon\r\n".encode()
    )
    warnings = " ".join(upload(importer_client, content).context["preview"].warnings)
    assert ("names no $compartment_id or $user_account_id" in warnings) is warned, warnings


def test_the_preview_warns_when_the_same_file_was_imported_in_the_last_day(
    importer_client, datamart, crm_compartment
):
    def warnings_of(response) -> str:
        return " ".join(response.context["preview_warnings"])

    first = upload(importer_client, CSV)
    assert "same name and size" not in warnings_of(first)
    token = first.context["confirm_form"].initial["token"]
    importer_client.post(CONFIRM_URL, {"token": token})
    execution = Execution.objects.get()

    again = warnings_of(upload(importer_client, CSV))  # Back, reload: the file posted again
    assert f"execution #{execution.pk} (PENDING) imported a file of the same name and size" in again
    assert f"(crm.csv, {len(CSV):,} bytes)" in again and "confirming imports it again" in again
    assert "same name and size" not in warnings_of(
        upload(importer_client, CSV + b"c-4,1606,,,X,1,\r\n")
    )
    assert "same name and size" not in warnings_of(upload(importer_client, CSV, name="other.csv"))
    Execution.objects.update(created_ts=timezone.now() - timedelta(hours=25))
    assert "same name and size" not in warnings_of(upload(importer_client, CSV))


def test_preview_of_a_long_file_says_how_much_it_covers(importer_client, settings, datamart):
    settings.IMPORT_PREVIEW_LINES = 5
    lines = b"".join(
        b'{"operation":"UPSERT","email_hash":"h%d","user_profile":{"n":%d}}\n' % (i, i)
        for i in range(40)
    )
    response = upload(importer_client, lines, name="big.ndjson")
    page = response.content.decode()
    assert "The preview covers the first 5 lines of about 40." in page
    assert response.context["preview"].counts["created"] == 5
    assert UserProfile.objects.count() == 0


@pytest.mark.parametrize(
    ("name", "content", "fields", "message"),
    [
        ("crm.bin", b"a,b\n1,2\n", {}, "cannot be told from its name"),
        ("crm.csv", b"", {}, "The submitted file is empty."),
        # In the header: the file fails (a bad byte in a row is that row's line error).
        ("crm.csv", "user_account_id,prénom\nc-1,René\n".encode("latin-1"), {}, "encoding"),
        ("crm.xlsx", b"PK\x03\x04 not really a workbook", {}, "cannot be imported as XLSX"),
        ("crm.json", b'{"operation": "UPSERT"}', {}, "cannot be imported as JSON"),
        ("crm.csv", b"user_account_id,firstname\n", {}, "The file holds no line to import."),
        ("crm.csv", b"a\n", {"encoding": "klingon"}, "not an encoding Python knows"),
        ("crm.csv", b"a\n", {"format": "9"}, "Select a valid choice"),
    ],
)
def test_a_bad_upload_is_a_form_error_not_a_500(
    importer_client, settings, name, content, fields, message
):
    before = table_counts()
    response = upload(importer_client, content, name=name, **fields)
    assert response.status_code == 200
    assert "preview" not in response.context
    assert message in response.content.decode()
    assert table_counts() == before
    assert staged_folders(settings) == []


def test_a_file_over_the_size_limit_is_refused(importer_client, settings):
    settings.IMPORT_MAX_FILE_BYTES = 10
    response = upload(importer_client, CSV)
    assert "over the limit" in response.content.decode()
    assert staged_folders(settings) == []


def test_the_format_can_be_chosen_when_the_name_says_nothing(importer_client, datamart):
    line = b'{"operation":"UPSERT","user_agent_id":"vec:1","user_profile":{"n":1}}\n'
    response = upload(importer_client, line, name="crm.export", format="3")  # ndjson
    assert response.context["file_format"] == "NDJSON"
    assert response.context["preview"].counts["created"] == 1


def test_an_xlsx_upload_is_previewed(importer_client, datamart):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["email_hash", "firstname", "age"])
    sheet.append(["h1", "Ada", 36])
    content = io.BytesIO()
    workbook.save(content)
    response = upload(importer_client, content.getvalue(), name="crm.xlsx")
    assert response.context["preview"].counts["created"] == 1
    assert response.context["preview_diffs"][0].diff.after == {"firstname": "Ada", "age": 36}


def test_the_datamart_and_document_import_choices_are_the_users_own(
    importer_client, other_datamart
):
    foreign = DocumentImport.objects.create(datamart=other_datamart, name="Their CRM")
    page = importer_client.get(IMPORT_URL).content.decode()
    assert "Other (2)" not in page and "Their CRM" not in page
    response = upload(importer_client, CSV, datamart="2")
    assert "Select a valid choice" in response.content.decode()
    response = upload(importer_client, CSV, document_import=str(foreign.pk))
    assert "Select a valid choice" in response.content.decode()


def test_confirm_creates_a_pending_execution_queued_on_commit(
    importer_client, importer, david, settings, django_capture_on_commit_callbacks
):
    preview = upload(importer_client, CSV, update_strategy="FORCE_REPLACE")
    token = preview.context["confirm_form"].initial["token"]
    staged_path = preview.context["staged"].path
    with django_capture_on_commit_callbacks() as callbacks:
        response = importer_client.post(CONFIRM_URL, {"token": token})
    execution = Execution.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/imports/execution/{execution.pk}/change/"
    assert execution.status == Execution.Status.PENDING
    assert (execution.file_name, execution.file_format, execution.created_by) == (
        "crm.csv",
        "CSV",
        importer,
    )
    assert execution.default_update_strategy == "FORCE_REPLACE"
    assert execution.document_import.name == "Back-office uploads (CSV)"
    # Queued once the transaction committed, with the execution's id.
    assert len(callbacks) == 1
    assert callbacks[0].func.__self__.name == "imports.run_execution"
    assert callbacks[0].args == (execution.pk,)
    # The staged file was moved, not copied: stored once.
    assert not os.path.exists(staged_path)
    assert staged_folders(settings) == []
    with execution.file.open("rb") as stored:
        assert stored.read() == CSV
    # Nothing applied yet: the worker does that.
    assert UserProfile.objects.get(pk=david.pk).properties == {"firstname": "Dave", "city": "Paris"}


def test_a_confirmed_upload_cannot_be_confirmed_twice(importer_client, david):
    token = upload(importer_client, CSV).context["confirm_form"].initial["token"]
    importer_client.post(CONFIRM_URL, {"token": token})
    response = importer_client.post(CONFIRM_URL, {"token": token}, follow=True)
    assert "already confirmed, or it expired" in response.content.decode()
    assert Execution.objects.count() == 1


def test_an_upload_is_confirmed_only_by_the_session_that_previewed_it(
    importer_client, make_staff, datamart, login, david
):
    token = upload(importer_client, CSV).context["confirm_form"].initial["token"]
    someone_else = login(make_staff("sam", [datamart], ("profiles.import_profiles",)))
    response = someone_else.post(CONFIRM_URL, {"token": token}, follow=True)
    assert "already confirmed, or it expired" in response.content.decode()
    assert Execution.objects.count() == 0


def test_confirm_runs_through_the_chosen_document_import(importer_client, datamart, david):
    daily = DocumentImport.objects.create(datamart=datamart, name="CRM daily", mime_type="TEXT_CSV")
    token = (
        upload(importer_client, CSV, document_import=str(daily.pk))
        .context["confirm_form"]
        .initial["token"]
    )
    importer_client.post(CONFIRM_URL, {"token": token})
    assert Execution.objects.get().document_import == daily


def test_stale_staged_uploads_are_deleted(importer_client, settings, david):
    upload(importer_client, CSV)
    assert len(staged_folders(settings)) == 1
    assert staged_uploads_clean(max_age_hours=1) == 0
    assert staged_uploads_clean(max_age_hours=-1) == 1
    assert staged_folders(settings) == []


def test_the_session_remembers_only_the_last_previews(importer_client, david, settings):
    tokens = [
        upload(importer_client, CSV).context["confirm_form"].initial["token"] for _ in range(12)
    ]
    remembered = importer_client.session["imports_staged_uploads"]
    assert list(remembered) == tokens[-10:]
    assert staged_folders(settings) == sorted(tokens[-10:])  # the files of the others went too
    response = importer_client.post(CONFIRM_URL, {"token": tokens[0]}, follow=True)
    assert "already confirmed, or it expired" in response.content.decode()
    importer_client.post(CONFIRM_URL, {"token": tokens[-1]})
    assert Execution.objects.count() == 1
