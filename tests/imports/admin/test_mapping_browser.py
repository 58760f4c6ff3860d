"""In a real browser, with a real Celery worker: staff upload a CRM export as it comes
(`Customer ID,E-mail,First Name,Birth date,Opt-in,Notes`), map its columns, preview, confirm, and
the worker imports it through the mapping; the next file with the same headers goes straight to
its preview with the saved mapping, and so does a file in the SPEC layout, read as it is. The mapping step and the preview are screenshot in light and
dark mode (test-artifacts/admin-import-mapping-*.png).
"""

from __future__ import annotations

import hashlib
import re

import pytest

from imports.models import DocumentImport, Execution
from profiles.models import UserEmail, UserProfile
from tests.browser import logged_in_page, needs_chromium, screenshot

pytestmark = [*needs_chromium, pytest.mark.worker]

HEADER = "Customer ID,E-mail,First Name,Birth date,Opt-in,Notes"
FIRST = [
    "C-1,  Ann.Lee@Example.COM ,Ann,1990-05-01,yes,VIP customer",
    "C-2,bob@example.com,Bob,1985-11-30,no,",
    "C-3,carl@example.com,Carl,,1,call back in June",
]
SECOND = ["C-4,Dana@Example.com,Dana,2001-02-03,true,"]


def sha256_email(address: str) -> str:
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


def write_csv(tmp_path, name: str, rows: list[str], header: str = HEADER):
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def upload(page, live_server, path) -> None:
    page.goto(f"{live_server.url}/admin/profiles/userprofile/import/")
    page.wait_for_selector("#import-form")
    page.set_input_files("#id_import_file", str(path))
    page.click("#import-form input[type=submit]")


def target_of(page, header: str):
    return page.locator(f'#column-mapping tr[data-header="{header}"] td.target input')


def confirm_and_wait(page) -> None:
    page.click("#confirm-import input[type=submit]")
    page.wait_for_selector("#execution")
    page.wait_for_function(
        "() => document.getElementById('execution-status').textContent === 'SUCCEEDED'",
        timeout=90_000,
    )


