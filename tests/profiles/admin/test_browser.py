"""In a real browser: a staff member finds a profile, edits a nested property in the JSON editor,
saves, and reads the change in the history; a member of another datamart gets 404.

Drives Debian's Chromium (/usr/bin/chromium) through Playwright; `make test` installs it with
apt-get when run as root. Screenshots of the list and the change page go to test-artifacts/.
"""

from __future__ import annotations

import re

import pytest

from profiles.models import ProfileChange, UserProfile
from tests.browser import ARTIFACTS, COLOR_SCHEMES, drawn_rgb, logged_in_page, needs_chromium

pytestmark = needs_chromium


@pytest.fixture
def customer(datamart, make_profile):
    return make_profile(
        datamart,
        "c9879698769",
        {
            "firstname": "David",
            "newsletter_options": {"subscribed": True, "preferred_periods": "MONTHLY"},
            # Past what a JavaScript number holds: the editor's save must not round them.
            "big_ids": [9007199254740993, 2**63 - 1, -(2**63)],
        },
    )


@pytest.mark.parametrize("color_scheme", COLOR_SCHEMES)
def test_staff_member_edits_a_nested_property_and_reads_it_in_the_history(
    transactional_db, live_server, browser, customer, alice, bob, color_scheme
):
    ARTIFACTS.mkdir(exist_ok=True)
    page = logged_in_page(browser, live_server, "alice", color_scheme=color_scheme)

    page.goto(f"{live_server.url}/admin/profiles/userprofile/")
    page.fill("#searchbar", "c9879698769")
    page.press("#searchbar", "Enter")
    page.wait_for_selector("#result_list")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "c9879698769" in rows.first.inner_text()
    page.screenshot(path=str(ARTIFACTS / f"admin-profile-list-{color_scheme}.png"), full_page=True)

    rows.first.locator("th a").click()
    page.wait_for_selector(".jsoneditor-tree")
    editor = page.locator(".field-properties")
    # The tree view opens expanded: the nested object's keys come on screen (the editor
    # expands its tree after drawing it: waited for, on a loaded machine).
    editor.get_by_text("preferred_periods", exact=True).wait_for(state="visible", timeout=15_000)
    # The editor's toolbar is drawn in its own colour, where staff see it: the editor's body,
    # pulled up under the bar, once painted over it (white icons on white in the light theme).
    menu = editor.locator("div.jsoneditor-menu")
    box = menu.bounding_box()
    background = menu.evaluate("m => getComputedStyle(m).backgroundColor")
    drawn = drawn_rgb(page, box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2)
    assert f"rgb({drawn[0]}, {drawn[1]}, {drawn[2]})" == background, (drawn, background)
    value = (
        editor.locator("tr", has=page.get_by_text("preferred_periods", exact=True))
        .locator("div.jsoneditor-value")
        .first
    )
    value.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("WEEKLY")
    page.locator("#content h1").click()  # leaving the value commits the edit
    page.wait_for_function(
        "() => document.getElementById('id_properties_textarea').value.includes('WEEKLY')"
    )
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist")

    history = page.locator("table.profile-history tbody tr")
    assert history.count() == 2
    newest = history.first.inner_text()
    assert re.search(r"Back-office\s+alice\s+Updated\s+newsletter_options", newest), newest
    page.screenshot(
        path=str(ARTIFACTS / f"admin-profile-change-{color_scheme}.png"), full_page=True
    )
    stored = UserProfile.objects.get(pk=customer.pk)
    assert stored.properties["newsletter_options"] == {
        "subscribed": True,
        "preferred_periods": "WEEKLY",
    }
    assert stored.properties["big_ids"] == [9007199254740993, 2**63 - 1, -(2**63)]
    assert ProfileChange.objects.filter(profile_id=customer.pk, user=alice).exists()

    page.click(".field-point_link a")
    page.wait_for_selector("table.profile-history")
    assert "c9879698769" in page.locator(".inline-group").nth(0).inner_text()
    page.screenshot(path=str(ARTIFACTS / f"admin-user-point-{color_scheme}.png"), full_page=True)

    other = logged_in_page(browser, live_server, "bob")
    response = other.goto(f"{live_server.url}/admin/profiles/userprofile/{customer.pk}/change/")
    assert response.status == 404


def test_text_typed_in_the_code_view_that_is_no_json_is_refused_not_dropped(
    transactional_db, live_server, browser, customer, alice
):
    """django-json-widget sent the last text that parsed: the typed one was lost and the page
    said nothing changed. It is sent as typed, and the field says why it is refused."""
    page = logged_in_page(browser, live_server, "alice")
    page.goto(f"{live_server.url}/admin/profiles/userprofile/{customer.pk}/change/")
    page.wait_for_selector(".jsoneditor-tree")
    page.click(".field-properties button.jsoneditor-modes")
    page.click(".jsoneditor-contextmenu button:has-text('Code')")
    page.wait_for_selector(".field-properties .ace_editor")
    page.click(".field-properties .ace_content")
    page.keyboard.press("Control+A")
    page.keyboard.insert_text('{"firstname": "Typed", "age": 99,}')
    page.click("input[name=_continue]")
    page.wait_for_selector(".errornote")
    assert "Enter a valid JSON" in page.locator(".field-properties .errorlist").inner_text()
    # The refused text is back in the Code view, as typed, to fix.
    page.wait_for_selector(".field-properties .ace_editor")
    assert page.evaluate("document.getElementById('id_properties').jsonEditor.getText()") == (
        '{"firstname": "Typed", "age": 99,}'
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-profile-invalid-json.png"), full_page=True)
    assert UserProfile.objects.get(pk=customer.pk).properties == customer.properties
