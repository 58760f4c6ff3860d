"""In a real browser, as staff click: the rough edges of the back-office, in light and dark mode,
1366 px wide. The JSON editor and the preview's changed keys stay readable in dark mode; the
profile list with four property columns keeps "Last modified" on screen; list columns are typed
one per line; a new API token is copied with one click; the import form offers its samples;
an empty profile list says how to fill it; the API root and the browsable API for staff.

Screenshots go to test-artifacts/ (edges-*.png).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imports.formats import FileFormat
from imports.samples import sample_file
from profiles.models import ApiToken, Compartment
from tests.browser import logged_in_page, needs_chromium, screenshot

pytestmark = needs_chromium

WIDTH = 1366
BOTH = pytest.mark.parametrize("color_scheme", ["light", "dark"])

# WCAG contrast of an element's text against the first opaque background behind it.
CONTRAST = """element => {
  const rgb = c => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  let node = element, background = null;
  while (node && node.nodeType === 1) {
    const value = rgb(getComputedStyle(node).backgroundColor);
    if (value.length < 4 || value[3] > 0.5) { if (!(value.length === 4 && value[3] === 0)) { background = value; break; } }
    node = node.parentElement;
  }
  background = background || [255, 255, 255];
  const a = lum(rgb(getComputedStyle(element).color)), b = lum(background.slice(0, 3));
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


def readable(locator) -> float:
    return locator.evaluate(CONTRAST)


@BOTH
def test_the_json_editor_is_readable(
    transactional_db, live_server, browser, importer, make_profile, datamart, color_scheme
):
    profile = make_profile(
        datamart, "c-1", {"firstname": "Zoé", "age": 41, "nl": {"on": True, "p": None}}
    )
    page = logged_in_page(browser, live_server, "ines", color_scheme=color_scheme, width=WIDTH)
    page.goto(f"{live_server.url}/admin/profiles/userprofile/{profile.pk}/change/")
    page.wait_for_selector("div.jsoneditor-tree")
    screenshot(page, f"edges-json-editor-{color_scheme}")
    for selector in (
        "div.jsoneditor-field >> nth=0",
        "div.jsoneditor-value.jsoneditor-string >> nth=0",
        "div.jsoneditor-value.jsoneditor-number >> nth=0",
        "div.jsoneditor-search input",
    ):
        assert readable(page.locator(selector)) >= 4.5, selector
    body = page.evaluate("getComputedStyle(document.body).backgroundColor")
    tree = page.evaluate(
        "getComputedStyle(document.querySelector('div.jsoneditor-tree')).backgroundColor"
    )
    assert tree == body  # no grey block in the middle of the page


@BOTH
def test_four_property_columns_keep_last_modified_on_screen(
    transactional_db,
    live_server,
    browser,
    importer,
    make_profile,
    datamart,
    crm_compartment,
    color_scheme,
):
    paths = ["firstname", "newsletter.preferred_periods", "address.city", "loyalty.tier"]
    Compartment.objects.filter(pk=crm_compartment.pk).update(list_properties=paths)
    long = "a rather long value that would widen the column " * 2
    for index in range(3):
        make_profile(
            datamart,
            f"account-with-a-long-identifier-{index}",
            {
                "firstname": f"Name {index}",
                "newsletter": {"preferred_periods": ["MONTHLY", "WEEKLY", "DAILY"]},
                "address": {"city": long},
                "loyalty": {"tier": "platinum-plus-gold"},
            },
            compartment_id=1606,
        )
    page = logged_in_page(browser, live_server, "ines", color_scheme=color_scheme, width=WIDTH)
    page.goto(f"{live_server.url}/admin/profiles/userprofile/?compartment={crm_compartment.pk}")
    screenshot(page, f"edges-profile-list-columns-{color_scheme}")
    modified = page.locator("#result_list th.column-modified")
    box = modified.bounding_box()
    assert box["x"] + box["width"] <= WIDTH, box
    assert page.evaluate(
        "() => { const r = document.querySelector('#changelist .results');"
        " return r.scrollWidth <= r.clientWidth; }"
    )


def test_list_columns_are_typed_one_per_line(
    transactional_db, live_server, browser, importer, crm_compartment
):
    page = logged_in_page(browser, live_server, "ines", width=WIDTH)
    page.goto(f"{live_server.url}/admin/profiles/compartment/{crm_compartment.pk}/change/")
    page.fill("#id_list_properties", "firstname\nnewsletter.subscribed\na..b")
    page.click("input[name=_continue]")
    assert (
        "'a..b' is not a property path"
        in page.locator(".field-list_properties .errorlist").inner_text()
    )
    screenshot(page, "edges-compartment-columns-error")
    page.fill("#id_list_properties", "firstname\nnewsletter.subscribed, age")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    crm_compartment.refresh_from_db()
    assert crm_compartment.list_properties == ["firstname", "newsletter.subscribed", "age"]
    assert page.input_value("#id_list_properties") == "firstname\nnewsletter.subscribed\nage"
    screenshot(page, "edges-compartment-columns")


@BOTH
def test_a_new_api_token_is_copied_with_one_click(
    transactional_db, live_server, browser, importer, datamart, color_scheme
):
    page = logged_in_page(browser, live_server, "ines", color_scheme=color_scheme, width=WIDTH)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"{live_server.url}/admin/profiles/apitoken/add/")
    page.fill("#id_name", "crm-sync")
    page.select_option("#id_datamart", label="Demo (1)")
    page.click("input[name=_save]")
    page.click("#copy-token")
    page.wait_for_function("() => document.getElementById('copy-token-status').textContent")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.input_value("#raw-token") and len(copied) > 20
    assert ApiToken.objects.get().name == "crm-sync"
    assert "Copied" in page.locator("#copy-token").inner_text()
    screenshot(page, f"edges-api-token-copied-{color_scheme}")


