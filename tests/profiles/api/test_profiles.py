"""One profile: GET, PUT (FORCE_REPLACE), PATCH (deep merge or PARTIAL_DELETE), DELETE."""

from __future__ import annotations

import time
import uuid

import pytest

from profiles.models import ProfileChange, UserAccount, UserPoint, UserProfile
from tests.profiles.api.client import BASE, data, error, profile_path

ACCOUNT = "compartment_id=1606,user_account_id=c9879698769OIUYOIY9879879"
PROFILE = profile_path(ACCOUNT, 1606, "c9879698769OIUYOIY9879879")
SPEC_PROFILE = {
    "firstname": "David",
    "gender": 1,
    "nl": {"subscribed": True, "period": "MONTHLY"},
    "tags": ["a", "b"],
    "contracts": [{"id": "c1", "s": "on"}, {"id": "c2", "s": "on"}],
}


def custom(profile: dict) -> dict:
    return {key: value for key, value in profile.items() if not key.startswith("$")}


def test_put_through_an_unknown_identifier_creates_the_point_and_the_profile(api, crm_compartment):
    response = api.put(PROFILE, {"firstname": "David"})
    assert response.status_code == 201
    created = data(response)
    assert created["$compartment_id"] == 1606
    assert created["$user_account_id"] == "c9879698769OIUYOIY9879879"
    assert created["$creation_ts"] == created["$last_modified_ts"] > 0
    assert custom(created) == {"firstname": "David"}
    point = UserPoint.objects.get()
    assert created["$user_point_id"] == str(point.pk)
    account = UserAccount.objects.get()
    assert (account.user_point_id, account.user_account_id) == (
        point.pk,
        "c9879698769OIUYOIY9879879",
    )


def test_get_answers_the_profile_object(api, crm_compartment):
    api.put(PROFILE, SPEC_PROFILE)
    found = data(api.get(PROFILE))
    assert custom(found) == SPEC_PROFILE
    assert list(found)[:4] == [
        "$compartment_id",
        "$user_account_id",
        "$creation_ts",
        "$last_modified_ts",
    ]


def test_put_replaces_the_properties_and_keeps_the_creation_time(api, crm_compartment):
    created = data(api.put(PROFILE, SPEC_PROFILE))
    response = api.put(PROFILE, {"lastname": "Guetta"})
    assert response.status_code == 200
    replaced = data(response)
    assert custom(replaced) == {"lastname": "Guetta"}
    assert replaced["$creation_ts"] == created["$creation_ts"]


def test_client_timestamps_and_point_ids_are_ignored(api, crm_compartment):
    response = api.put(
        PROFILE,
        {"$creation_ts": 1, "$last_modified_ts": 2, "$user_point_id": str(uuid.uuid4()), "a": 1},
    )
    created = data(response)
    assert created["$creation_ts"] > 1000 and created["$last_modified_ts"] > 1000
    assert created["$user_point_id"] == str(UserPoint.objects.get().pk)
    assert custom(created) == {"a": 1}


def test_an_unchanged_put_keeps_last_modified(api, crm_compartment):
    first = data(api.put(PROFILE, {"a": 1}))
    time.sleep(0.005)
    again = data(api.put(PROFILE, {"a": 1}))
    assert again["$last_modified_ts"] == first["$last_modified_ts"]


def test_patch_deep_merges_as_spec_says(api, crm_compartment):
    api.put(PROFILE, SPEC_PROFILE)
    response = api.patch(PROFILE, {"gender": 2, "nl": {"subscribed": False}, "tags": ["b", "c"]})
    assert response.status_code == 200
    assert custom(data(response)) == {
        **SPEC_PROFILE,
        "gender": 2,
        "nl": {"subscribed": False, "period": "MONTHLY"},
        "tags": ["a", "b", "c"],
    }


def test_patch_with_merge_objects_false_is_shallow(api, crm_compartment):
    api.put(PROFILE, SPEC_PROFILE)
    merged = data(api.patch(PROFILE + "?merge_objects=false", {"nl": {"subscribed": False}}))
    assert merged["nl"] == {"subscribed": False}


def test_patch_partial_delete_removes_what_the_body_names(api, crm_compartment):
    api.put(PROFILE, SPEC_PROFILE)
    response = api.patch(
        PROFILE + "?update_strategy=PARTIAL_DELETE",
        {"gender": None, "nl": {"period": None}, "tags": ["a"], "contracts": [{"id": "c1"}]},
    )
    assert custom(data(response)) == {
        "firstname": "David",
        "nl": {"subscribed": True},
        "tags": ["b"],
        "contracts": [{"id": "c2", "s": "on"}],
    }


def test_patch_creates_a_missing_profile(api, crm_compartment):
    response = api.patch(PROFILE, {"a": {"b": 1}})
    assert response.status_code == 201
    assert custom(data(response)) == {"a": {"b": 1}}


