"""The API's hot reads in hand-written SQL: the point a selector names, and one profile at its
address of that point, in one query.

Django spent 3 ms building and compiling the profile read as a queryset, more than the 2 ms
PostgreSQL took to plan and run it (cProfile of 1,000 reads: `build_filter`, `as_sql`), so it
is written once here. The user point is a subquery on the identifier's own table, not a join
through the user point: three tables to plan instead of five. The user point routes use the
same subquery (`selectors.user_point_get`, `user_point_detail`): one query for the point
instead of three (compartments, identifier, point). A hypothesis test holds both equal to the
import engine's resolution (`tests/profiles/test_profile_read.py`).
"""

from __future__ import annotations

import functools
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from django.db import connection

from profiles.identifiers import (
    AccountIdentifier,
    EmailIdentifier,
    UserAgentIdentifier,
    UserPointSelector,
)
from profiles.models import UserPoint, UserProfile, profile_client_object


@dataclass(frozen=True, slots=True)
class ProfileRead:
    """A profile as the API's read finds it: what its profile object shows, no model instance
    (building a UserProfile and its Compartment was a third of the read's Python time under
    gunicorn, bench/api_bench.py)."""

    pk: int
    user_point_id: uuid.UUID
    user_account_id: str | None
    properties: dict
    creation_ts: datetime
    last_modified_ts: datetime
    compartment_id: int  # the compartment's own id (1606), not its row's

    def as_client_object(self) -> dict:
        return profile_client_object(
            compartment_id=self.compartment_id,
            user_account_id=self.user_account_id,
            creation_ts=self.creation_ts,
            last_modified_ts=self.last_modified_ts,
            properties=self.properties,
        )


# The columns a profile object shows (SPEC §1), in `ProfileRead`'s order; the compartment's
# public id is the address's.
_READ_FIELDS = [
    UserProfile._meta.get_field(name)
    for name in (
        "id",
        "user_point",
        "user_account_id",
        "properties",
        "creation_ts",
        "last_modified_ts",
    )
]
_READ_COLUMNS = ", ".join(f"p.{field.column}" for field in _READ_FIELDS)
_PROFILE_AT_ADDRESS = """
    SELECT {columns}
    FROM profiles_userprofile p
    JOIN profiles_compartment c ON c.id = p.compartment_id
    WHERE p.datamart_id = %s AND c.compartment_id = %s AND p.user_account_id {account}
      AND p.user_point_id IN ({points})
    LIMIT 1
"""
_ACCOUNT_POINT = """
    SELECT i.user_point_id FROM profiles_useraccount i
    JOIN profiles_compartment ic ON ic.id = i.compartment_id
    WHERE i.datamart_id = %s AND ic.{compartment} = %s AND i.user_account_id = %s
"""
_EMAIL_POINT = (
    "SELECT i.user_point_id FROM profiles_useremail i "
    "WHERE i.datamart_id = %s AND i.email_hash = %s"
)
_AGENT_POINT = (
    "SELECT i.user_point_id FROM profiles_useragent i "
    "WHERE i.datamart_id = %s AND i.user_agent_id = %s"
)


def selected_point_ids(*, datamart_id: int, selector: UserPointSelector) -> tuple[str, list]:
    """The SQL (and its parameters) of the ids of the point the selector names: one id at most,
    as an identifier is unique in its datamart (an account in its compartment). Also the API's
    user point routes' (`selectors.user_point_get`, `user_point_detail`)."""
    match selector:
        case uuid.UUID():
            return "%s", [UserPoint._meta.pk.get_db_prep_value(selector, connection)]
        case AccountIdentifier(user_account_id=account, compartment_id=None):
            return _ACCOUNT_POINT.format(compartment="is_default"), [datamart_id, True, account]
        case AccountIdentifier(user_account_id=account, compartment_id=compartment_id):
            sql = _ACCOUNT_POINT.format(compartment="compartment_id")
            return sql, [datamart_id, compartment_id, account]
        case EmailIdentifier(email_hash=email_hash):
            return _EMAIL_POINT, [datamart_id, email_hash]
        case UserAgentIdentifier(user_agent_id=agent):
            return _AGENT_POINT, [datamart_id, agent]
    raise TypeError(f"not a user point selector: {selector!r}")


def profile_get(
    *,
    datamart_id: int,
    selector: UserPointSelector,
    compartment_id: int,
    user_account_id: str | None,
) -> ProfileRead | None:
    """The profile at (compartment_id, user_account_id) of the point the selector names."""
    points_sql, points_params = selected_point_ids(datamart_id=datamart_id, selector=selector)
    params: list = [datamart_id, compartment_id]
    if user_account_id is None:
        account = "IS NULL"
    else:
        account = "= %s"
        params.append(user_account_id)
    row = _fetch_one(
        _PROFILE_AT_ADDRESS.format(columns=_READ_COLUMNS, account=account, points=points_sql),
        params + points_params,
    )
    if row is None:
        return None
    return ProfileRead(*_values_from_db(row), compartment_id=compartment_id)


def _fetch_one(sql: str, params: list) -> tuple | None:
    """The query's first row. On PostgreSQL the statement is prepared once per connection
    (server-side binding, `_PreparingCursor`): from its sixth run PostgreSQL reuses a generic
    plan, where planning the joins took 0.4 ms of its CPU at each read against 0.05 ms to run
    them. Django's own cursors bind on the client and never prepare. The cursor is kept with
    its connection: making one at each read was a tenth of the read's Python time."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    connection.ensure_connection()
    kept = _kept_cursors.get(connection.connection)
    if kept is None:
        kept = _kept_cursors[connection.connection] = _PreparingCursor(connection.connection)
    # Django's wrapper around it, so the query is logged and counted like any other (never
    # closed: its `with` would close the kept cursor).
    cursor = connection._prepare_cursor(kept)
    cursor.execute(sql, params)
    return cursor.fetchone()


# Each open psycopg connection's preparing cursor; gone with its connection.
_kept_cursors: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _PreparingCursor(psycopg.Cursor):
    """psycopg's server-side binding cursor, preparing every statement it runs."""

    def execute(self, query, params=None, *, prepare=True, binary=None):
        return super().execute(query, params, prepare=prepare, binary=binary)

    def _send_query_prepared(self, name, pgq, *, binary=None):
        # The query Django logs (connection.queries): psycopg keeps it only when unprepared.
        self._query = pgq
        super()._send_query_prepared(name, pgq, binary=binary)


def _values_from_db(row: tuple) -> list:
    """The row's values as the model's fields read them (JSON decoded, SQLite's UUIDs and
    datetimes parsed): the converters the ORM's compiler would apply; RawQuerySet costs a
    third of the query's time more to find them at each call."""
    values = list(row)
    for index, column, converters in _converters(connection.ops):
        for convert in converters:
            values[index] = convert(values[index], column, connection)
    return values


@functools.lru_cache(maxsize=16)
def _converters(ops) -> list[tuple[int, Any, list]]:
    """Each converted column's index, column and converters, once per database connection
    (its `ops`): finding them took a fifth of a read's Python time."""
    found = []
    for index, field in enumerate(_READ_FIELDS):
        column = field.get_col(UserProfile._meta.db_table)
        converters = ops.get_db_converters(column) + column.get_db_converters(ops.connection)
        if converters:
            found.append((index, column, converters))
    return found
