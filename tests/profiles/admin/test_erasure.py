"""The user point admin's action "Erase (right to be forgotten)": a confirmation page, then the
same erasure as the API's, recorded as the staff user's."""

from __future__ import annotations

import re

from profiles.models import ProfileChange, UserPoint

POINTS = "/admin/profiles/userpoint/"


def erase(client, *points, confirm: bool):
    body = {"action": "erase_points", "_selected_action": [str(point.pk) for point in points]}
    if confirm:
        body["post"] = "yes"
    return client.post(POINTS, body)


def test_erasing_asks_for_confirmation_then_erases_as_the_staff_user(
    datamart, make_profile, alice, login
):
    point = make_profile(datamart, "erase-me-account", {"firstname": "Ann"}).user_point
    client = login(alice)
    page = erase(client, point, confirm=False)
    assert page.status_code == 200
    assert (
        "erase-me-account" in page.content.decode() and "cannot be undone" in page.content.decode()
    )
    assert 'value="Yes, erase 1 user point"' in page.content.decode()
    assert UserPoint.objects.filter(pk=point.pk).exists()

    assert erase(client, point, confirm=True).status_code == 302
    assert not UserPoint.objects.filter(pk=point.pk).exists()
    record = ProfileChange.objects.get(action=ProfileChange.Action.ERASED)
    assert (record.source, record.user, record.api_token) == ("admin", alice, None)
    assert not ProfileChange.objects.filter(user_account_id="erase-me-account").exists()
    history = client.get("/admin/profiles/profilechange/").content.decode()
    assert '<td class="field-action">Erased</td>' in history
    assert "erase-me-account" not in history
    # The erased profile's earlier changes link nowhere: their profile is gone.
    profile_links = re.findall(r'href="(/admin/profiles/userprofile/\d+/change/)"', history)
    assert profile_links == []
    kept = make_profile(datamart, "kept-account", {"firstname": "Bo"})
    history = client.get("/admin/profiles/profilechange/").content.decode()
    assert f'href="/admin/profiles/userprofile/{kept.pk}/change/"' in history


def test_the_points_page_offers_the_erasure(datamart, make_profile, alice, login):
    point = make_profile(datamart, "a-1", {}).user_point
    page = login(alice).get(f"{POINTS}{point.pk}/change/").content.decode()
    assert "Erase (right to be forgotten)" in page and 'value="erase_points"' in page


def test_another_datamarts_point_cannot_be_erased(
    datamart, other_datamart, make_profile, alice, login
):
    theirs = make_profile(other_datamart, "theirs", {}).user_point
    erase(login(alice), theirs, confirm=True)
    assert UserPoint.objects.filter(pk=theirs.pk).exists()
    assert not ProfileChange.objects.filter(action=ProfileChange.Action.ERASED).exists()
