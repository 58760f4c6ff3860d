"""Compartments: list, create, read, rename or make default, delete."""

from __future__ import annotations

import pytest

from profiles.identifiers import AccountIdentifier
from profiles.models import Compartment
from profiles.services import compartment_create, user_point_resolve
from tests.profiles.api.client import BASE, data, error

COMPARTMENTS = f"{BASE}/compartments"


def test_list_shows_the_datamarts_compartments_with_the_default(api, crm_compartment):
    response = api.get(COMPARTMENTS)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2 and body["next"] is None
    assert data(response) == [
        {"compartment_id": 1, "name": "Demo default", "is_default": True},
        {"compartment_id": 1606, "name": "CRM", "is_default": False},
    ]


def test_list_pages_by_compartment_id_like_the_other_lists(api, crm_compartment):
    compartment_create(datamart=crm_compartment.datamart, compartment_id=7, name="Shop")
    first = api.get(COMPARTMENTS, {"limit": 2})
    assert [c["compartment_id"] for c in data(first)] == [1, 7]
    second = api.get(COMPARTMENTS, {"limit": 2, "cursor": first.json()["next"]})
    assert [c["compartment_id"] for c in data(second)] == [1606]
    assert second.json()["next"] is None
    for bad in ("abc", "0", "-1"):
        assert error(api.get(COMPARTMENTS, {"limit": bad}), 400)["error_code"] == "INVALID_LIMIT"


def test_list_never_shows_another_datamarts_compartments(api, other_datamart):
    compartment_create(datamart=other_datamart, compartment_id=4242, name="theirs")
    assert [c["compartment_id"] for c in data(api.get(COMPARTMENTS))] == [1]


def test_create_answers_201_with_the_compartment(api):
    response = api.post(COMPARTMENTS, {"compartment_id": "1606", "name": "CRM"})
    assert response.status_code == 201
    assert data(response) == {"compartment_id": 1606, "name": "CRM", "is_default": False}


def test_create_as_default_swaps_the_default(api, datamart):
    response = api.post(COMPARTMENTS, {"compartment_id": 7, "name": "Shop", "is_default": True})
    assert data(response)["is_default"] is True
    defaults = Compartment.objects.filter(datamart=datamart, is_default=True)
    assert list(defaults.values_list("compartment_id", flat=True)) == [7]


def test_create_an_existing_compartment_answers_409(api, crm_compartment):
    body = error(api.post(COMPARTMENTS, {"compartment_id": 1606, "name": "again"}), 409)
    assert body["error_code"] == "COMPARTMENT_EXISTS"


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"compartment_id": 7, "name": "x", "datamart_id": 2}, "datamart_id", "UNKNOWN_FIELD"),
        ({"compartment_id": 7, "name": "x", "token": "t"}, "token", "UNKNOWN_FIELD"),
        ({"name": "x"}, "compartment_id", "required"),
        ({"compartment_id": 7}, "name", "required"),
        ({"compartment_id": 7.5, "name": "x"}, "compartment_id", "invalid"),
        ({"compartment_id": True, "name": "x"}, "compartment_id", "invalid"),
        ({"compartment_id": -1, "name": "x"}, "compartment_id", "min_value"),
        ({"compartment_id": 2**40, "name": "x"}, "compartment_id", "max_value"),
        ({"compartment_id": 7, "name": 123}, "name", "invalid"),
        ({"compartment_id": 7, "name": "x", "is_default": "yes"}, "is_default", "invalid"),
        ({"compartment_id": 7, "name": "x" * 300}, "name", "max_length"),
    ],
)
def test_create_with_a_bad_body_answers_400_naming_the_field(api, body, field, code):
    response = api.post(COMPARTMENTS, body)
    found = error(response, 400)
    assert found["field"] == field
    assert found["error_code"] in {code, code.upper(), "INVALID_FIELD"}
    if code.isupper():
        assert found["error_code"] == code
    assert not Compartment.objects.filter(compartment_id=7).exists()


@pytest.mark.parametrize("body", ["[]", '"x"', "7", "null"])
def test_create_with_a_body_that_is_not_an_object_answers_400(api, body):
    assert error(api.post(COMPARTMENTS, body), 400)


def test_get_one_and_missing_one(api, crm_compartment):
    assert data(api.get(f"{COMPARTMENTS}/1606"))["name"] == "CRM"
    assert error(api.get(f"{COMPARTMENTS}/4242"), 404)["error_code"] == "NOT_FOUND"


def test_another_datamarts_compartment_answers_404(api, other_datamart):
    compartment_create(datamart=other_datamart, compartment_id=4242, name="theirs")
    missing = error(api.get(f"{COMPARTMENTS}/4243"), 404)
    theirs = error(api.get(f"{COMPARTMENTS}/4242"), 404)
    assert theirs == missing | {"error": theirs["error"]}
    assert error(api.delete(f"{COMPARTMENTS}/4242"), 404)
    assert Compartment.objects.filter(compartment_id=4242).exists()


def test_put_renames_and_makes_default(api, crm_compartment):
    response = api.put(f"{COMPARTMENTS}/1606", {"name": "CRM v2", "is_default": True})
    assert data(response) == {"compartment_id": 1606, "name": "CRM v2", "is_default": True}
    assert data(api.get(f"{COMPARTMENTS}/1"))["is_default"] is False


def test_put_accepts_what_get_answered(api, crm_compartment):
    current = data(api.get(f"{COMPARTMENTS}/1606"))
    assert api.put(f"{COMPARTMENTS}/1606", {**current, "name": "Renamed"}).status_code == 200


def test_put_cannot_change_the_id(api, crm_compartment):
    body = error(api.put(f"{COMPARTMENTS}/1606", {"compartment_id": 7, "name": "x"}), 400)
    assert (body["field"], body["error_code"]) == ("compartment_id", "READ_ONLY_FIELD")


def test_unsetting_the_default_answers_409(api, datamart):
    body = error(api.put(f"{COMPARTMENTS}/1", {"name": "x", "is_default": False}), 409)
    assert body["error_code"] == "DEFAULT_COMPARTMENT_REQUIRED"


def test_delete_an_unused_compartment(api, crm_compartment):
    response = api.delete(f"{COMPARTMENTS}/1606")
    assert response.status_code == 200 and response.json() == {"status": "ok", "data": None}
    assert error(api.get(f"{COMPARTMENTS}/1606"), 404)


def test_delete_the_default_or_a_used_compartment_answers_409(api, datamart, crm_compartment):
    assert error(api.delete(f"{COMPARTMENTS}/1"), 409)["error_code"] == (
        "DEFAULT_COMPARTMENT_REQUIRED"
    )
    user_point_resolve(datamart=datamart, identifier=AccountIdentifier("X", 1606), create=True)
    assert error(api.delete(f"{COMPARTMENTS}/1606"), 409)["error_code"] == "COMPARTMENT_IN_USE"
