"""A profile's history on its page and its point's page: when, source, who, action, keys."""

from __future__ import annotations

import html
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from profiles.history import ChangeSource
from profiles.identifiers import EmailIdentifier
from profiles.merge import DEFAULT_MERGE_MODE
from profiles.models import ProfileChange
from profiles.services import (
    api_token_create,
    profile_delete,
    profile_upsert,
    user_point_resolve,
)


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
        ["Import", "import execution #4711", "Updated", "nl"],
        ["API", "API token “crm-sync”", "Updated", "city"],
        ["Back-office", "alice", "Updated", "gender"],
        ["System", "system", "Created", "firstname"],
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", row[0]) for row in rows)


def test_a_change_made_by_an_import_links_to_its_execution_for_who_may_open_it(
    edited_profile, alice, make_staff, datamart, login
):
    url = f"/admin/profiles/userprofile/{edited_profile.pk}/change/"
    importer = make_staff("imogen", [datamart], extra=("profiles.import_profiles",))
    page = login(importer).get(url).content.decode()
    assert 'href="/admin/imports/execution/4711/change/"' in page
    # Staff who may not open executions read which one made the change, with no link to a 403.
    page = login(alice).get(url).content.decode()
    assert "import execution #4711" in page
    assert "/admin/imports/execution/4711/" not in page


def test_each_change_links_to_its_execution_staff_user_and_api_token(
    edited_profile, alice, django_user_model, login
):
    """An import a staff member uploaded names both; a token links to its page, a user to
    theirs for whoever may open users."""
    token = ProfileChange.objects.get(profile_id=edited_profile.pk, source="api").api_token
    profile_upsert(
        user_point=edited_profile.user_point,
        compartment=edited_profile.compartment,
        user_account_id="c1",
        properties={"age": 41},
        mode=DEFAULT_MERGE_MODE,
        source=ChangeSource(kind="import", execution_id=12, user_id=alice.pk),
    )
    url = f"/admin/profiles/userprofile/{edited_profile.pk}/change/"
    rows = history_rows(login(alice).get(url).content.decode())
    assert rows[0][1:3] == ["Import", "import execution #12 by alice"]
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    page = login(root).get(url).content.decode()
    assert f'href="/admin/auth/user/{alice.pk}/change/">alice</a>' in page
    assert f'href="/admin/profiles/apitoken/{token.pk}/change/">API token “crm-sync”</a>' in page
    for change in ProfileChange.objects.filter(profile_id=edited_profile.pk):
        assert f'href="/admin/profiles/profilechange/{change.pk}/change/"' in page


def diff_rows(page: str) -> list[list[str]]:
    table = page[page.index('id="change-diff"') :]
    table = table[: table.index("</table>")]
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)
        if "<td" in row
    ]


def test_a_changes_page_shows_each_key_before_and_after(edited_profile, alice, login):
    profile_upsert(
        user_point=edited_profile.user_point,
        compartment=edited_profile.compartment,
        user_account_id="c1",
        properties={"nl": {"on": False}, "gender": None},
        mode=DEFAULT_MERGE_MODE,
        source=ChangeSource(kind="import", execution_id=4711),
    )
    changes = list(ProfileChange.objects.filter(profile_id=edited_profile.pk).order_by("id"))
    client = login(alice)
    created = client.get(f"/admin/profiles/profilechange/{changes[0].pk}/change/")
    assert created.status_code == 200
    assert diff_rows(created.content.decode()) == [["firstname", "(absent)", '"David"']]
    nl_added = client.get(f"/admin/profiles/profilechange/{changes[3].pk}/change/").content.decode()
    # the value after is the next change's value before, not the profile's current one
    assert diff_rows(nl_added) == [["nl", "(absent)", '{  "on": true}']]
    assert "import execution #4711" in nl_added  # alice may not open executions: no link
    last = client.get(f"/admin/profiles/profilechange/{changes[4].pk}/change/").content.decode()
    assert diff_rows(last) == [
        ["gender", "1", "null"],
        ["nl", '{  "on": true}', '{  "on": false}'],
    ]
    assert '<span class="line changed">  &quot;on&quot;: false</span>' in last
    assert "Previous values" not in last  # not Django's dump of the model


def test_a_change_of_another_datamart_answers_404(edited_profile, bob, login):
    change = ProfileChange.objects.filter(profile_id=edited_profile.pk).first()
    assert login(bob).get(f"/admin/profiles/profilechange/{change.pk}/change/").status_code == 404


