"""In a real browser: staff open the profile list, click Export, pick a format, click the Export
button and get a file, which is opened and read back: the list's profiles in the SPEC §3 layout
(CSV, XLSX) or as FORCE_REPLACE commands (JSON, NDJSON), only the filtered ones when the list is
filtered.

A staff member of one datamart never chooses it; a superuser who sees two chooses one in a
select, unless the list's datamart (or compartment) filter already names it. Drives Debian's
Chromium like tests/profiles/admin/test_browser.py (whose fixtures it reuses); the forms, each
file and the pages go to test-artifacts/.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
import pytest

from profiles.identifiers import EmailIdentifier
from tests.browser import ARTIFACTS, COLOR_SCHEMES, logged_in_page, needs_chromium

pytestmark = needs_chromium

FORMATS = ("csv", "xlsx", "json", "ndjson")
# What each file must hold, by the account (or email) that names the profile in it.
DAVID = {"firstname": "David", "age": 41, "nl": {"subscribed": True, "period": "MONTHLY"}}
EMMA = {"firstname": "Emma", "age": 29, "vip": False}
ANON = {"firstname": "Anon", "city": "Paris"}
OTTO = {"firstname": "Otto"}


@pytest.fixture
def listed(datamart, crm_compartment, other_datamart, make_profile):
    """Two CRM accounts and an anonymous profile in datamart 1; one profile in datamart 2."""
    make_profile(datamart, "c-1", DAVID, compartment_id=1606)
    make_profile(datamart, "c-2", EMMA, compartment_id=1606)
    make_profile(datamart, None, ANON, identifier=EmailIdentifier("h-anon"))
    make_profile(other_datamart, "o-1", OTTO)


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw-root")


def export_from_the_list(page, file_format: str, *, shot: str, datamart=None):
    """On the list as it is on screen: Export, choose the format (and the datamart when asked),
    click Export; returns the downloaded file, kept in test-artifacts/."""
    page.click("a.export_link")
    page.wait_for_selector("#export-form")
    page.select_option("#id_format", label=file_format)
    if datamart is not None:
        page.select_option("#id_datamart", label=datamart)
    page.screenshot(path=str(ARTIFACTS / f"admin-export-{shot}-form.png"), full_page=True)
    with page.expect_download() as info:
        page.click("#export-form input[type=submit]")
    download = info.value
    assert download.failure() is None
    path = ARTIFACTS / f"admin-export-{shot}{Path(download.suggested_filename).suffix}"
    download.save_as(path)
    assert download.suggested_filename.endswith(f".{file_format}")
    return path


# -- reading the files, each with the plain library of its format


def flat_rows(path: Path, file_format: str) -> tuple[list[str], list[dict]]:
    if file_format == "csv":
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
    else:
        sheet = openpyxl.load_workbook(path).active
        rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    header, *body = rows
    return header, [dict(zip(header, row, strict=True)) for row in body]


def commands(path: Path, file_format: str) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    if file_format == "json":
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def exported_profiles(path: Path, file_format: str) -> dict[str, tuple[int, dict]]:
    """{account or email: (compartment, properties)} as the file states them."""
    if file_format in ("json", "ndjson"):
        found = {}
        for command in commands(path, file_format):
            assert (command["operation"], command["update_strategy"]) == (
                "UPSERT",
                "FORCE_REPLACE",
            )
            profile = dict(command["user_profile"])
            key = command.get("user_account_id") or command.get("email_hash")
            compartment = profile.pop("$compartment_id")
            if "user_account_id" in command:  # the profile's own account names it
                assert profile.pop("$user_account_id") == command["user_account_id"]
                assert command["compartment_id"] == compartment
            found[key] = (int(compartment), profile)
        return found
    header, rows = flat_rows(path, file_format)
    # SPEC §3: reserved columns and one column per property path, typed by a suffix.
    paths = [name.partition(":")[0] for name in header]
    assert paths[:2] == ["operation", "update_strategy"], header
    assert "$compartment_id" in paths, header
    found = {}
    for row in rows:
        cells = typed_cells(row, file_format)
        assert (cells["operation"], cells["update_strategy"]) == ("UPSERT", "FORCE_REPLACE"), row
        key = cells.get("user_account_id") or cells.get("email_hash")
        if "user_account_id" in cells:
            assert cells["$user_account_id"] == cells["user_account_id"]
            assert int(cells["compartment_id"]) == int(cells["$compartment_id"])
        properties: dict = {}
        for name, value in cells.items():
            if name in RESERVED:
                continue
            *parents, leaf = name.split(".")  # a dotted header builds nested objects
            target = properties
            for parent in parents:
                target = target.setdefault(parent, {})
            target[leaf] = value
        assert key not in found
        found[key] = (int(cells["$compartment_id"]), properties)
    return found


RESERVED = {
    "operation",
    "compartment_id",
    "user_account_id",
    "email_hash",
    "user_agent_id",
    "update_strategy",
    "merge_objects",
    "$compartment_id",
    "$user_account_id",
}
CSV_TYPES = {
    "": str,
    "str": str,
    "int": int,
    "float": float,
    "bool": {"true": True, "false": False}.__getitem__,
    "json": json.loads,
}


def typed_cells(row: dict, file_format: str) -> dict:
    """{path: value} of a row's non-empty cells: a CSV cell read by its header's suffix, an
    XLSX cell of its own type (`:json` text parsed)."""
    cells = {}
    for header, cell in row.items():
        if cell in (None, ""):
            continue  # SPEC §3: an empty cell is "not in this line"
        path, _, suffix = header.partition(":")
        if file_format == "csv":
            cells[path] = CSV_TYPES[suffix](cell)
        else:
            cells[path] = json.loads(cell) if suffix == "json" else cell
    return cells


# -- the tests


@pytest.mark.parametrize("color_scheme", COLOR_SCHEMES)
@pytest.mark.parametrize("file_format", FORMATS)
def test_a_one_datamart_staff_member_clicks_export_and_opens_the_file(
    transactional_db, live_server, browser, listed, importer, file_format, color_scheme
):
    ARTIFACTS.mkdir(exist_ok=True)
    page = logged_in_page(browser, live_server, "ines", color_scheme=color_scheme)
    page.goto(f"{live_server.url}/admin/profiles/userprofile/")
    assert page.locator("#result_list tbody tr").count() == 3
    page.click("a.export_link")
    page.wait_for_selector("#export-form")
    # Their only datamart is chosen for them: no select, the page names it.
    assert page.locator("#id_datamart").get_attribute("type") == "hidden"
    assert page.locator("#id_datamart").get_attribute("value") == "1"
    assert "Demo (1)" in page.locator("#export-datamart").inner_text()
    assert "3 profiles match" in page.locator("#export-count").inner_text()
    page.go_back()

    path = export_from_the_list(page, file_format, shot=f"staff-{file_format}-{color_scheme}")
    assert exported_profiles(path, file_format) == {
        "c-1": (1606, DAVID),
        "c-2": (1606, EMMA),
        "h-anon": (1, ANON),
    }


@pytest.mark.parametrize("file_format", FORMATS)
def test_the_export_of_a_filtered_list_holds_only_its_rows(
    transactional_db, live_server, browser, listed, importer, crm_compartment, file_format
):
    ARTIFACTS.mkdir(exist_ok=True)
    page = logged_in_page(browser, live_server, "ines")
    page.goto(f"{live_server.url}/admin/profiles/userprofile/")
    page.locator("#changelist-filter").get_by_role("link", name="CRM (1606)").click()
    page.wait_for_url(f"**/?compartment={crm_compartment.pk}")
    assert page.locator("#result_list tbody tr").count() == 2
    path = export_from_the_list(page, file_format, shot=f"compartment-{file_format}")
    assert exported_profiles(path, file_format) == {"c-1": (1606, DAVID), "c-2": (1606, EMMA)}

    page.goto(f"{live_server.url}/admin/profiles/userprofile/")
    page.fill("#searchbar", "c-2")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**/?q=c-2")
    assert page.locator("#result_list tbody tr").count() == 1
    path = export_from_the_list(page, file_format, shot=f"search-{file_format}")
    assert exported_profiles(path, file_format) == {"c-2": (1606, EMMA)}


@pytest.mark.parametrize("file_format", FORMATS)
def test_a_superuser_chooses_the_datamart_or_the_lists_filter_names_it(
    transactional_db, live_server, browser, listed, root, crm_compartment, file_format
):
    ARTIFACTS.mkdir(exist_ok=True)
    page = logged_in_page(browser, live_server, "root")
    page.goto(f"{live_server.url}/admin/profiles/userprofile/")
    assert page.locator("#result_list tbody tr").count() == 4

    # Unfiltered, the list shows both datamarts: the export asks which one, nothing preselected.
    page.click("a.export_link")
    page.wait_for_selector("#export-form")
    choices = page.locator("#id_datamart option").all_inner_texts()
    assert choices == ["Choose the datamart to export", "Demo (1)", "Other (2)"]
    assert "in the datamarts you see" in page.locator("#export-count").inner_text()
    page.click("#export-form input[type=submit]")  # the browser asks for the datamart first
    assert page.locator("#id_datamart").evaluate("select => select.validity.valueMissing")
    assert page.locator("#export-form").is_visible()
    page.screenshot(path=str(ARTIFACTS / "admin-export-root-unchosen.png"), full_page=True)
    page.goto(f"{live_server.url}/admin/profiles/userprofile/")
    path = export_from_the_list(page, file_format, shot=f"root-{file_format}", datamart="Other (2)")
    assert exported_profiles(path, file_format) == {"o-1": (1, OTTO)}

    # The list filtered on a datamart (or on a compartment, which belongs to one) names it.
    page.goto(f"{live_server.url}/admin/profiles/userprofile/")
    page.locator("#changelist-filter").get_by_role("link", name="Demo (1)").click()
    page.wait_for_url("**/?datamart=1")
    path = export_from_the_list(page, file_format, shot=f"root-demo-{file_format}")
    assert exported_profiles(path, file_format) == {
        "c-1": (1606, DAVID),
        "c-2": (1606, EMMA),
        "h-anon": (1, ANON),
    }
    page.goto(f"{live_server.url}/admin/profiles/userprofile/?compartment={crm_compartment.pk}")
    page.click("a.export_link")
    page.wait_for_selector("#export-form")
    assert page.locator("#id_datamart").get_attribute("type") == "hidden"
    assert "Demo (1)" in page.locator("#export-datamart").inner_text()
    page.go_back()
    path = export_from_the_list(page, file_format, shot=f"root-crm-{file_format}")
    assert exported_profiles(path, file_format) == {"c-1": (1606, DAVID), "c-2": (1606, EMMA)}
