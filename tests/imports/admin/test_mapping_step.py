"""The import's mapping step: a CRM file's headers mapped before its preview, the mapping kept on
the document import and proposed again; a SPEC §3 file goes straight to its preview."""

from __future__ import annotations

import re

import pytest

from imports.models import DocumentImport, Execution
from profiles.models import UserProfile
from tests.imports.admin.conftest import CONFIRM_URL
from tests.imports.admin.test_import_preview import upload
from tests.imports.helpers import CRM_COLUMN_MAPPING

MAPPING_URL = "/admin/profiles/userprofile/import/mapping/"
CRM = (
    b"Customer ID,E-mail,First Name,Birth date,Opt-in,Notes\r\n"
    b"C-1, Ann@Example.com ,Ann,1990-05-01,yes,VIP\r\n"
    b"C-2,bob@example.com,Bob,,no,\r\n"
)
HEADERS = ["Customer ID", "E-mail", "First Name", "Birth date", "Opt-in", "Notes"]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def token_of(page: str) -> str:
    return re.search(r'name="token" value="([0-9a-f]{32})"', page).group(1)


def step_answer(token: str, targets: dict[str, str | None], transforms=None) -> dict:
    """The mapping form's fields for targets {header: target or None (Ignore)}."""
    answer = {"token": token}
    for index, header in enumerate(HEADERS):
        target = targets[header]
        answer[f"target_{index}"] = target or ""
        answer[f"transform_{index}"] = (transforms or {}).get(header, "")
        if target is None:
            answer[f"ignore_{index}"] = "on"
    return answer


def test_a_crm_file_opens_the_mapping_step_with_proposals_and_samples(importer_client):
    page = upload(importer_client, CRM).content.decode()
    assert 'id="column-mapping-step"' in page and 'id="import-preview"' not in page
    assert 'value="$user_account_id"' in page  # Customer ID, beside an e-mail column
    assert 'value="sha256_email" selected' in page  # E-mail
    assert 'value="first_name"' in page and 'value="birth_date:str"' in page
    assert "Ann@Example.com" in page and "1990-05-01" in page  # sample values
    assert not UserProfile.objects.exists()


def test_the_mapping_previews_then_is_saved_on_confirm_and_reused(importer_client, datamart):
    token = token_of(upload(importer_client, CRM).content.decode())
    targets = {
        "Customer ID": "$user_account_id",
        "E-mail": "email_hash",
        "First Name": "first_name",
        "Birth date": "birth_date:str",
        "Opt-in": "newsletter.opt_in:bool",
        "Notes": None,
    }
    answer = step_answer(token, targets, {"E-mail": "sha256_email"})
    page = importer_client.post(MAPPING_URL, answer).content.decode()
    assert 'id="import-preview"' in page, page
    assert re.search(r'data-count="created">\s*<span class="count">2', page)
    assert 'id="preview-mapping"' in page and "newsletter.opt_in:bool" in page
    assert DocumentImport.objects.filter(column_mapping__isnull=False).count() == 0

    importer_client.post(CONFIRM_URL, {"token": token})
    saved = DocumentImport.objects.get(name="Back-office uploads (CSV)")
    assert saved.column_mapping == CRM_COLUMN_MAPPING
    assert Execution.objects.get().column_mapping == saved.column_mapping

    page = upload(importer_client, CRM, name="crm-2.csv").content.decode()
    assert 'id="import-preview"' in page and 'id="column-mapping-step"' not in page
    token = token_of(page)
    step = importer_client.get(MAPPING_URL, {"token": token}).content.decode()
    assert 'value="newsletter.opt_in:bool"' in step  # the saved mapping, proposed again


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"Opt-in": "opt_in:yesno"}, ":yesno is not a type"),
        ({"First Name": "$user_account_id"}, "name the same field"),
        ({"Notes": ""}, "Choose a target, or tick Ignore."),
        ({"Notes": "_line"}, "is not a column"),
    ],
)
def test_a_bad_answer_shows_the_step_again_with_the_error_on_its_header(
    importer_client, change, message
):
    token = token_of(upload(importer_client, CRM).content.decode())
    targets = {
        "Customer ID": "$user_account_id",
        "E-mail": "email_hash",
        "First Name": "first_name",
        "Birth date": "birth_date",
        "Opt-in": "opt_in:bool",
        "Notes": None,
        **change,
    }
    page = importer_client.post(MAPPING_URL, step_answer(token, targets)).content.decode()
    assert 'id="column-mapping-step"' in page and 'id="import-preview"' not in page
    assert message in page
    assert 'class="errors"' in page


