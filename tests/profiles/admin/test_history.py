"""A profile's history on its page and its point's page: when, source, who, action, keys."""

from __future__ import annotations

import re

import pytest

from profiles.merge import DEFAULT_MERGE_MODE
from profiles.models import ProfileChange
from profiles.services import ChangeSource, api_token_create, profile_upsert


@pytest.fixture
def edited_profile(datamart, make_profile, alice):
    """Created by the system, then changed by a staff member, an API token and an import."""
    profile = make_profile(datamart, "c1", {"firstname": "David"})
    token, _ = api_token_create(datamart=datamart, name="crm-sync")
    for properties, source in (
        ({"gender": 1}, ChangeSource(kind="admin", user_id=alice.pk)),
        ({"city": "Lyon"}, ChangeSource(kind="api", api_token_id=token.pk)),
        ({"nl": {"on": True}}, ChangeSource(kind="import", execution_id=4711)),
    ):
        profile_upsert(
            user_point=profile.user_point,
            compartment=profile.compartment,
            user_account_id="c1",
            properties=properties,
            mode=DEFAULT_MERGE_MODE,
            source=source,
        )
    return profile


def history_rows(page: str) -> list[list[str]]:
    table = page[page.index('<table class="profile-history">') :]
    table = table[: table.index("</table>")]
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", table)
        if "<td>" in row
    ]


def test_profile_page_lists_changes_newest_first_with_their_source(edited_profile, alice, login):
    page = login(alice).get(f"/admin/profiles/userprofile/{edited_profile.pk}/change/")
    rows = history_rows(page.content.decode())
    assert [row[1:] for row in rows] == [
        ["Import", "import execution 4711", "Updated", "nl"],
        ["API", "API token “crm-sync”", "Updated", "city"],
        ["Back-office", "alice", "Updated", "gender"],
        ["System", "system", "Created", "firstname"],
    ]
    assert all(row[0].endswith("UTC") for row in rows)


def test_a_change_made_by_an_import_links_to_its_execution(edited_profile, alice, login):
    page = login(alice).get(f"/admin/profiles/userprofile/{edited_profile.pk}/change/")
    assert 'href="/admin/imports/execution/4711/change/"' in page.content.decode()


def test_point_page_shows_the_history_of_all_its_profiles(
    edited_profile, crm_compartment, alice, login
):
    profile_upsert(
        user_point=edited_profile.user_point,
        compartment=crm_compartment,
        user_account_id=None,
        properties={"score": 3},
        mode=DEFAULT_MERGE_MODE,
    )
    page = login(alice).get(f"/admin/profiles/userpoint/{edited_profile.user_point_id}/change/")
    rows = history_rows(page.content.decode())
    assert len(rows) == 5
    assert rows[0][1:] == ["1606/anonymous", "System", "system", "Created", "score"]
    assert rows[-1][1] == "1/c1"


def test_history_list_is_read_only(edited_profile, alice, login):
    client = login(alice)
    change = ProfileChange.objects.filter(profile_id=edited_profile.pk).first()
    listing = client.get("/admin/profiles/profilechange/")
    assert listing.context["cl"].result_count == 4
    assert not listing.context["has_add_permission"]
    page = client.get(f"/admin/profiles/profilechange/{change.pk}/change/")
    assert page.status_code == 200
    assert not page.context["has_change_permission"]
    assert client.post(f"/admin/profiles/profilechange/{change.pk}/delete/").status_code == 403