def test_staff_map_a_crm_export_and_the_next_file_reuses_the_mapping(
    transactional_db, live_server, browser, celery_worker, importer, datamart, tmp_path
):
    page = logged_in_page(browser, live_server, "ines", width=1366)
    upload(page, live_server, write_csv(tmp_path, "crm-export.csv", FIRST))

    page.wait_for_selector("#column-mapping-step")
    proposed = {
        header: target_of(page, header).input_value()
        for header in ("Customer ID", "E-mail", "First Name", "Birth date", "Opt-in", "Notes")
    }
    assert proposed == {
        "Customer ID": "$user_account_id",
        "E-mail": "email_hash",
        "First Name": "first_name",
        "Birth date": "birth_date:str",
        "Opt-in": "opt_in:bool",
        "Notes": "notes",
    }
    email_row = page.locator('#column-mapping tr[data-header="E-mail"]')
    assert email_row.locator("select").input_value() == "sha256_email"
    assert "Ann.Lee@Example.COM" in email_row.locator("td.samples").inner_text()
    screenshot(page, "admin-import-mapping-step-light")

    # Staff adjust one target and ignore the free-text notes.
    target_of(page, "Opt-in").fill("newsletter.opt_in:bool")
    page.check('#column-mapping tr[data-header="Notes"] td.ignore input')
    assert page.locator('#column-mapping tr[data-header="Notes"].ignored').count() == 1
    screenshot(page, "admin-import-mapping-step-adjusted-light")
    page.click("#column-mapping-form input[type=submit]")

    page.wait_for_selector("#import-preview")
    assert re.search(r"3\s+Creates", page.locator("#preview-counts").inner_text())
    mapping = page.locator("#preview-mapping").inner_text()
    assert "Opt-in → newsletter.opt_in:bool" in mapping and "Notes → ignored" in mapping
    assert UserProfile.objects.count() == 0  # the preview wrote nothing
    screenshot(page, "admin-import-mapping-preview-light")
    confirm_and_wait(page)

    assert "Opt-in → newsletter.opt_in:bool" in page.locator("#execution-mapping").inner_text()
    screenshot(page, "admin-import-mapping-execution-light")
    execution = Execution.objects.get()
    assert (execution.status, execution.created, execution.failed) == ("SUCCEEDED", 3, 0)
    assert execution.worker == celery_worker.node_name
    ann = UserEmail.objects.get(email_hash=sha256_email("ann.lee@example.com"))
    profile = UserProfile.objects.get(user_point=ann.user_point)
    assert profile.user_account_id == "C-1" and profile.compartment.is_default
    assert profile.properties == {
        "first_name": "Ann",
        "birth_date": "1990-05-01",
        "newsletter": {"opt_in": True},
    }
    carl = UserProfile.objects.get(user_account_id="C-3")
    assert carl.properties == {"first_name": "Carl", "newsletter": {"opt_in": True}}
    saved = DocumentImport.objects.get().column_mapping
    assert saved["Opt-in"] == "newsletter.opt_in:bool" and saved["Notes"] is None

    # The next file with the same headers: straight to the preview, with the saved mapping.
    upload(page, live_server, write_csv(tmp_path, "crm-export-2.csv", SECOND))
    page.wait_for_selector("#import-preview")
    assert page.locator("#column-mapping-step").count() == 0
    assert "Opt-in → newsletter.opt_in:bool" in page.locator("#preview-mapping").inner_text()
    confirm_and_wait(page)
    dana = UserEmail.objects.get(email_hash=sha256_email("dana@example.com"))
    assert UserProfile.objects.get(user_point=dana.user_point).properties == {
        "first_name": "Dana",
        "birth_date": "2001-02-03",
        "newsletter": {"opt_in": True},
    }
    assert Execution.objects.filter(status="SUCCEEDED").count() == 2

    # A file in the SPEC layout is read as it is, straight to its preview; the mapping stays.
    upload(
        page,
        live_server,
        write_csv(
            tmp_path, "spec.csv", ["C-9,C-9,7"], "user_account_id,$user_account_id,visits:int"
        ),
    )
    page.wait_for_selector("#import-preview")
    assert page.locator("#column-mapping-step, #preview-mapping").count() == 0
    confirm_and_wait(page)
    assert UserProfile.objects.get(user_account_id="C-9").properties == {"visits": 7}
    assert DocumentImport.objects.get().column_mapping == saved

    # In dark mode, a file with one more column asks again, with the saved targets proposed.
    dark = logged_in_page(browser, live_server, "ines", color_scheme="dark", width=1366)
    wider = write_csv(
        tmp_path,
        "crm-export-3.csv",
        ["C-5,eve@example.com,Eve,,no,,12"],
        HEADER + ",Loyalty points",
    )
    upload(dark, live_server, wider)
    dark.wait_for_selector("#column-mapping-step")
    assert target_of(dark, "Opt-in").input_value() == "newsletter.opt_in:bool"
    assert target_of(dark, "Loyalty points").input_value() == "loyalty_points"
    target_of(dark, "Loyalty points").fill("loyalty.points:int")
    target_of(dark, "First Name").fill("$user_account_id")  # clashes with Customer ID
    dark.click("#column-mapping-form input[type=submit]")
    dark.wait_for_selector("#column-mapping tr.errors")
    assert "name the same field" in dark.locator("#column-mapping tr.errors").inner_text()
    screenshot(dark, "admin-import-mapping-step-dark")
    target_of(dark, "First Name").fill("first_name")
    dark.click("#column-mapping-form input[type=submit]")
    dark.wait_for_selector("#import-preview")
    assert re.search(r"1\s+Creates", dark.locator("#preview-counts").inner_text())
    screenshot(dark, "admin-import-mapping-preview-dark")
