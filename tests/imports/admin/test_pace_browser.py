"""In a real browser, with a real (slowed) Celery worker: staff import a file through the
preview, watch its pace, chart and errors grouped by code while it runs, filter the errors,
and cancel another import through its confirmation dialog; light and dark mode, 1366 px wide.

Screenshots go to test-artifacts/ (pace-*.png).
"""

from __future__ import annotations

import re

import pytest

from imports.models import Execution
from tests.browser import logged_in_page, needs_chromium, screenshot
from tests.imports.admin.test_back_office_browser import readable
from tests.imports.helpers import wait_for

pytestmark = [*needs_chromium, pytest.mark.worker]

WIDTH = 1366
SLOW = {"IMPORT_CHUNK_SIZE": "100", "IMPORT_TEST_CHUNK_SECONDS": "0.35"}


def mixed_file(tmp_path, lines: int, name: str = "crm-weekly.csv"):
    """`lines` accounts; every 7th has a bad age (INVALID_CELL), every 11th no identifier."""
    rows = ["user_account_id;compartment_id;$compartment_id;$user_account_id;firstname;age:int"]
    for index in range(lines):
        account = "" if index % 11 == 10 else f"w-{index}"
        age = "old" if index % 7 == 6 else str(20 + index % 50)
        rows.append(f"{account};1606;1606;{account};Name {index};{age}")
    path = tmp_path / name
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def start_slow_worker(celery_worker):
    celery_worker.stop()
    celery_worker.start(app="tests.imports.slow_worker", env=SLOW)


def upload_and_confirm(page, live_server, path):
    page.goto(f"{live_server.url}/admin/profiles/userprofile/import/")
    page.set_input_files("#id_import_file", str(path))
    page.click("#import-form input[type=submit]")
    page.wait_for_selector("#import-preview")


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_staff_watch_an_import_s_pace_chart_and_errors_while_it_runs(
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
    for index in range(0, 40, 4):  # some accounts exist: the preview shows changed keys
        make_profile(datamart, f"w-{index}", {"firstname": "Old", "age": 1}, compartment_id=1606)
    start_slow_worker(celery_worker)
    page = logged_in_page(browser, live_server, "ines", color_scheme=color_scheme, width=WIDTH)

    upload_and_confirm(page, live_server, mixed_file(tmp_path, 3000))
    assert page.locator("#confirm-bottom input[type=submit]").is_visible()
    no_overflow = (
        "() => document.documentElement.scrollWidth <= window.innerWidth && [...document"
        ".querySelectorAll('.imports-table-scroll')].every(t => t.scrollWidth <= t.clientWidth)"
    )
    assert page.evaluate(no_overflow), "the preview is wider than the window"
    for cell in ("tr.changed td.value.before", "tr.changed td.value.after", "tr.added td.after"):
        assert readable(page.locator(cell).first) >= 4.5, cell  # readable in dark mode too
    screenshot(page, f"pace-preview-{color_scheme}")
    page.click("#confirm-bottom input[type=submit]")  # Confirm at the bottom works too

    page.wait_for_selector("#execution")
    page.wait_for_selector("#pace-eta", timeout=60_000)  # RUNNING: the page reloaded itself
    page.wait_for_selector("#execution-chart", timeout=30_000)
    page.wait_for_selector("#error-codes", timeout=30_000)  # errors appear while it runs
    page.wait_for_function(
        "() => document.querySelectorAll('#execution-chart polyline.applied')[0]"
        ".getAttribute('points').split(' ').length >= 4",
        timeout=30_000,
    )  # the chart was redrawn in place
    assert page.locator("#execution-status").inner_text() == "RUNNING"
    assert re.search(r"\d lines/s", page.locator("#pace-rate").inner_text())
    assert page.evaluate(no_overflow), "the execution page is wider than the window"
    screenshot(page, f"pace-running-{color_scheme}")

    page.wait_for_function(
        "() => document.getElementById('execution-status').textContent === 'SUCCEEDED'",
        timeout=120_000,
    )
    execution = Execution.objects.get()
    failures = page.locator("#execution-failures").inner_text()
    assert failures == f"· {execution.failed:,} of 3,000 lines failed"
    codes = page.locator("#error-codes").inner_text()
    assert "INVALID_CELL" in codes and "MISSING_IDENTIFIER" in codes
    assert page.locator("#pace-eta").count() == 0
    screenshot(page, f"pace-succeeded-{color_scheme}")

    page.click('#error-codes a[data-error-code="INVALID_CELL"]')
    page.wait_for_selector("#error-codes li.selected a[data-error-code='INVALID_CELL']")
    codes_shown = set(page.locator("#execution-errors tbody td code").all_inner_texts())
    assert codes_shown == {"INVALID_CELL"}
    screenshot(page, f"pace-errors-filtered-{color_scheme}")

    page.goto(f"{live_server.url}/admin/imports/execution/")
    row = page.locator("#result_list tbody tr").first
    assert f"SUCCEEDED · {execution.failed:,} of 3,000 lines failed" in row.inner_text()
    screenshot(page, f"pace-executions-list-{color_scheme}")
    outcome_lines = row.locator("td.field-outcome_column").evaluate(
        "cell => { const range = document.createRange(); range.selectNodeContents(cell);"
        " return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size; }"
    )
    assert outcome_lines <= 3, outcome_lines  # a few whole counts per line, not seven lines
    # Every column is on screen: the list does not scroll sideways.
    assert page.evaluate(
        "() => { const r = document.querySelector('#changelist .results');"
        " return r.scrollWidth <= r.clientWidth; }"
    ), "the executions list scrolls sideways"
    assert page.evaluate(no_overflow), "the executions list is wider than the window"

    page.goto(f"{live_server.url}/admin/")
    assert f"#{execution.pk} crm-weekly.csv" in page.locator("#index-imports").inner_text()
    assert "Demo" in page.locator("#index-datamarts").inner_text()
    screenshot(page, f"pace-admin-index-{color_scheme}")


def test_staff_cancel_a_running_import_after_confirming(
    transactional_db, live_server, browser, celery_worker, importer, datamart, tmp_path
):
    start_slow_worker(celery_worker)
    page = logged_in_page(browser, live_server, "ines", color_scheme="dark", width=WIDTH)
    upload_and_confirm(page, live_server, mixed_file(tmp_path, 5000, "big.csv"))
    page.click("#confirm-import input[type=submit]")
    page.wait_for_selector("#pace-eta", timeout=60_000)
    # A chunk committed first, so the cancel stops the import part-way (the worker waits
    # before each chunk: a cancel may otherwise come before the first).
    wait_for(lambda: Execution.objects.get().processed > 0, timeout=60, message="a chunk")

    questions = []

    def answer(dialog, accept: bool):
        questions.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, False))
    page.click("#cancel-execution input[type=submit]")
    assert questions and questions[0].startswith("Cancel this import?")
    execution = Execution.objects.get()
    assert not Execution.objects.get(pk=execution.pk).cancel_requested  # dismissed: nothing sent
    screenshot(page, "pace-cancel-running-dark")

    page.once("dialog", lambda dialog: answer(dialog, True))
    page.click("#cancel-execution input[type=submit]")
    page.wait_for_function(
        "() => document.getElementById('execution-status').textContent === 'CANCELED'",
        timeout=60_000,
    )
    execution.refresh_from_db()
    assert execution.status == Execution.Status.CANCELED and execution.processed < 5000
    assert "canceled after line" in page.locator("#execution-error").inner_text().lower()
    screenshot(page, "pace-canceled-dark")
