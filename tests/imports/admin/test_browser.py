"""In a real browser, with a real Celery worker: a staff member uploads a CSV from the profile
list, reads the preview, confirms, and watches the execution's page reach SUCCEEDED by itself;
a superuser who sees two datamarts imports into the one chosen.

Drives Debian's Chromium through Playwright (tests/browser.py); the worker is the session's real `celery worker` process on the
test database (tests/conftest.py). Screenshots of the preview and of the execution page go to
test-artifacts/.
"""

from __future__ import annotations

import csv
import re

import pytest
from django.contrib.auth import get_user_model

from imports.models import Execution
from profiles.models import UserProfile
from tests.browser import ARTIFACTS, COLOR_SCHEMES, logged_in_page, needs_chromium

pytestmark = [*needs_chromium, pytest.mark.worker]

LINES = 1500


def crm_file(tmp_path):
    """1,500 accounts: c-0 already exists (an update), line 7 has a bad age (an error)."""
    rows = ["user_account_id;compartment_id;$compartment_id;$user_account_id;firstname;age:int"]
    for index in range(LINES):
        age = "forty" if index == 5 else str(20 + index % 60)
        rows.append(f"c-{index};1606;1606;c-{index};Name {index};{age}")
    path = tmp_path / "crm-daily.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("color_scheme", COLOR_SCHEMES)
def test_staff_member_uploads_a_csv_previews_confirms_and_watches_it_succeed(
    transactional_db,
    live_server,
    browser,
    celery_worker,
    importer,
    make_profile,
    datamart,
    tmp_path,
    color_scheme,
):
    ARTIFACTS.mkdir(exist_ok=True)
    existing = make_profile(
        datamart, "c-0", {"firstname": "Old name", "city": "Paris"}, compartment_id=1606
    )
    celery_worker.stop()  # started again once the page is open: it must update by itself
    page = logged_in_page(browser, live_server, "ines", color_scheme=color_scheme, width=900)

    page.goto(f"{live_server.url}/admin/profiles/userprofile/")
    page.click("a.import_link")
    page.wait_for_selector("#import-form")
    page.set_input_files("#id_import_file", str(crm_file(tmp_path)))
    # django-import-export's script picks the format from the file's extension.
    assert page.locator("#id_format option:checked").inner_text() == "csv"
    page.screenshot(path=str(ARTIFACTS / f"admin-import-form-{color_scheme}.png"), full_page=True)
    page.click("#import-form input[type=submit]")

    page.wait_for_selector("#import-preview")
    counts = page.locator("#preview-counts").inner_text()
    assert re.search(r"998\s+Creates", counts), counts
    assert re.search(r"1\s+Updates", counts), counts
    assert re.search(r"1\s+Errors", counts), counts
    assert "The preview covers the first 1,000 lines of about 1,500." in page.content()
    assert page.locator("#preview-delimiter").inner_text() == "semicolon (;)"
    assert "INVALID_CELL" in page.locator("#preview-errors").inner_text()
    first_diff = page.locator(".imports-diff").first
    assert "1606/c-0\tupdated" in first_diff.inner_text()
    assert first_diff.locator("tr.changed td.key").first.inner_text() == "firstname"
    # On a 900 px screen the table scrolls rather than split words: each short cell is one line.
    for cell in ("tr.changed td.key", "td.profile", ".outcome"):
        lines = first_diff.locator(cell).first.evaluate(
            "el => { const r = document.createRange(); r.selectNodeContents(el);"
            " return new Set([...r.getClientRects()].map(b => Math.round(b.top))).size; }"
        )
        assert lines == 1, f"{cell} drawn on {lines} lines"
    page.screenshot(
        path=str(ARTIFACTS / f"admin-import-preview-{color_scheme}.png"), full_page=True
    )
    assert UserProfile.objects.count() == 1  # the preview wrote nothing

    page.click("#confirm-import input[type=submit]")
    page.wait_for_selector("#execution")
    assert page.locator("#execution-status").inner_text() == "PENDING"
    assert "this page updates by itself" in page.locator("#execution").inner_text()
    page.screenshot(
        path=str(ARTIFACTS / f"admin-import-execution-pending-{color_scheme}.png"), full_page=True
    )
    celery_worker.start()
    page.wait_for_function(
        "() => document.getElementById('execution-status').textContent === 'SUCCEEDED'",
        timeout=90_000,
    )
    page.wait_for_selector("#failed-lines")
    counters = {
        name: page.locator(f'[data-counter="{name}"]').inner_text()
        for name in ("total", "processed", "created", "updated", "failed")
    }
    assert counters == {
        "total": "1,500",
        "processed": "1,500",
        "created": "1,498",
        "updated": "1",
        "failed": "1",
    }
    assert page.locator("#execution-progress .text").inner_text() == "100%"
    errors = page.locator("#execution-errors tbody tr")
    assert errors.count() == 1 and "INVALID_CELL" in errors.first.inner_text()
    # The failed-lines button downloads the bad row in the source layout, with _line and _error.
    with page.expect_download() as downloading:
        page.click("#failed-lines")
    download = downloading.value
    assert download.suggested_filename == "crm-daily.failed-lines.csv"
    with open(download.path(), encoding="utf-8", newline="") as opened:
        failed_rows = list(csv.reader(opened, delimiter=";"))
    assert failed_rows[0][-4:] == ["firstname", "age:int", "_line", "_error"]
    assert len(failed_rows) == 2
    assert failed_rows[1][:7] == ["c-5", "1606", "1606", "c-5", "Name 5", "forty", "7"]
    assert "'forty' is not an integer" in failed_rows[1][7]
    page.screenshot(
        path=str(ARTIFACTS / f"admin-import-execution-{color_scheme}.png"), full_page=True
    )

    page.goto(f"{live_server.url}/admin/imports/execution/")
    listing = page.locator("#result_list tbody tr").first.inner_text()
    assert "crm-daily.csv" in listing and "ines" in listing and "SUCCEEDED" in listing
    assert "1,498 created · 1 updated · 1 error" in listing
    page.screenshot(
        path=str(ARTIFACTS / f"admin-import-executions-{color_scheme}.png"), full_page=True
    )

    execution = Execution.objects.get()
    assert execution.status == Execution.Status.SUCCEEDED
    assert execution.worker == celery_worker.node_name
    assert UserProfile.objects.get(pk=existing.pk).properties == {
        "firstname": "Name 0",
        "city": "Paris",
        "age": 20,
    }
    assert UserProfile.objects.count() == LINES - 1


