"""In a real browser, as staff do, in light and dark mode: open a profile an import changed, its
HISTORY, a change (its values before → after), and follow the change to the import execution;
then the execution's links, a document import's executions, the exports list's download link,
the API docs link and a big list's count. Screenshots go to test-artifacts/ (history-*.png,
navigation-*.png)."""

from __future__ import annotations

import re

import pytest
from django.core.files.base import ContentFile
from django.db import connection

from imports.models import ExportJob
from profiles import paginators
from profiles.admin.user_profiles import UserProfileAdmin
from profiles.fake_profiles import fake_profiles_generate
from profiles.history import ChangeSource
from profiles.merge import DEFAULT_MERGE_MODE
from profiles.models import ProfileChange
from profiles.services import api_token_create, profile_upsert
from tests.browser import COLOR_SCHEMES, logged_in_page, needs_chromium, screenshot
from tests.imports.admin.test_execution_pages import run, start

pytestmark = needs_chromium

WIDTH = 1366


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def imported(datamart, crm_compartment, importer, make_profile):
    """Profile c-1 made by the system, then changed by ines's CSV import."""
    profile = make_profile(
        datamart,
        "c-1",
        {"firstname": "Dave", "newsletter": {"subscribed": True, "period": "MONTHLY"}},
        compartment_id=1606,
    )
    execution = run(start(datamart, user=importer))
    return profile, execution


@pytest.mark.parametrize("color_scheme", COLOR_SCHEMES)
def test_staff_reads_a_profiles_history_and_follows_a_change_to_its_import(
    transactional_db, live_server, browser, imported, color_scheme
):
    profile, execution = imported
    page = logged_in_page(browser, live_server, "ines", color_scheme=color_scheme, width=WIDTH)

    page.goto(f"{live_server.url}/admin/profiles/userprofile/")
    page.fill("#searchbar", "c-1")
    page.press("#searchbar", "Enter")
    page.locator("#result_list tbody tr th a").first.click()
    page.wait_for_selector("#profile-history")
    newest = page.locator("#profile-history tbody tr").first.inner_text()
    assert f"import execution #{execution.pk} by ines" in newest
    screenshot(page, f"history-profile-page-{color_scheme}")

    page.click("a.historylink")  # Django's HISTORY button
    page.wait_for_selector("#change-history")
    assert "2 recorded changes" in page.inner_text("#change-history")
    assert page.locator("table.profile-history tbody tr").count() == 2
    screenshot(page, f"history-button-{color_scheme}")

    page.locator("table.profile-history tbody tr").first.locator("a.change-link").click()
    page.wait_for_selector("#change-diff")
    change = ProfileChange.objects.get(profile_id=profile.pk, action="updated")
    assert page.url.endswith(f"/admin/profiles/profilechange/{change.pk}/change/")
    rows = page.locator("#change-diff tbody tr")
    assert [rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())] == [
        "age",
        "firstname",
    ]
    assert rows.nth(0).locator("td.before").inner_text() == "(absent)"
    assert rows.nth(0).locator("td.after").inner_text() == "41"
    assert rows.nth(1).locator("td.before").inner_text() == '"Dave"'
    assert rows.nth(1).locator("td.after").inner_text() == '"David"'
    # Each side of a change stands out from the page in both modes.
    before_colour = (
        rows.nth(1)
        .locator("td.before .changed")
        .evaluate("element => getComputedStyle(element).backgroundColor")
    )
    assert before_colour not in ("rgba(0, 0, 0, 0)", "transparent")
    time_title = page.locator("#change-facts time").get_attribute("title")
    assert "ms since the epoch" in time_title
    screenshot(page, f"history-change-before-after-{color_scheme}")

    page.goto(f"{live_server.url}/admin/profiles/profilechange/")
    assert page.locator("#result_list tbody tr").count() == 3  # c-1 twice, c-3 once
    screenshot(page, f"history-changes-list-{color_scheme}")
    page.go_back()

    page.click(f"#change-origin a:has-text('import execution #{execution.pk}')")
    page.wait_for_selector("#execution")
    assert page.locator("h1").inner_text() == f"Import execution #{execution.pk}"
    screenshot(page, f"history-change-to-execution-{color_scheme}")