def test_partial_delete_of_a_missing_profile_answers_404_and_creates_only_the_point(
    api, crm_compartment
):
    """SPEC §5: a PATCH through an unknown identifier creates the point "as an import UPSERT
    does"; the same PARTIAL_DELETE line of an import creates the point and counts unchanged."""
    response = api.patch(PROFILE + "?update_strategy=PARTIAL_DELETE", {"a": None})
    assert error(response, 404)["error_code"] == "PROFILE_NOT_FOUND"
    point = UserPoint.objects.get()
    assert not UserProfile.objects.exists()
    assert data(api.get(f"{BASE}/user_points/{ACCOUNT}"))["id"] == str(point.pk)


@pytest.mark.parametrize("strategy", ["FORCE_REPLACE", "MERGE", ""])
def test_patch_refuses_other_strategies(api, crm_compartment, strategy):
    if strategy == "":
        response = api.patch(PROFILE + "?merge_objects=maybe", {"a": 1})
    else:
        response = api.patch(PROFILE + f"?update_strategy={strategy}", {"a": 1})
    assert error(response, 400)["error_code"] in {
        "INVALID_UPDATE_STRATEGY",
        "INVALID_MERGE_OBJECTS",
    }
    assert not UserProfile.objects.exists()


def test_a_uuid_selector_must_exist(api, crm_compartment):
    response = api.put(profile_path(str(uuid.uuid4()), 1606), {"a": 1})
    assert error(response, 404)["error_code"] == "USER_POINT_NOT_FOUND"
    assert not UserPoint.objects.exists()


def test_a_known_uuid_selector_writes_that_point(api, crm_compartment):
    point = data(api.put(PROFILE, {"a": 1}))["$user_point_id"]
    anonymous = profile_path(f"user_point_id={point}", 1)
    assert api.put(anonymous, {"b": 2}).status_code == 201
    assert UserProfile.objects.filter(user_point_id=point).count() == 2


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"$compartment_id": 1, "a": 1}, "$compartment_id"),
        ({"$compartment_id": "7", "a": 1}, "$compartment_id"),
        ({"$compartment_id": None, "a": 1}, "$compartment_id"),  # the default: not 1606
        ({"$user_account_id": "someone-else", "a": 1}, "$user_account_id"),
        ({"$user_account_id": None, "a": 1}, "$user_account_id"),
    ],
)
def test_dollar_keys_that_disagree_with_the_path_answer_400(
    api, crm_compartment, body, field, method
):
    found = error(getattr(api, method)(PROFILE, body), 400)
    assert (found["error_code"], found["field"]) == ("ADDRESS_MISMATCH", field)
    assert found["error"].startswith(field) and "differs from the" in found["error"]
    assert not UserProfile.objects.exists()


def test_dollar_keys_that_agree_with_the_path_are_accepted(api, crm_compartment):
    body = {"$compartment_id": "1606", "$user_account_id": "c9879698769OIUYOIY9879879", "a": 1}
    assert api.put(PROFILE, body).status_code == 201
    anonymous = profile_path("email_hash=h", 1606)
    assert (
        api.put(anonymous, {"$compartment_id": 1606, "$user_account_id": None}).status_code == 201
    )
    # A null $compartment_id names the default compartment, as in an import line.
    in_default = profile_path("email_hash=h", 1)
    assert api.put(in_default, {"$compartment_id": None, "a": 1}).status_code == 201


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"$x": 1}, "RESERVED_KEY"),
        ({"\uff04x": 1}, "RESERVED_KEY"),
        ({"$compartment_id": 1.5}, "INVALID_COMPARTMENT_ID"),
        ({"$compartment_id": True}, "INVALID_COMPARTMENT_ID"),
        ({"$user_account_id": ["x"]}, "INVALID_USER_ACCOUNT_ID"),
        ({"a": {"b" * 300: 1}}, "KEY_TOO_LONG"),
    ],
)
def test_invalid_profile_objects_answer_400_with_the_validators_code(
    api, crm_compartment, body, code
):
    assert error(api.put(PROFILE, body), 400)["error_code"] == code
    assert error(api.patch(PROFILE, body), 400)["error_code"] == code
    assert not UserPoint.objects.exists()


def test_an_unknown_compartment_is_refused_on_write_and_missing_on_read(api, crm_compartment):
    path = profile_path("email_hash=h", 4242)
    assert error(api.put(path, {"a": 1}), 400)["error_code"] == "UNKNOWN_COMPARTMENT"
    assert error(api.get(path), 404)
    assert error(api.delete(path), 404)
    assert error(api.get(profile_path("email_hash=h", "x")), 400)["error_code"] == (
        "INVALID_COMPARTMENT_ID"
    )


def test_the_anonymous_and_the_account_profile_are_distinct(api, crm_compartment):
    api.put(profile_path(ACCOUNT, 1606), {"anonymous": True})
    api.put(PROFILE, {"account": True})
    assert custom(data(api.get(profile_path(ACCOUNT, 1606)))) == {"anonymous": True}
    assert custom(data(api.get(PROFILE))) == {"account": True}


def test_get_of_a_missing_profile_of_a_known_point_answers_404(api, crm_compartment):
    api.put(PROFILE, {"a": 1})
    assert error(api.get(profile_path(ACCOUNT, 1606, "other")), 404)["error_code"] == "NOT_FOUND"
    assert error(api.get(profile_path("email_hash=nobody", 1606)), 404)


