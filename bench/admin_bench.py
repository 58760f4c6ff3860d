"""Back-office page times at 1M and 10M profiles, and their ratio to a primary-key page.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/profiles_admin_bench \
        .venv/bin/python bench/admin_bench.py [--sizes 1000000,10000000] [--repeat 5]

Uses (or creates) datamart 1 in the database DATABASE_URL names, tops its profiles up to each
size with `generate_fake_profiles` (10M takes about 15-20 minutes on 2 cores), gives every
profile one history row (as its import would have: fake data records none), then times each
page with Django's test client logged in as a staff member of datamart 1 (not a superuser, so
every query carries the datamart scope). Each figure is the median of --repeat runs after one
warm-up run. The baseline is the datamart's change page: one primary-key lookup.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "profiles_site.settings")
# A benchmark is a development tool: the development key unless one is set.
os.environ.setdefault("SECRET_KEY", "insecure-local-development-key-change-me")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Permission  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from profiles.fake_profiles import fake_profiles_generate  # noqa: E402
from profiles.models import (  # noqa: E402
    Compartment,
    Datamart,
    DatamartMembership,
    ProfileChange,
    UserEmail,
    UserProfile,
)
from profiles.services import compartment_create, datamart_create  # noqa: E402


def set_up() -> tuple[Datamart, Client]:
    call_command("migrate", verbosity=0)
    datamart = datamart_create(datamart_id=1, name="Bench", default_compartment_id=1)
    if not Compartment.objects.filter(datamart=datamart, compartment_id=1606).exists():
        compartment_create(datamart=datamart, compartment_id=1606, name="CRM")
    Compartment.objects.filter(datamart=datamart, compartment_id=1606).update(
        list_properties=["firstname", "age", "newsletter_options.subscribed"]
    )
    user, _ = get_user_model().objects.get_or_create(
        username="bench-staff", defaults={"is_staff": True}
    )
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="profiles"))
    DatamartMembership.objects.get_or_create(user=user, datamart=datamart)
    client = Client()
    client.force_login(user)
    return datamart, client


def top_up(datamart: Datamart, size: int) -> int:
    current = UserProfile.objects.filter(datamart=datamart).count()
    if current < size:
        started = time.monotonic()
        fake_profiles_generate(
            datamart=datamart,
            count=size - current,
            tag=f"n{current}",
            progress=lambda done: print(f"  generated {done:,}", end="\r", flush=True),
        )
        print(f"  generated {size - current:,} profiles in {time.monotonic() - started:.0f} s")
    return max(current, size)


def history_top_up(datamart: Datamart) -> None:
    """A "created" history row for each profile that has none yet, in one INSERT ... SELECT."""
    newest = (
        ProfileChange.objects.filter(datamart=datamart)
        .order_by("-id")
        .values_list("profile_id", flat=True)
        .first()
    )
    after = newest or 0
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {ProfileChange._meta.db_table}
                (datamart_id, user_point_id, profile_id, compartment_id, user_account_id,
                 action, changed_keys, source, execution_id, ts)
            SELECT profile.datamart_id, profile.user_point_id, profile.id,
                   compartment.compartment_id, profile.user_account_id,
                   'created', '["firstname"]', 'import', 1, profile.last_modified_ts
            FROM {UserProfile._meta.db_table} profile
            JOIN {Compartment._meta.db_table} compartment ON compartment.id = profile.compartment_id
            WHERE profile.datamart_id = %s AND profile.id > %s
            ORDER BY profile.id
            """,
            [datamart.pk, after],
        )
        print(f"  wrote {cursor.rowcount:,} history rows in {time.monotonic() - started:.0f} s")
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {ProfileChange._meta.db_table}")


def sample(datamart: Datamart) -> dict:
    """A profile from the middle of the table, and a point that has an email hash."""
    last = UserProfile.objects.filter(datamart=datamart).order_by("-id").values_list("id")[0][0]
    profile = (
        UserProfile.objects.filter(datamart=datamart, id__gte=last // 2).order_by("id").first()
    )
    email = UserEmail.objects.filter(datamart=datamart).first()
    return {"profile": profile, "email_hash": email.email_hash if email else "none"}


def time_page(client: Client, url: str, repeat: int, expect: str | None) -> tuple[float, int]:
    response = client.get(url)  # warm-up
    assert response.status_code == 200, (url, response.status_code)
    if expect is not None:
        assert expect in response.content.decode(), (url, expect)
    times = []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), len(queries.captured_queries)


def pages(datamart: Datamart, picked: dict) -> list[tuple[str, str, str | None]]:
    profile = picked["profile"]
    crm = Compartment.objects.get(datamart=datamart, compartment_id=1606)
    # The bounds DateFieldListFilter's "Past 7 days" link uses.
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    week = {
        "last_modified_ts__gte": str(today - timedelta(days=7)),
        "last_modified_ts__lt": str(today + timedelta(days=1)),
    }
    profiles = "/admin/profiles/userprofile/"
    return [
        ("baseline: datamart change page (pk lookup)", f"/admin/profiles/datamart/{datamart.id}/change/", None),
        ("profile list, page 1", profiles, None),
        ("profile list, page 2000 (offset 100k)", profiles + "?p=2000", None),
        ("search by account id", profiles + "?" + urlencode({"q": profile.user_account_id}), profile.user_account_id),
        ("search by email hash", profiles + "?" + urlencode({"q": picked["email_hash"]}), None),
        ("compartment filter (columns per compartment)", profiles + f"?compartment={crm.pk}", None),
        ("modified in the last 7 days", profiles + "?" + urlencode(week), None),
        ("property filter, common value", profiles + "?" + urlencode({"property": 'newsletter_options.preferred_periods="WEEKLY"'}), None),
        ("property filter, rare value", profiles + "?" + urlencode({"property": "loyalty_points=4242"}), None),
        ("property + compartment filters", profiles + "?" + urlencode({"property": "newsletter_options.subscribed=true", "compartment": crm.pk}), None),
        ("profile change page (with history)", f"{profiles}{profile.pk}/change/", None),
        ("user point list, page 1", "/admin/profiles/userpoint/", None),
        ("user point search by account id", "/admin/profiles/userpoint/?" + urlencode({"q": profile.user_account_id}), None),
        ("user point change page", f"/admin/profiles/userpoint/{profile.user_point_id}/change/", None),
        ("history list, page 1", "/admin/profiles/profilechange/", None),
        ("history search by account id", "/admin/profiles/profilechange/?" + urlencode({"q": profile.user_account_id}), profile.user_account_id),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    datamart, client = set_up()
    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
    for size in [int(text) for text in args.sizes.split(",")]:
        total = top_up(datamart, size)
        history_top_up(datamart)
        picked = sample(datamart)
        print(f"\n### {total:,} profiles (median of {args.repeat}, ms)\n")
        print("| page | ms | × baseline | queries |")
        print("|---|---:|---:|---:|")
        baseline = None
        for label, url, expect in pages(datamart, picked):
            median, queries = time_page(client, url, args.repeat, expect)
            baseline = baseline or median
            print(f"| {label} | {median:.1f} | {median / baseline:.1f} | {queries} |", flush=True)


if __name__ == "__main__":
    main()
