"""Profile search: filters on compartment, account, modification time and typed properties."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from profiles.models import Compartment, UserPoint, UserProfile, epoch_ms
from tests.profiles.api.client import BASE, data, error, profile_path

SEARCH = f"{BASE}/user_profiles"


@pytest.fixture
def profiles(api, crm_compartment):
    """Profiles whose properties differ in type where a loose comparison would mix them up."""
    stored = {
        "true": {"flag": True, "n": 1, "s": "1", "nested": {"deep": {"ok": True}}},
        "one": {"flag": 1, "n": 1.0, "s": 1, "nested": {"deep": {"ok": 1}}},
        "string": {"flag": "true", "n": "1", "s": "x", "nested": {"deep": "ok"}},
        "null": {"flag": None, "n": None, "nested": None},
        "missing": {"other": 1},
        "false": {"flag": False, "n": 0, "s": "", "nested": {"deep": {"ok": False}}},
    }
    for name, properties in stored.items():
        api.put(profile_path(f"email_hash={name}", 1606, name), {"name": name, **properties})
    return stored


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(profile["name"] for profile in data(response))


def search(api, **params):
    return api.get(SEARCH, params)


def test_true_matches_the_boolean_only_not_1_nor_the_string(api, profiles):
    assert names(search(api, **{"p.flag": "true"})) == ["true"]
    assert names(search(api, **{"p.flag": "false"})) == ["false"]


def test_a_number_matches_numbers_of_equal_value_not_booleans_nor_strings(api, profiles):
    assert names(search(api, **{"p.flag": "1"})) == ["one"]
    assert names(search(api, **{"p.n": "1"})) == ["one", "true"]  # 1 and 1.0 are equal in JSON
    assert names(search(api, **{"p.n": "1.0"})) == ["one", "true"]
    assert names(search(api, **{"p.n": "0"})) == ["false"]


def test_a_quoted_value_is_a_string_even_when_it_looks_like_a_number(api, profiles):
    assert names(search(api, **{"p.s": '"1"'})) == ["true"]
    assert names(search(api, **{"p.s": "1"})) == ["one"]
    assert names(search(api, **{"p.flag": '"true"'})) == ["string"]
    assert names(search(api, **{"p.s": '""'})) == ["false"]


def test_a_value_that_is_no_json_literal_is_a_string(api, profiles):
    assert names(search(api, **{"p.s": "x"})) == ["string"]
    assert names(search(api, **{"p.name": "missing"})) == ["missing"]


def test_null_matches_a_stored_null_not_a_missing_key(api, profiles):
    assert names(search(api, **{"p.flag": "null"})) == ["null"]
    assert names(search(api, **{"p.nested": "null"})) == ["null"]


def test_nested_paths(api, profiles):
    assert names(search(api, **{"p.nested.deep.ok": "true"})) == ["true"]
    assert names(search(api, **{"p.nested.deep.ok": "1"})) == ["one"]
    assert names(search(api, **{"p.nested.deep": "ok"})) == ["string"]
    assert names(search(api, **{"p.nested.deep.ok.more": "true"})) == []


def test_several_filters_combine_with_and(api, profiles):
    assert names(search(api, **{"p.n": "1", "p.s": '"1"'})) == ["true"]
    assert names(search(api, **{"p.n": "1", "p.s": "x"})) == []
    assert names(api.get(f"{SEARCH}?p.n=1&p.n=1.0")) == ["one", "true"]


def test_a_digit_key_is_a_key_not_an_array_index(api, crm_compartment):
    api.put(profile_path("email_hash=arr", 1606), {"name": "array", "a": ["x"]})
    api.put(profile_path("email_hash=obj", 1606), {"name": "object", "a": {"0": "x"}})
    assert names(search(api, **{"p.a.0": "x"})) == ["object"]


def test_results_are_profile_objects_with_their_user_point(api, profiles):
    found = data(search(api, **{"p.name": '"true"'}))
    assert len(found) == 1
    point = UserPoint.objects.get(emails__email_hash="true")
    assert found[0]["$user_point_id"] == str(point.pk)
    assert (found[0]["$compartment_id"], found[0]["$user_account_id"]) == (1606, "true")
    assert found[0]["nested"] == {"deep": {"ok": True}}


def test_filter_by_compartment_and_account(api, profiles):
    api.put(profile_path("email_hash=anon", 1), {"name": "anonymous"})
    assert names(search(api, compartment_id="1")) == ["anonymous"]
    assert len(data(search(api, compartment_id="1606"))) == 6
    assert names(search(api, user_account_id="one")) == ["one"]
    assert names(search(api, compartment_id="1606", user_account_id="anon")) == []


def test_filter_by_modification_time(api, profiles):
    # A whole millisecond: modified_since equal to the profile's time finds it (inclusive).
    later = (timezone.now() + timedelta(hours=1)).replace(microsecond=123_000)
    UserProfile.objects.filter(properties__name="one").update(last_modified_ts=later)
    assert names(search(api, modified_since=str(epoch_ms(later)))) == ["one"]
    assert names(search(api, modified_since=str(epoch_ms(later) + 1))) == []


@pytest.mark.parametrize(
    "query",
    [
        "compartment_id=1&compartment_id=1606",
        "user_account_id=one&user_account_id=two",
        "modified_since=0&modified_since=1",
        "limit=1&limit=2",
    ],
)
def test_a_repeated_search_parameter_is_refused_not_one_of_its_values_used(api, profiles, query):
    """Which of two compartment ids would the search use? Neither: the client is told."""
    name = query.partition("=")[0]
    body = error(api.get(f"/api/v1/datamarts/1/user_profiles?{query}"), 400)
    assert (body["error_code"], body["field"]) == ("REPEATED_PARAMETER", name)
    assert "2 times" in body["error"]


def test_a_repeated_property_filter_combines_with_and(api, profiles):
    both = api.get("/api/v1/datamarts/1/user_profiles?p.name=one&p.name=two")
    assert names(both) == []
    assert names(api.get("/api/v1/datamarts/1/user_profiles?p.name=one&p.name=one")) == ["one"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"compartment": "1"}, "UNKNOWN_PARAMETER"),
        ({"p.": "1"}, "INVALID_FILTER"),
        ({"p.a..b": "1"}, "INVALID_FILTER"),
        ({"p.$compartment_id": "1"}, "INVALID_FILTER"),
        ({'p.a"b': "1"}, "INVALID_FILTER"),
        ({"p.a": "1e999"}, "INVALID_FILTER"),
        ({"p.a": "99999999999999999999"}, "INVALID_FILTER"),
        ({"p.a": '"\\u0000"'}, "INVALID_FILTER"),
        ({"p." + ".".join(["a"] * 1000): "1"}, "INVALID_FILTER"),
        ({"p." + ".".join(["a"] * 33): "1"}, "INVALID_FILTER"),
        ({"p." + "k" * 257: "1"}, "INVALID_FILTER"),
        ({"p.a": "9" * 5000}, "INVALID_FILTER"),
        ({"p.a": "-1e999"}, "INVALID_FILTER"),
        ({"p.a": '"\\ud800"'}, "INVALID_FILTER"),
        ({"p.a": "x" * 1_000_001}, "INVALID_FILTER"),
        ({f"p.k{i}": "1" for i in range(21)}, "TOO_MANY_FILTERS"),
        ({f"x{i}": "1" for i in range(1001)}, "BAD_REQUEST"),
        ({"compartment_id": "x"}, "INVALID_COMPARTMENT_ID"),
        ({"compartment_id": "4242"}, "UNKNOWN_COMPARTMENT"),
        ({"modified_since": "yesterday"}, "INVALID_TIMESTAMP"),
        ({"modified_since": "9" * 30}, "INVALID_TIMESTAMP"),
        ({"limit": "0"}, "INVALID_LIMIT"),
        ({"limit": "-1"}, "INVALID_LIMIT"),
        ({"cursor": "garbage!"}, "INVALID_CURSOR"),
        ({"cursor": base64.urlsafe_b64encode(b'["1"]').decode()}, "INVALID_CURSOR"),
    ],
)
def test_bad_search_parameters_answer_400(api, crm_compartment, params, code):
    assert error(search(api, **params), 400)["error_code"] == code


def test_an_object_or_an_array_is_no_literal_but_text(api, crm_compartment):
    """SPEC §5: VALUE is a JSON literal when it is one (true, false, null, numbers, a "quoted
    string"), else a string: `[1]` is the text [1], never parsed as an array."""
    api.put(profile_path("email_hash=s1", 1606), {"v": "[1]", "o": '{"b": 1}', "w": [1]})
    assert len(data(search(api, **{"p.v": "[1]"}))) == 1
    assert len(data(search(api, **{"p.o": '{"b": 1}'}))) == 1
    assert data(search(api, **{"p.w": "[1]"})) == []
    assert data(search(api, **{"p.v": "[" * 3000 + "]" * 3000})) == []


def test_nan_and_infinity_are_no_json_literals_but_text(api, crm_compartment):
    for text in ("NaN", "Infinity"):
        api.put(profile_path(f"email_hash={text}", 1606), {"name": text})
    assert names(search(api, **{"p.name": "NaN"})) == ["NaN"]
    assert names(search(api, **{"p.name": "Infinity"})) == ["Infinity"]


def test_another_datamarts_profiles_are_never_found(api, other_api, profiles):
    assert data(other_api.get("/api/v1/datamarts/2/user_profiles")) == []
    assert error(other_api.get(SEARCH), 404)


# --- paging -------------------------------------------------------------------------------------


def _bulk_profiles(datamart, count: int, start: int = 0) -> None:
    compartment = Compartment.objects.get(datamart=datamart, is_default=True)
    points = UserPoint.objects.bulk_create(UserPoint(datamart=datamart) for _ in range(count))
    UserProfile.objects.bulk_create(
        UserProfile(
            datamart=datamart,
            user_point=point,
            compartment=compartment,
            properties={"i": start + index},
        )
        for index, point in enumerate(points)
    )


def _all_pages(api, params: dict) -> list[list[int]]:
    pages, cursor = [], None
    while True:
        response = search(api, **{**params, **({"cursor": cursor} if cursor else {})})
        body = response.json()
        pages.append([profile["i"] for profile in body["data"]])
        assert body["count"] == len(body["data"])
        cursor = body["next"]
        if cursor is None:
            return pages


def test_pages_cover_every_profile_once_in_order(api, datamart):
    _bulk_profiles(datamart, 25)
    pages = _all_pages(api, {"limit": "10"})
    assert [len(page) for page in pages] == [10, 10, 5]
    assert sum(pages, []) == list(range(25))


def test_paging_is_stable_while_profiles_are_added_and_removed(api, datamart):
    _bulk_profiles(datamart, 10)
    first = search(api, limit="4").json()
    assert [p["i"] for p in first["data"]] == [0, 1, 2, 3]
    # Between two pages: a served profile is deleted and new ones arrive.
    UserProfile.objects.filter(properties__i=1).delete()
    _bulk_profiles(datamart, 2, start=100)
    rest = _all_pages(api, {"limit": "4", "cursor": first["next"]})
    assert sum(rest, []) == [4, 5, 6, 7, 8, 9, 100, 101]


def test_page_size_is_capped_at_1000(api, datamart):
    _bulk_profiles(datamart, 1001)
    body = search(api, limit="5000").json()
    assert body["count"] == 1000 and body["next"] is not None
    assert search(api).json()["count"] == 100  # the default
    last = search(api, limit="1000", cursor=body["next"]).json()
    assert [p["i"] for p in last["data"]] == [1000] and last["next"] is None


# --- the GIN index ------------------------------------------------------------------------------


@pytest.mark.postgres
def test_property_filters_use_the_gin_index_on_postgresql(api, datamart):
    from profiles.selectors import ProfileSearch, PropertyFilter, profile_search

    _bulk_profiles(datamart, 2000)
    UserProfile.objects.filter(properties__i=7).update(
        properties={"i": 7, "newsletter_options": {"subscribed": True}}
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE profiles_userprofile")
    search_filter = ProfileSearch(
        properties=(PropertyFilter(("newsletter_options", "subscribed"), True),)
    )
    queries = []
    with connection.execute_wrapper(
        lambda execute, sql, params, many, context: (
            queries.append((sql, params)) or execute(sql, params, many, context)
        )
    ):
        found = profile_search(datamart=datamart, search=search_filter, after_id=None, limit=101)
    assert [profile.properties["i"] for profile in found] == [7]
    sql, params = next((sql, params) for sql, params in queries if "@>" in sql)
    # Whether the index can serve the filter, not whether a 2,000-row table is worth it: the
    # planner may prefer a scan of so small a table, or of the datamart's index while the rows
    # just written still sit in the GIN index's pending list (priced high until it is cleaned).
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT gin_clean_pending_list('profiles_userprofile_properties_gin')")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "profiles_userprofile_properties_gin" in plan, plan
    # And the API answers the same through the same query.
    assert [p["i"] for p in data(search(api, **{"p.newsletter_options.subscribed": "true"}))] == [7]
