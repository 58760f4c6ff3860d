"""The profile list: exact searches, filters, columns per compartment, no per-row queries."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext

from profiles.identifiers import EmailIdentifier, UserAgentIdentifier
from profiles.models import Compartment
from profiles.permissions import EXPORT_PROFILES
from profiles.selectors import ProfileListFilters, user_profiles_for_list
from profiles.services import identifier_attach

PROFILES = "/admin/profiles/userprofile/"


def listed(client, **params) -> list[str]:
    response = client.get(PROFILES, params)
    assert response.status_code == 200
    return sorted(profile.user_account_id for profile in response.context["cl"].result_list)


@pytest.fixture
def people(datamart, make_profile):
    return {
        "bool": make_profile(datamart, "p-bool", {"nl": {"subscribed": True}, "age": 30}),
        "text": make_profile(datamart, "p-text", {"nl": {"subscribed": "true"}, "age": "30"}),
        "false": make_profile(datamart, "p-false", {"nl": {"subscribed": False}, "age": 30.0}),
        "none": make_profile(datamart, "p-none", {"nl": {"subscribed": None}, "name": "Ann"}),
    }


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("nl.subscribed=true", ["p-bool"]),
        ('nl.subscribed="true"', ["p-text"]),
        ("nl.subscribed=false", ["p-false"]),
        ("nl.subscribed=null", ["p-none"]),
        ("age=30", ["p-bool", "p-false"]),
        ('age="30"', ["p-text"]),
        ("name=Ann", ["p-none"]),
        ('name="Ann"', ["p-none"]),
        ("name=Bob", []),
    ],
)
def test_property_filter_reads_the_value_as_a_json_literal(
    people, alice, login, expression, expected
):
    assert listed(login(alice), property=expression) == expected


def test_property_filter_that_is_not_path_equals_value_says_so(people, alice, login):
    response = login(alice).get(PROFILES, {"property": "no equals sign"}, follow=True)
    assert list(response.context["cl"].result_list) == []
    assert "is not a filter: write path=value" in response.content.decode()


# Values the database cannot compare or Python cannot parse: each was a 500 on one database.
HOSTILE_PROPERTY_FILTERS = [
    "age=1e999",
    "age=-1e999",
    "age=99999999999999999999",
    "age=" + "9" * 5000,
    'name="\\ud800"',
    'name="x\\u0000y"',
    "name=a\x00b",
    "na\x00me=Ann",
    'nl={"subscribed": "\\u0000"}',
    "nl=[1e999]",
    "nl=" + "[" * 3000,
    "nl=" + "[" * 3000 + "]" * 3000,
    "nl=" + '{"a":' * 40 + "1" + "}" * 40,
    "name=" + "x" * 1_000_001,
    ".".join(["a"] * 33) + "=1",
    "\x00",
    "\x00=1",
    "=1",
    "$compartment_id=1",
    'a"b=1',
]


@pytest.mark.parametrize("expression", HOSTILE_PROPERTY_FILTERS)
def test_a_property_filter_that_cannot_be_compared_says_so_and_lists_nothing(
    people, alice, login, expression
):
    response = login(alice).get(PROFILES, {"property": expression})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
    shown = [str(message) for message in response.context["messages"]]
    assert len(shown) == 1 and shown[0], shown


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "[1, NaN]"])
def test_a_non_finite_constant_is_no_json_literal_but_text_as_in_the_api(
    datamart, make_profile, alice, login, text
):
    make_profile(datamart, "p-text", {"name": text})
    make_profile(datamart, "p-other", {"name": "Ann"})
    assert listed(login(alice), property=f"name={text}") == ["p-text"]


@pytest.mark.postgres
@pytest.mark.parametrize(
    "expression",
    ["age=1e999", "age=NaN", "age=Infinity", 'name="\\ud800"', 'name="x\\u0000y"', "name=a\x00b"],
)
def test_on_postgresql_no_property_filter_sends_jsonb_what_it_refuses(
    people, alice, login, expression
):
    """`properties @> …` with Infinity, NaN, a NUL or a lone surrogate was a DataError (500)."""
    response = login(alice).get(PROFILES, {"property": expression})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


def test_property_filter_keeps_the_other_filters(people, datamart, alice, login):
    compartment = datamart.compartments.get()
    page = login(alice).get(PROFILES, {"compartment": compartment.pk}).content.decode()
    assert f'<input type="hidden" name="compartment" value="{compartment.pk}">' in page


def test_search_finds_a_profile_by_each_identifier_of_its_point_exactly(people, alice, login):
    point = people["bool"].user_point
    identifier_attach(user_point=point, identifier=EmailIdentifier("hash-1"))
    identifier_attach(user_point=point, identifier=UserAgentIdentifier("vec:42"))
    client = login(alice)
    for term in ("p-bool", "hash-1", "vec:42", str(point.pk), "  p-bool "):
        assert listed(client, q=term) == ["p-bool"], term
    for partial in ("p-", "hash", "P-BOOL"):
        assert listed(client, q=partial) == [], partial


def test_compartment_filter_shows_that_compartments_chosen_property_columns(
    datamart, crm_compartment, make_profile, alice, login
):
    Compartment.objects.filter(pk=crm_compartment.pk).update(
        list_properties=["firstname", "nl.subscribed"]
    )
    make_profile(
        datamart, "crm-1", {"firstname": "Zoe", "nl": {"subscribed": True}}, compartment_id=1606
    )
    make_profile(
        datamart, "crm-2", {"firstname": None, "nl": {"x": 1}}, compartment_id=1606
    )  # a stored null is shown null, a missing value a dash
    make_profile(datamart, "crm-3", {"a": 1}, compartment_id=1606)  # none of the columns
    make_profile(datamart, "web-1", {"zeta": 1, "alpha": 2, "beta": 3, "gamma": 4})
    client = login(alice)
    crm_page = client.get(PROFILES, {"compartment": crm_compartment.pk}).content.decode()
    assert '<th scope="col" class="column-property_firstname">' in crm_page
    assert '<td class="field-property_nl_subscribed">true</td>' in crm_page
    assert '<td class="field-property_firstname">null</td>' in crm_page
    assert '<td class="field-property_nl_subscribed">—</td>' in crm_page
    all_page = client.get(PROFILES).content.decode()
    assert "firstname: Zoe · nl.subscribed: true" in all_page
    assert "firstname: null · nl.subscribed: —" in all_page
    assert ">a: 1<" in all_page  # what it holds, not a row of dashes
    # Its first three keys in stored order (PostgreSQL's jsonb orders keys), then how many more.
    assert re.search(r"(zeta|alpha|beta|gamma): \d · (\w+: \d · ){2}\+1", all_page)


def test_modified_date_filter(people, alice, login):
    assert len(listed(login(alice), last_modified_ts__gte="2000-01-01 00:00:00+00:00")) == 4
    assert listed(login(alice), last_modified_ts__lt="2000-01-01 00:00:00+00:00") == []


def test_the_list_makes_no_query_per_row(datamart, make_profile, alice, login):
    client = login(alice)

    def queries_for_page() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(PROFILES).status_code == 200
        return len(captured)

    make_profile(datamart, "first", {"a": 1})
    few = queries_for_page()
    for number in range(20):
        make_profile(datamart, f"more-{number}", {"a": number})
    assert queries_for_page() == few


def test_user_point_list_searches_each_identifier_exactly(people, alice, login):
    point = people["text"].user_point
    identifier_attach(user_point=point, identifier=EmailIdentifier("hash-2"))
    client = login(alice)
    for term in ("p-text", "hash-2", str(point.pk)):
        response = client.get("/admin/profiles/userpoint/", {"q": term})
        assert [found.pk for found in response.context["cl"].result_list] == [point.pk], term
    assert client.get("/admin/profiles/userpoint/", {"q": "p-t"}).context["cl"].result_count == 0


@pytest.mark.parametrize(
    "query",
    [
        "",
        "compartment={crm}",
        "compartment=x",
        "property=age%3D30",
        "property=nl.subscribed%3Dtrue&compartment={default}",
        "q=p-bool",
        "q=hash-9",
        "datamart=1",
        "datamart=2&q=p-text",
        "last_modified_ts__gte=2000-01-01+00:00:00%2B00:00&last_modified_ts__lt=2999-01-01+00:00:00%2B00:00",
        "o=-1",
    ],
)
@pytest.mark.parametrize("who", ["alice", "root"])
def test_the_list_shows_the_rows_of_the_selector_exports_read(
    people,
    crm_compartment,
    other_datamart,
    make_profile,
    alice,
    login,
    django_user_model,
    who,
    query,
):
    """What a user sees in the list is what an export job of the same query string holds."""
    make_profile(other_datamart, "p-text", {"age": 30})
    identifier_attach(user_point=people["none"].user_point, identifier=EmailIdentifier("hash-9"))
    user = alice if who == "alice" else django_user_model.objects.create_superuser("root", "", "pw")
    query = query.format(crm=crm_compartment.pk, default=people["bool"].compartment_id)
    response = login(user).get(f"{PROFILES}?{query}")
    assert response.status_code == 200
    listed_pks = sorted(profile.pk for profile in response.context["cl"].result_list)
    selected = user_profiles_for_list(
        user=user, filters=ProfileListFilters.from_query(QueryDict(query))
    )
    assert listed_pks == sorted(profile.pk for profile in selected)


def test_a_parameter_the_list_does_not_filter_on_is_refused(people, alice, login):
    response = login(alice).get(PROFILES, {"user_account_id": "p-bool"})
    assert response.status_code == 400


def test_a_date_bound_that_is_no_date_asks_to_set_the_filters_again(people, alice, login):
    response = login(alice).get(PROFILES, {"last_modified_ts__gte": "soon"})
    assert (response.status_code, response["Location"]) == (302, f"{PROFILES}?e=1")


@pytest.mark.parametrize(
    "path",
    [
        PROFILES,
        "/admin/profiles/userprofile/export/",
        "/admin/profiles/userpoint/",
        "/admin/profiles/profilechange/",
    ],
)
@pytest.mark.parametrize("term", ["\x00", "acc\x00", "0b8e0f6c-5f7c-4a0e-9a57-6f1f4b3f2a10\x00"])
def test_a_search_holding_a_nul_finds_nothing_and_is_no_server_error(
    people, make_staff, datamart, login, path, term
):
    """No identifier or account id holds a NUL; PostgreSQL's text cannot (a DataError, 500)."""
    exporter = make_staff("exporter", [datamart], extra=(EXPORT_PROFILES,))
    response = login(exporter).get(path, {"q": term})
    assert response.status_code == 200
    if path == PROFILES:
        assert list(response.context["cl"].result_list) == []