def test_a_superuser_of_two_datamarts_imports_into_the_one_chosen(
    transactional_db, live_server, browser, celery_worker, other_datamart, datamart, tmp_path
):
    """The datamart select starts on no datamart: the file goes where the user chose. The box
    "Keep empty cells as \"\"" makes Olga's empty city "" rather than no city."""
    ARTIFACTS.mkdir(exist_ok=True)
    get_user_model().objects.create_superuser("root", "root@example.com", "pw-root")
    path = tmp_path / "other.csv"
    path.write_text(
        "user_account_id,$user_account_id,firstname,city\no-1,o-1,Otto,Berlin\no-2,o-2,Olga,\n"
    )
    page = logged_in_page(browser, live_server, "root")

    page.goto(f"{live_server.url}/admin/profiles/userprofile/")
    page.click("a.import_link")
    page.wait_for_selector("#import-form")
    choices = page.locator("#id_datamart option").all_inner_texts()
    assert choices == ["Choose the datamart to import into", "Demo (1)", "Other (2)"]
    page.set_input_files("#id_import_file", str(path))
    page.click("#import-form input[type=submit]")  # the browser asks for the datamart first
    assert page.locator("#id_datamart").evaluate("select => select.validity.valueMissing")
    page.select_option("#id_datamart", label="Other (2)")
    page.check("#id_empty_cell_is_empty_string")
    page.screenshot(path=str(ARTIFACTS / "admin-import-root-form.png"), full_page=True)
    page.click("#import-form input[type=submit]")

    page.wait_for_selector("#import-preview")
    assert "into Other (2)" in page.locator("#import-preview p").first.inner_text()
    assert re.search(r"2\s+Creates", page.locator("#preview-counts").inner_text())
    assert page.locator("#preview-empty-cells").inner_text() == 'empty strings ("") in text columns'
    page.screenshot(path=str(ARTIFACTS / "admin-import-root-preview.png"), full_page=True)
    page.click("#confirm-import input[type=submit]")
    page.wait_for_function(
        "() => document.getElementById('execution-status').textContent === 'SUCCEEDED'",
        timeout=90_000,
    )
    page.screenshot(path=str(ARTIFACTS / "admin-import-root-execution.png"), full_page=True)
    assert Execution.objects.get().document_import.datamart == other_datamart
    assert sorted(
        UserProfile.objects.filter(datamart=other_datamart).values_list(
            "user_account_id", "properties"
        )
    ) == [
        ("o-1", {"firstname": "Otto", "city": "Berlin"}),
        ("o-2", {"firstname": "Olga", "city": ""}),
    ]
    assert not UserProfile.objects.filter(datamart=datamart).exists()
