"""The lists never count a whole table: exact up to a cap, estimated beyond."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from profiles import paginators
from profiles.admin.user_profiles import UserProfileAdmin
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


def test_beyond_the_cap_the_count_is_bounded_and_a_page_past_the_last_shows_the_last(
    many, monkeypatch
):
    monkeypatch.setattr(paginators, "COUNT_CAP", 12)
    paginator = EstimatedCountPaginator(
        UserProfile.objects.filter(datamart_id=1).order_by("id"), 10
    )
    with CaptureQueriesContext(connection) as captured:
        assert paginator.count >= 13
    assert paginator.is_estimate
    assert all("LIMIT" in sql.upper() for sql in count_queries(captured))
    assert len(paginator.page(1).object_list) == 10
    last = paginator.page(500)
    assert last.number == paginator.num_pages
    if connection.vendor == "sqlite":
        assert (paginator.count_label, paginator.num_pages) == ("more than 12", 2)
        assert [profile.pk for profile in last.object_list] == list(
            UserProfile.objects.order_by("id").values_list("pk", flat=True)[10:13]
        )


def test_the_list_says_more_than_the_cap_and_never_pages_past_its_last_page(
    many, alice, login, monkeypatch
):
    monkeypatch.setattr(paginators, "COUNT_CAP", 12)
    monkeypatch.setattr(UserProfileAdmin, "list_per_page", 10)
    client = login(alice)
    page = client.get(PROFILES).content.decode()
    count = re.search(r'<span class="result-count">([^<]*)</span>', page).group(1)
    if connection.vendor == "sqlite":
        assert count == "more than 12 user profiles"
    else:  # the planner's estimate, or the cap when it is below (statistics not yet taken)
        assert re.fullmatch(r"about [\d,]+ user profiles|more than 12 user profiles", count)
    assert "13" not in count
    deep = client.get(PROFILES, {"p": "500"})
    assert deep.status_code == 200
    changelist = deep.context["cl"]
    assert changelist.page_num == changelist.paginator.num_pages
    assert f'class="this-page">{changelist.page_num}<' in deep.content.decode()
    last = changelist.page_num
    assert [profile.pk for profile in changelist.result_list] == list(
        UserProfile.objects.order_by("-last_modified_ts", "-id").values_list("pk", flat=True)[
            (last - 1) * 10 : min(last * 10, changelist.paginator.count)
        ]
    )


def test_an_exact_count_has_thousands_separators(alice, login, datamart):
    fake_profiles_generate(datamart=datamart, count=1200, batch=600, tag="sep")
    page = login(alice).get(PROFILES).content.decode()
    assert '<span class="result-count">1,200 user profiles</span>' in page


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


@pytest.mark.postgres
@pytest.mark.parametrize(("planned", "label"), [(5, "more than 12"), (4000, "about 4,000")])
def test_a_planner_estimate_below_what_was_counted_is_no_count(many, monkeypatch, planned, label):
    """Right after a big import, before autovacuum analyses the table, PostgreSQL's estimate
    may be far below the rows: the list said "about 10,001" and paged no further."""
    monkeypatch.setattr(paginators, "COUNT_CAP", 12)
    monkeypatch.setattr(paginators, "_plan_estimate", lambda connection, queryset: planned)
    paginator = EstimatedCountPaginator(UserProfile.objects.filter(datamart_id=1), 10)
    assert paginator.count_label == label
