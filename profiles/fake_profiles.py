"""Fake profiles in bulk, for trying the back-office and benchmarking it at millions of rows.

Each fake person is a user point with an account identifier and one profile under that account
(compartments taken in turn); every 10th point also gets an email hash and every 10th (offset
5) a user agent id. On PostgreSQL a batch is one `INSERT … SELECT FROM generate_series` per
table, computed by the server; elsewhere `bulk_create`. This writes rows directly, not through
the services: fake data records no history.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from profiles.errors import ProfileError
from profiles.models import (
    Compartment,
    Datamart,
    UserAccount,
    UserAgent,
    UserEmail,
    UserPoint,
    UserProfile,
)

FIRSTNAMES = ["David", "Anna", "Marc", "Julie", "Paul", "Léa", "Omar", "Chloé"]
LASTNAMES = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard"]
PERIODS = ["DAILY", "WEEKLY", "MONTHLY"]
YEAR_SECONDS = 365 * 24 * 3600


@dataclass(frozen=True)
class FakeRun:
    tag: str
    created: int

    def account_id(self, number: int) -> str:
        return f"acct-{self.tag}-{number:010d}"


def fake_profiles_generate(
    *,
    datamart: Datamart,
    count: int,
    batch: int = 50_000,
    tag: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> FakeRun:
    """Create `count` fake people in `datamart`; the tag names this run in their identifiers."""
    compartments = list(
        Compartment.objects.filter(datamart=datamart)
        .order_by("compartment_id")
        .values_list("pk", flat=True)
    )
    if not compartments:
        raise ProfileError("NO_COMPARTMENT", f"datamart {datamart.id} has no compartment")
    tag = tag or secrets.token_hex(4)
    write = _batch_postgresql if connection.vendor == "postgresql" else _batch_orm
    done = 0
    while done < count:
        size = min(batch, count - done)
        with transaction.atomic():
            write(datamart.id, compartments, tag, done, done + size - 1)
        done += size
        if progress:
            progress(done)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Fresh statistics: the planner and the list's estimated count depend on them.
            cursor.execute(
                "ANALYZE profiles_userpoint, profiles_useraccount, profiles_useremail, "
                "profiles_useragent, profiles_userprofile"
            )
    return FakeRun(tag=tag, created=count)


# The run's 8 hex digits, then n: ids ascend within a run, so bulk inserts append to the
# indexes instead of touching random pages (the ids are still unique and opaque to clients).
_POINT_ID = "(%(tag_hex)s || lpad(to_hex(n), 24, '0'))::uuid"
_COMPARTMENT = "(%(compartments)s::bigint[])[1 + n %% %(n_compartments)s]"
_ACCOUNT = "'acct-' || %(tag)s || '-' || lpad(n::text, 10, '0')"
_MODIFIED = "%(now)s - make_interval(secs => (n * 7919) %% " + str(YEAR_SECONDS) + ")"

_POSTGRESQL_BATCH = [
    f"""INSERT INTO profiles_userpoint (id, datamart_id, creation_ts)
        SELECT {_POINT_ID}, %(datamart)s, {_MODIFIED} - make_interval(secs => n %% 86400)
        FROM generate_series(%(low)s::bigint, %(high)s::bigint) AS n""",
    f"""INSERT INTO profiles_useraccount (datamart_id, user_point_id, compartment_id, user_account_id)
        SELECT %(datamart)s, {_POINT_ID}, {_COMPARTMENT}, {_ACCOUNT}
        FROM generate_series(%(low)s::bigint, %(high)s::bigint) AS n""",
    f"""INSERT INTO profiles_useremail (datamart_id, user_point_id, email_hash, email)
        SELECT %(datamart)s, {_POINT_ID}, encode(sha256(('email:' || %(tag)s || ':' || n)::bytea), 'hex'), ''
        FROM generate_series(%(low)s::bigint, %(high)s::bigint) AS n WHERE n %% 10 = 0""",
    f"""INSERT INTO profiles_useragent (datamart_id, user_point_id, user_agent_id)
        SELECT %(datamart)s, {_POINT_ID}, 'vec:' || %(tag)s || n
        FROM generate_series(%(low)s::bigint, %(high)s::bigint) AS n WHERE n %% 10 = 5""",
    f"""INSERT INTO profiles_userprofile (datamart_id, user_point_id, compartment_id,
            user_account_id, properties, creation_ts, last_modified_ts)
        SELECT %(datamart)s, {_POINT_ID}, {_COMPARTMENT}, {_ACCOUNT},
            jsonb_build_object(
                'firstname', (%(firstnames)s::text[])[1 + n %% 8],
                'lastname', (%(lastnames)s::text[])[1 + (n / 8) %% 6],
                'age', 18 + (n * 31) %% 60,
                'loyalty_points', (n * 7) %% 10000,
                'newsletter_options', jsonb_build_object(
                    'subscribed', n %% 3 = 0,
                    'preferred_periods', (%(periods)s::text[])[1 + n %% 3]),
                'tags', jsonb_build_array('t' || n %% 5, 't' || n %% 7)),
            {_MODIFIED} - make_interval(secs => n %% 86400), {_MODIFIED}
        FROM generate_series(%(low)s::bigint, %(high)s::bigint) AS n""",
]


def tag_hex(tag: str) -> str:
    return hashlib.md5(tag.encode()).hexdigest()[:8]


def _batch_postgresql(datamart_id, compartments, tag, low, high) -> None:
    params = {
        "datamart": datamart_id,
        "compartments": compartments,
        "n_compartments": len(compartments),
        "tag": tag,
        "tag_hex": tag_hex(tag),
        "low": low,
        "high": high,
        "now": timezone.now(),
        "firstnames": FIRSTNAMES,
        "lastnames": LASTNAMES,
        "periods": PERIODS,
    }
    with connection.cursor() as cursor:
        for statement in _POSTGRESQL_BATCH:
            cursor.execute(statement, params)


def fake_properties(number: int) -> dict:
    """The same properties the PostgreSQL path builds, for the n-th fake person."""
    return {
        "firstname": FIRSTNAMES[number % 8],
        "lastname": LASTNAMES[(number // 8) % 6],
        "age": 18 + (number * 31) % 60,
        "loyalty_points": (number * 7) % 10000,
        "newsletter_options": {
            "subscribed": number % 3 == 0,
            "preferred_periods": PERIODS[number % 3],
        },
        "tags": [f"t{number % 5}", f"t{number % 7}"],
    }


def _batch_orm(datamart_id, compartments, tag, low, high) -> None:
    now = timezone.now()
    points, accounts, emails, agents, profiles = [], [], [], [], []
    for number in range(low, high + 1):
        point_id = uuid.UUID(f"{tag_hex(tag)}{number:024x}")
        compartment = compartments[number % len(compartments)]
        account = f"acct-{tag}-{number:010d}"
        modified = now - timedelta(seconds=(number * 7919) % YEAR_SECONDS)
        points.append(
            UserPoint(
                id=point_id,
                datamart_id=datamart_id,
                creation_ts=modified - timedelta(seconds=number % 86400),
            )
        )
        accounts.append(
            UserAccount(
                datamart_id=datamart_id,
                user_point_id=point_id,
                compartment_id=compartment,
                user_account_id=account,
            )
        )
        if number % 10 == 0:
            email_hash = hashlib.sha256(f"email:{tag}:{number}".encode()).hexdigest()
            emails.append(
                UserEmail(datamart_id=datamart_id, user_point_id=point_id, email_hash=email_hash)
            )
        if number % 10 == 5:
            agents.append(
                UserAgent(
                    datamart_id=datamart_id,
                    user_point_id=point_id,
                    user_agent_id=f"vec:{tag}{number}",
                )
            )
        profiles.append(
            UserProfile(
                datamart_id=datamart_id,
                user_point_id=point_id,
                compartment_id=compartment,
                user_account_id=account,
                properties=fake_properties(number),
                creation_ts=modified - timedelta(seconds=number % 86400),
                last_modified_ts=modified,
            )
        )
    for model, rows in (
        (UserPoint, points),
        (UserAccount, accounts),
        (UserEmail, emails),
        (UserAgent, agents),
        (UserProfile, profiles),
    ):
        model.objects.bulk_create(rows, batch_size=2000)