def test_every_bad_row_is_shown_at_once_each_on_its_header(importer_client):
    token = token_of(upload(importer_client, CRM).content.decode())
    targets = {
        "Customer ID": "$user_account_id",
        "E-mail": "email_hash",
        "First Name": "",  # no target
        "Birth date": "birth_date:date",  # no such type
        "Opt-in": "$foo",  # not a column
        "Notes": None,
    }
    response = importer_client.post(MAPPING_URL, step_answer(token, targets))
    form = response.context["mapping_form"]
    assert set(form.errors) == {"target_2", "target_3", "target_4"}
    assert form.errors["target_3"] == [
        "'birth_date:date': :date is not a type; use :int, :float, :bool, :json or :str "
        '(a key holding ":" is written ["a:b"])'
    ]
    assert "ignore the column" in form.errors["target_4"][0]
    # A clash between targets valid alone is found once each row is right.
    clash = {
        **targets,
        "First Name": "first_name",
        "Birth date": "birth_date",
        "Opt-in": "email_hash",
    }
    form = importer_client.post(MAPPING_URL, step_answer(token, clash)).context["mapping_form"]
    assert list(form.errors) == ["target_4"] and "name the same field" in form.errors["target_4"][0]


def test_a_spec_file_goes_straight_to_the_preview_and_saves_no_mapping(importer_client):
    spec = b"user_account_id,$user_account_id,firstname\r\nc-1,c-1,Ann\r\n"
    page = upload(importer_client, spec).content.decode()
    assert 'id="import-preview"' in page and 'id="preview-mapping"' not in page
    importer_client.post(CONFIRM_URL, {"token": token_of(page)})
    assert DocumentImport.objects.get().column_mapping is None


def test_a_spec_file_after_a_crm_mapping_is_read_as_it_is_and_the_mapping_kept(
    importer_client, datamart
):
    kept = DocumentImport.objects.create(
        datamart=datamart,
        name="Back-office uploads (CSV)",
        mime_type=DocumentImport.MimeType.CSV,
        column_mapping=CRM_COLUMN_MAPPING,
    )
    spec = b"user_account_id,$user_account_id,age:int\r\nc-1,c-1,41\r\n"
    page = upload(importer_client, spec).content.decode()
    assert 'id="import-preview"' in page and 'id="column-mapping-step"' not in page
    assert 'id="preview-mapping"' not in page
    importer_client.post(CONFIRM_URL, {"token": token_of(page)})
    execution = Execution.objects.get()
    assert execution.column_mapping is None  # read as SPEC §3 says, not through the CRM's
    kept.refresh_from_db()
    assert kept.column_mapping == CRM_COLUMN_MAPPING
    # The CRM file still goes straight to its preview, through the mapping kept.
    page = upload(importer_client, CRM, name="crm-again.csv").content.decode()
    assert 'id="import-preview"' in page and 'id="preview-mapping"' in page


def test_a_saved_mapping_that_misses_a_header_asks_again(importer_client, datamart):
    DocumentImport.objects.create(
        datamart=datamart,
        name="Back-office uploads (CSV)",
        mime_type=DocumentImport.MimeType.CSV,
        column_mapping={"Customer ID": "user_account_id"},
    )
    page = upload(importer_client, CRM).content.decode()
    assert 'id="column-mapping-step"' in page


def test_an_ndjson_file_has_no_mapping_step(importer_client):
    line = b'{"operation":"UPSERT","email_hash":"h","user_profile":{"a":1}}\n'
    page = upload(importer_client, line, name="x.ndjson").content.decode()
    assert 'id="import-preview"' in page


def test_an_expired_token_goes_back_to_the_upload(importer_client):
    response = importer_client.post(MAPPING_URL, {"token": "0" * 32})
    assert response.status_code == 302


def test_the_document_import_page_edits_the_mapping_with_the_same_checks(importer_client, datamart):
    document_import = DocumentImport.objects.create(
        datamart=datamart, name="CRM", mime_type=DocumentImport.MimeType.CSV
    )
    url = f"/admin/imports/documentimport/{document_import.pk}/change/"
    fields = {"name": "CRM", "document_type": "USER_PROFILE", "mime_type": "TEXT_CSV"}
    bad = importer_client.post(
        url, {**fields, "encoding": "utf-8", "column_mapping": '{"A": "x:date"}'}
    )
    assert bad.status_code == 200 and ":date is not a type" in bad.content.decode()
    good = importer_client.post(
        url, {**fields, "encoding": "utf-8", "column_mapping": '{"A": "user_account_id"}'}
    )
    assert good.status_code == 302
    document_import.refresh_from_db()
    assert document_import.column_mapping == {"A": "user_account_id"}


def test_an_xlsx_crm_sheet_opens_the_step_with_its_typed_values_as_samples(importer_client):
    import io

    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.active.append(HEADERS)
    workbook.active.append([1234, "ann@example.com", "Ann", None, True, None])
    content = io.BytesIO()
    workbook.save(content)
    page = upload(importer_client, content.getvalue(), name="crm.xlsx").content.decode()
    assert 'id="column-mapping-step"' in page
    assert ">1234<" in page and ">true<" in page