def test_delete_removes_the_profile_and_keeps_the_point(api, crm_compartment):
    api.put(PROFILE, {"a": 1})
    response = api.delete(PROFILE)
    assert response.status_code == 200 and response.json() == {"status": "ok", "data": None}
    assert not UserProfile.objects.exists()
    assert UserPoint.objects.count() == 1 and UserAccount.objects.count() == 1
    assert error(api.delete(PROFILE), 404)


def test_another_datamarts_profile_answers_404_and_is_untouched(api, other_api, crm_compartment):
    api.put(PROFILE, {"a": 1})
    theirs = PROFILE.replace("/datamarts/1/", "/datamarts/2/")
    assert error(other_api.get(theirs), 404)
    assert error(other_api.put(PROFILE, {"a": 2}), 404)
    assert error(other_api.delete(PROFILE), 404)
    assert UserProfile.objects.get().properties == {"a": 1}


def test_writes_are_recorded_as_api_changes_of_the_token(api, token, crm_compartment):
    api.put(PROFILE, {"a": 1})
    api.patch(PROFILE, {"b": 1})
    api.delete(PROFILE)
    changes = ProfileChange.objects.order_by("id")
    assert [change.action for change in changes] == ["created", "updated", "deleted"]
    assert {(change.source, change.api_token_id) for change in changes} == {("api", token[0].pk)}
    assert changes[1].changed_keys == ["b"]


@pytest.mark.parametrize(
    "selector",
    ["account", "default-compartment account", "email", "user agent", "point id", "other datamart"],
)
def test_a_profile_read_by_selector_makes_one_query_of_the_profile_tables(
    api, other_api, crm_compartment, selector
):
    """The API's hot read: the token (cached with its datamart since the writes above) costs no
    query, and the profile is joined to the identifier that names its point (no compartment,
    account or point lookups first)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    point = data(api.put(profile_path("email_hash=h1", 1606), {"a": 1}))["$user_point_id"]
    api.put(profile_path("user_agent_id=ua1", 1606), {"b": 1})
    api.put(PROFILE, {"c": 1})
    api.put(profile_path("user_account_id=d1", 1, "d1"), {"d": 1})
    path, expected, client = {
        "account": (PROFILE, {"c": 1}, api),
        "default-compartment account": (profile_path("user_account_id=d1", 1, "d1"), {"d": 1}, api),
        "email": (profile_path("email_hash=h1", 1606), {"a": 1}, api),
        "user agent": (profile_path("user_agent_id=ua1", 1606), {"b": 1}, api),
        "point id": (profile_path(point, 1606), {"a": 1}, api),
        "other datamart": (PROFILE.replace("/datamarts/1/", "/datamarts/2/"), None, other_api),
    }[selector]
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    domain = [q["sql"] for q in captured if "profiles_userprofile" in q["sql"]]
    if expected is None:  # the same selector in another datamart names nothing there
        error(response, 404)
        return
    assert custom(data(response)) == expected
    assert len(domain) == 1, domain
    others = [
        q["sql"]
        for q in captured
        if not any(table in q["sql"] for table in ("profiles_userprofile", "profiles_cache"))
        and "SAVEPOINT" not in q["sql"]  # the database cache's writes of the rate limit
    ]
    assert others == [], others  # the token was read from the cache, with its datamart


def test_a_put_with_another_strategy_is_refused_and_replaces_nothing(api, crm_compartment):
    """PUT replaces; a client asking it to merge gets an error, not a silent replace."""
    api.put(PROFILE, {"a": 1, "b": 2})
    body = error(api.put(PROFILE + "?update_strategy=PARTIAL_UPDATE", {"z": 1}), 400)
    assert (body["error_code"], body["field"]) == ("INVALID_UPDATE_STRATEGY", "update_strategy")
    assert custom(data(api.get(PROFILE))) == {"a": 1, "b": 2}
    assert custom(data(api.put(PROFILE + "?update_strategy=FORCE_REPLACE", {"z": 1}))) == {"z": 1}


@pytest.mark.parametrize(
    ("method", "path", "parameter"),
    [
        ("patch", PROFILE, "merge_object"),  # a typo of merge_objects
        ("put", PROFILE, "merge_objects"),
        ("get", PROFILE, "limit"),
        ("delete", PROFILE, "force"),
        ("get", PROFILE.split("/user_profiles/")[0] + "/user_profiles", "limit"),
        ("get", PROFILE.split("/user_profiles/")[0], "cursor"),
    ],
)
def test_an_unknown_query_parameter_is_refused_not_ignored(
    api, crm_compartment, method, path, parameter
):
    api.put(PROFILE, {"a": 1})
    call = getattr(api, method)
    response = (
        call(f"{path}?{parameter}=1", {"a": 2})
        if method in ("put", "patch")
        else call(f"{path}?{parameter}=1")
    )
    body = error(response, 400)
    assert (body["error_code"], body["field"]) == ("UNKNOWN_PARAMETER", parameter)
    assert custom(data(api.get(PROFILE))) == {"a": 1}  # nothing written, nothing deleted
    assert api.get(PROFILE + "?format=json").status_code == 200