@BOTH
def test_the_import_form_offers_samples_and_an_empty_list_a_hint(
    transactional_db, live_server, browser, importer, datamart, color_scheme
):
    page = logged_in_page(browser, live_server, "ines", color_scheme=color_scheme, width=WIDTH)
    page.goto(f"{live_server.url}/admin/profiles/userprofile/")
    hint = page.locator("#profiles-empty")
    assert "Import a file" in hint.inner_text() and "Add a profile" in hint.inner_text()
    screenshot(page, f"edges-empty-profile-list-{color_scheme}")

    hint.locator("a", has_text="Add a profile").count()  # the hint's links are real links
    page.click("a.import_link")
    page.wait_for_selector("#import-samples")
    example = page.locator("#ndjson-example").inner_text()
    assert all(json.loads(line)["operation"] for line in example.strip().splitlines())
    for extension, fmt in (("csv", FileFormat.CSV), ("ndjson", FileFormat.NDJSON)):
        with page.expect_download() as download:
            page.click(f"#import-samples a[href$='sample.{extension}']")
        saved = download.value.path()
        assert download.value.suggested_filename == f"profiles-sample.{extension}"
        assert Path(saved).read_bytes() == sample_file(fmt)[1]
    assert readable(page.locator("#ndjson-example")) >= 4.5
    screenshot(page, f"edges-import-form-{color_scheme}")


@BOTH
def test_staff_browse_the_api_from_its_root(
    transactional_db, live_server, browser, importer, datamart, color_scheme
):
    page = logged_in_page(browser, live_server, "ines", color_scheme=color_scheme, width=WIDTH)
    page.goto(f"{live_server.url}/api/v1/")
    content = page.locator(".response-info").inner_text()
    assert '"status": "ok"' in content and "/api/v1/datamarts/{dm}/compartments" in content
    screenshot(page, f"edges-api-root-{color_scheme}")
    page.goto(f"{live_server.url}/api/v1/datamarts/1/compartments")
    assert '"compartment_id": 1' in page.locator(".response-info").inner_text()
    screenshot(page, f"edges-api-compartments-{color_scheme}")
    page.goto(f"{live_server.url}/api/v1/datamarts/2/compartments")
    assert "NOT_FOUND" in page.locator(".response-info").inner_text()  # scoped as the admin