def test_the_history_button_opens_the_recorded_history(edited_profile, alice, login):
    client = login(alice)
    page = client.get(f"/admin/profiles/userprofile/{edited_profile.pk}/change/").content.decode()
    history_url = f"/admin/profiles/userprofile/{edited_profile.pk}/history/"
    assert f'href="{history_url}"' in page
    history = client.get(history_url).content.decode()
    assert "4 recorded changes" in history
    assert [row[1:] for row in history_rows(history)][0] == [
        "Import",
        "import execution #4711",
        "Updated",
        "nl",
    ]
    point = client.get(f"/admin/profiles/userpoint/{edited_profile.user_point_id}/history/")
    assert len(history_rows(point.content.decode())) == 4


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
    assert 'name="_save"' not in page.content.decode()
    assert client.post(f"/admin/profiles/profilechange/{change.pk}/change/").status_code == 200
    assert ProfileChange.objects.get(pk=change.pk).changed_keys == change.changed_keys
    assert client.post(f"/admin/profiles/profilechange/{change.pk}/delete/").status_code == 403


def listed_changes(client, term: str) -> list[tuple[str, str]]:
    listing = client.get("/admin/profiles/profilechange/", {"q": term})
    assert listing.status_code == 200
    return [(change.user_account_id, change.action) for change in listing.context["cl"].result_list]


def test_history_list_finds_the_changes_of_an_account_even_after_its_profile_is_deleted(
    datamart, other_datamart, make_profile, alice, login
):
    kept = make_profile(datamart, "c1", {"firstname": "David"})
    gone = make_profile(datamart, "c2", {"firstname": "Nora"})
    make_profile(other_datamart, "c2", {"firstname": "Elsewhere"})
    profile_delete(user_point=gone.user_point, compartment=gone.compartment, user_account_id="c2")
    client = login(alice)
    assert listed_changes(client, "c2") == [("c2", "deleted"), ("c2", "created")]
    assert listed_changes(client, str(kept.user_point_id)) == [("c1", "created")]
    assert listed_changes(client, "nobody") == []


def test_history_list_finds_a_profile_whose_account_is_not_an_identifier(
    datamart, crm_compartment, alice, login
):
    point, _ = user_point_resolve(
        datamart=datamart, identifier=EmailIdentifier("hash-1"), create=True
    )
    profile_upsert(
        user_point=point,
        compartment=crm_compartment,
        user_account_id="only-on-the-profile",
        properties={"score": 1},
        mode=DEFAULT_MERGE_MODE,
    )
    client = login(alice)
    assert listed_changes(client, "only-on-the-profile") == [("only-on-the-profile", "created")]
    assert listed_changes(client, "hash-1") == [("only-on-the-profile", "created")]


def plan_nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


@pytest.mark.postgres
def test_history_reads_touch_only_the_rows_they_show(edited_profile, make_profile, alice, login):
    """Imports write a history row per change: every page reads it through an index that
    leads to the rows shown, not by scanning or filtering the rest of the datamart's history."""
    filler = make_profile(edited_profile.datamart, "filler", {"n": 0})
    ProfileChange.objects.bulk_create(
        ProfileChange(
            datamart_id=filler.datamart_id,
            user_point_id=filler.user_point_id,
            profile_id=filler.pk,
            compartment_id=1,
            user_account_id="filler",
            action="updated",
            changed_keys=["n"],
            source="import",
            execution_id=1,
        )
        for _ in range(5000)
    )
    client = login(alice)
    with CaptureQueriesContext(connection) as queries, connection.cursor() as cursor:
        cursor.execute("ANALYZE profiles_profilechange")
        client.get(f"/admin/profiles/userprofile/{edited_profile.pk}/change/")
        client.get(f"/admin/profiles/userpoint/{edited_profile.user_point_id}/change/")
        client.get("/admin/profiles/profilechange/", {"q": "c1"})
        client.get("/admin/profiles/profilechange/", {"datamart": edited_profile.datamart_id})
        history_reads = [
            query["sql"]
            for query in queries
            if 'FROM "profiles_profilechange"' in query["sql"]
            and not query["sql"].startswith("SELECT COUNT(*)")
        ]
        assert len(history_reads) == 4, history_reads
        for sql in history_reads:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
            plan = cursor.fetchone()[0][0]["Plan"]
            history_nodes = [
                node
                for node in plan_nodes(plan)
                if node.get("Relation Name") == "profiles_profilechange"
            ]
            assert history_nodes, (sql, plan)
            for node in history_nodes:
                assert node["Node Type"] != "Seq Scan", (sql, plan)
                assert node.get("Rows Removed by Filter", 0) < 100, (sql, plan)