@pytest.mark.parametrize("color_scheme", COLOR_SCHEMES)
def test_staff_finds_their_way_between_executions_imports_exports_and_the_api_docs(
    transactional_db, live_server, browser, imported, datamart, importer, color_scheme, monkeypatch
):
    _, execution = imported
    export = ExportJob.objects.create(
        datamart=datamart, created_by=importer, file_format="CSV", status="SUCCEEDED", rows=1
    )
    export.file.save("profiles.csv", ContentFile(b"user_account_id\r\nc-1\r\n"))
    page = logged_in_page(browser, live_server, "ines", color_scheme=color_scheme, width=WIDTH)

    page.goto(f"{live_server.url}/admin/imports/execution/{execution.pk}/change/")
    facts = page.locator("#execution-facts")
    assert facts.locator("a", has_text="Demo (1)").count() == 1
    screenshot(page, f"navigation-execution-{color_scheme}")
    facts.locator("a", has_text="Back-office uploads (CSV)").click()
    page.wait_for_selector("table.document-import-executions")
    assert "Back-office uploads (CSV) (CSV" not in page.content()
    screenshot(page, f"navigation-document-import-{color_scheme}")
    page.locator("table.document-import-executions a", has_text=f"#{execution.pk}").click()
    page.wait_for_selector("#execution")

    page.goto(f"{live_server.url}/admin/imports/exportjob/")
    screenshot(page, f"navigation-exports-list-{color_scheme}")
    with page.expect_download() as download:
        page.click("a.export-download")
    assert download.value.suggested_filename == "profiles.csv"

    page.click("#api-docs-link")
    page.wait_for_selector(".swagger-ui")
    assert page.url.endswith("/api/v1/docs")

    monkeypatch.setattr(paginators, "COUNT_CAP", 40)
    monkeypatch.setattr(UserProfileAdmin, "list_per_page", 10)
    fake_profiles_generate(datamart=datamart, count=60, batch=60, tag="count")
    page.goto(f"{live_server.url}/admin/profiles/userprofile/?p=500")
    count = page.inner_text(".result-count")
    if connection.vendor == "sqlite":
        assert count == "more than 40 user profiles"
        assert page.inner_text(".paginator .this-page") == "5"  # the last page of the count
    else:
        assert re.fullmatch(r"about \d+ user profiles", count)  # PostgreSQL's estimate
    assert page.locator(".paginator a.showall").count() == 0
    screenshot(page, f"navigation-profile-count-{color_scheme}")


@pytest.mark.parametrize("color_scheme", COLOR_SCHEMES)
def test_a_nested_change_reads_line_by_line_and_links_its_api_token(
    transactional_db, live_server, browser, imported, datamart, color_scheme
):
    profile, _ = imported
    token, _ = api_token_create(datamart=datamart, name="crm-sync")
    profile_upsert(
        user_point=profile.user_point,
        compartment=profile.compartment,
        user_account_id="c-1",
        properties={"newsletter": {"period": "WEEKLY", "topics": ["news", "offers"]}},
        mode=DEFAULT_MERGE_MODE,
        source=ChangeSource(kind="api", api_token_id=token.pk),
    )
    change = ProfileChange.objects.filter(profile_id=profile.pk).order_by("-id").first()
    page = logged_in_page(browser, live_server, "ines", color_scheme=color_scheme, width=WIDTH)
    page.goto(f"{live_server.url}/admin/profiles/profilechange/{change.pk}/change/")
    row = page.locator("#change-diff tbody tr").first
    assert row.locator("td.before .changed").all_inner_texts() == ['  "period": "MONTHLY",']
    assert row.locator("td.after .changed").all_inner_texts() == [
        '  "period": "WEEKLY",',
        '  "topics": [',
        '    "news",',
        '    "offers"',
        "  ]",
    ]
    screenshot(page, f"history-change-nested-{color_scheme}")
    page.click("#change-origin a")
    page.wait_for_selector("#apitoken_form")
    assert "crm-sync" in page.content()
