"""In a real browser, with a real Celery worker: a staff member reverts a finished import from
its page (Revert…, the preview, the confirmation) and watches the revert reach SUCCEEDED.

Screenshots of the preview and of the finished revert, light and dark, go to test-artifacts/.
"""

from __future__ import annotations

import re

import pytest

from imports.models import Execution
from tests.browser import COLOR_SCHEMES, logged_in_page, needs_chromium, screenshot
from tests.imports.helpers import account, delete, import_file, ndjson, properties_of

pytestmark = [*needs_chromium, pytest.mark.worker]


@pytest.mark.parametrize("color_scheme", COLOR_SCHEMES)
def test_staff_member_reverts_an_import_from_its_page_and_watches_it_succeed(
    transactional_db, live_server, browser, celery_worker, importer, document_import, color_scheme
):
    import_file(document_import, ndjson(account("kept", {"n": 1}), account("gone", {"n": 1})))
    execution = import_file(
        document_import,
        ndjson(
            account("new-1", {"n": 1}),
            account("new-2", {"n": 2}),
            account("kept", {"n": 2}),
            delete("gone"),
            account("touched", {"n": 1}),
        ),
        created_by=importer,
    )
    import_file(document_import, ndjson(account("touched", {"later": True})))  # a conflict
    page = logged_in_page(browser, live_server, "ines", color_scheme=color_scheme, width=1366)

    page.goto(f"{live_server.url}/admin/imports/execution/{execution.pk}/change/")
    page.click("#revert-execution")
    page.wait_for_selector("#revert-preview")
    counts = {
        name: page.locator(f'[data-preview="{name}"]').inner_text()
        for name in ("delete", "restore", "recreate", "conflicts")
    }
    assert counts == {"delete": "3", "restore": "1", "recreate": "1", "conflicts": "1"}
    assert (
        "1 of the 5 profiles above changed since by something else"
        in page.locator("#revert-conflicts").inner_text()
    )  # the conflict is among the counts, not one more profile
    screenshot(page, f"admin-revert-preview-{color_scheme}")
    assert not Execution.objects.filter(reverts=execution).exists()  # nothing written yet

    page.click("#revert-confirm")
    page.wait_for_selector("#execution")
    revert = Execution.objects.get(reverts=execution)
    assert page.url.endswith(f"/admin/imports/execution/{revert.pk}/change/")
    page.wait_for_function(
        "() => document.getElementById('execution-status').textContent === 'SUCCEEDED'",
        timeout=90_000,
    )
    page.wait_for_selector("#execution-errors")
    assert page.locator("#execution-progress .text").inner_text() == "100%"
    counters = {
        name: page.locator(f'[data-counter="{name}"]').inner_text()
        for name in ("total", "created", "updated", "deleted", "failed")
    }
    assert counters == {"total": "5", "created": "1", "updated": "1", "deleted": "2", "failed": "1"}
    errors = page.locator("#execution-errors").inner_text()
    assert "REVERT_CONFLICT" in errors and re.search(r"user_account_id=touched", errors)
    assert f"execution #{execution.pk}" in page.locator("#execution-facts").inner_text()
    screenshot(page, f"admin-revert-execution-{color_scheme}")

    assert (properties_of("kept"), properties_of("gone")) == ({"n": 1}, {"n": 1})
    assert properties_of("new-1") is None and properties_of("touched") == {"n": 1, "later": True}
