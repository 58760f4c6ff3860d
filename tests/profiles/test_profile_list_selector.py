"""`user_profiles_for_list`: the back-office profile list's rows, which exports hold too."""

from __future__ import annotations

import pytest
from django.http import QueryDict

from profiles.errors import ProfileError
from profiles.identifiers import EmailIdentifier
from profiles.selectors import (
    ProfileListFilters,
    datamart_ids_visible_to,
    user_profiles_for_list,
)
from profiles.services import identifier_attach
from tests.profiles.admin import conftest as back_office

# The back-office tests' fixtures: staff of given datamarts, profiles made through services.
make_staff = back_office.make_staff
make_profile = back_office.make_profile
alice = back_office.alice


def rows(user, query: str = "", **kwargs) -> list[str]:
    filters = ProfileListFilters.from_query(QueryDict(query))
    return [
        profile.user_account_id
        for profile in user_profiles_for_list(user=user, filters=filters, **kwargs)
    ]


@pytest.fixture
def people(datamart, other_datamart, crm_compartment, make_profile):
    return {
        "web": make_profile(datamart, "web-1", {"age": 30, "nl": {"on": True}}),
        "crm": make_profile(datamart, "crm-1", {"age": "30"}, compartment_id=1606),
        "other": make_profile(other_datamart, "other-1", {"age": 30}),
    }


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw")


def test_the_query_string_is_read_as_the_list_reads_it():
    filters = ProfileListFilters.from_query(
        QueryDict(
            "compartment=3&compartment=4&property=a%3D1&q=+x+&o=2&p=3"
            "&last_modified_ts__gte=2024-01-01&last_modified_ts__gte=2025-01-01"
        )
    )
    assert filters == ProfileListFilters(
        datamart=None,
        compartment="4",
        modified_from=("2024-01-01", "2025-01-01"),
        modified_before=(),
        property_expression="a=1",
        search=" x ",
    )


def test_staff_see_their_datamarts_superusers_all_others_nothing(people, alice, root, make_staff):
    assert rows(alice) == ["crm-1", "web-1"]
    assert sorted(rows(root)) == ["crm-1", "other-1", "web-1"]
    assert rows(make_staff("nobody", [])) == []
    inactive = make_staff("gone", [people["web"].datamart])
    inactive.is_active = False
    assert rows(inactive) == []
    assert datamart_ids_visible_to(user=root) is None


def test_one_datamart_only_when_given(people, root, other_datamart):
    assert rows(root, datamart=other_datamart) == ["other-1"]


def test_the_datamart_filter_applies_to_users_who_see_several(people, root, alice):
    assert rows(root, "datamart=2") == ["other-1"]
    assert rows(root, "datamart=x") == []
    # The list offers no datamart filter to a member of one datamart: the parameter is ignored.
    assert sorted(rows(alice, "datamart=2")) == ["crm-1", "web-1"]


def test_compartment_property_and_date_filters(people, root, crm_compartment):
    assert rows(root, f"compartment={crm_compartment.pk}") == ["crm-1"]
    assert rows(root, "compartment=") == []
    assert sorted(rows(root, "property=age%3D30")) == ["other-1", "web-1"]
    assert rows(root, "property=age%3D%2230%22") == ["crm-1"]
    assert rows(root, "last_modified_ts__lt=2000-01-01+00:00:00%2B00:00") == []
    assert len(rows(root, "last_modified_ts__gte=2000-01-01+00:00:00%2B00:00")) == 3


def test_the_search_is_exact_on_accounts_and_identifiers(people, alice):
    identifier_attach(user_point=people["web"].user_point, identifier=EmailIdentifier("h-1"))
    assert rows(alice, "q=web-1") == ["web-1"]
    assert rows(alice, "q=+h-1+") == ["web-1"]
    assert rows(alice, f"q={people['crm'].user_point_id}") == ["crm-1"]
    assert rows(alice, "q=web") == []
    assert rows(alice, "q=other-1") == []  # another datamart's account


def test_rows_come_newest_change_first(people, root):
    assert rows(root) == ["other-1", "crm-1", "web-1"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("property=no+equals+sign", "property"),
        ("last_modified_ts__gte=soon", "last_modified_ts__gte"),
    ],
)
def test_a_filter_that_cannot_be_read_is_an_error_naming_its_parameter(people, root, query, field):
    with pytest.raises(ProfileError) as refused:
        rows(root, query)
    assert refused.value.field == field


def test_an_order_given_by_field_names_is_kept(people, root):
    assert rows(root, "ordering=id") == ["web-1", "crm-1", "other-1"]
    assert rows(root, "ordering=-id&o=1") == ["other-1", "crm-1", "web-1"]
    with pytest.raises(ProfileError) as refused:
        rows(root, "ordering=properties__age")
    assert refused.value.field == "ordering"
