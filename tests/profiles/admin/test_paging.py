"""The lists never count a whole table: exact up to a cap, estimated beyond."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from profiles import paginators
from profiles.fake_profiles import fake_profiles_generate
from profiles.models import UserProfile
from profiles.paginators import EstimatedCountPaginator

PROFILES = "/admin/profiles/userprofile/"


def count_queries(captured) -> list[str]:
    return [query["sql"] for query in captured if "COUNT(" in query["sql"].upper()]


@pytest.fixture
def many(datamart):
    fake_profiles_generate(datamart=datamart, count=30, batch=10, tag="page")


def test_a_small_result_is_counted_exactly(many):
    paginator = EstimatedCountPaginator(UserProfile.objects.order_by("id"), 10)
    assert (paginator.count, paginator.is_estimate, paginator.num_pages) == (30, False, 3)


def test_beyond_the_cap_the_count_is_bounded_and_deep_pages_still_open(many, monkeypatch):
    monkeypatch.setattr(paginators, "COUNT_CAP", 12)
    paginator = EstimatedCountPaginator(
        UserProfile.objects.filter(datamart_id=1).order_by("id"), 10
    )
    with CaptureQueriesContext(connection) as captured:
        assert paginator.count >= 13
    assert paginator.is_estimate
    assert all("LIMIT" in sql.upper() for sql in count_queries(captured))
    assert len(paginator.page(3).object_list) == 10
    assert len(paginator.page(9).object_list) == 0  # past the end: empty, not an error


def test_list_page_shows_an_estimate_beyond_the_cap(many, alice, login, monkeypatch):
    monkeypatch.setattr(paginators, "COUNT_CAP", 12)
    page = login(alice).get(PROFILES).content.decode()
    assert "The count is an estimate" in page
    assert login(alice).get(PROFILES, {"p": "3"}).status_code == 200


@pytest.mark.postgres
def test_profile_list_runs_no_full_count_on_postgresql(
    many, alice, login, django_user_model, django_assert_max_num_queries, monkeypatch
):
    monkeypatch.setattr(paginators, "COUNT_CAP", 12)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE profiles_userprofile")
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    for user, params in (
        (root, {}),
        (alice, {}),
        (alice, {"q": "acct-page-0000000003"}),
        (alice, {"property": "newsletter_options.subscribed=true"}),
    ):
        client = login(user)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(PROFILES, params)
        assert response.status_code == 200
        for sql in count_queries(captured):
            # Only a count bounded by a LIMIT in its subquery: never the whole table.
            assert re.search(r"LIMIT \d+\)", sql), sql
        if user is root:
            assert count_queries(captured) == []  # pg_class.reltuples, no count at all
            assert any("reltuples" in query["sql"] for query in captured)
    client = login(alice)
    client.get(PROFILES)
    with django_assert_max_num_queries(12):
        client.get(PROFILES)
