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
import itertools
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections
from psycopg.types.datetime import TimestamptzLoader

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
    """The query's first row. On PostgreSQL the statement is prepared once per connection: from
    its sixth run PostgreSQL reuses a generic plan, where planning the joins took 0.4 ms of its
    CPU at each read against 0.05 ms to run them. It runs on libpq itself (`_run_prepared`)
    outside a transaction (an API read) when queries are not being logged or wrapped (DEBUG, a
    test counting queries, a debug toolbar); otherwise, or when that run did not answer rows,
    on a kept cursor that Django wraps. In a transaction a failed run would abort it: psycopg's
    cursors may drop every prepared statement of the connection (`DEALLOCATE ALL` after some
    errors), so the statement prepared here may be gone."""
    database = connections[DEFAULT_DB_ALIAS]  # `connection` looks it up at every attribute
    if database.vendor != "postgresql":
        with database.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    database.ensure_connection()
    pg_connection = database.connection
    if not (database.queries_logged or database.execute_wrappers) and (
        pg_connection.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
    ):
        answered = _run_prepared(pg_connection, sql, params)
        if answered is not _UNANSWERED:
            return answered
    kept = _kept_cursors.get(pg_connection)
    if kept is None:
        kept = _kept_cursors[pg_connection] = _PreparingCursor(pg_connection)
    # Django's wrapper around it, so the query is logged and counted like any other (never
    # closed: its `with` would close the kept cursor).
    cursor = database._prepare_cursor(kept)
    cursor.execute(sql, params)
    return cursor.fetchone()


_UNANSWERED = object()


@dataclass
class _Prepared:
    """What a connection keeps to run the reads on libpq: its statements' names, and psycopg's
    row loader (the connection's types, `_ReadContext`)."""

    names: dict[tuple[str, tuple[int, ...]], bytes]  # by (query, parameter types)
    loader: psycopg.adapt.Transformer


# Each open psycopg connection's preparing cursor and prepared reads; gone with its connection.
_kept_cursors: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _run_prepared(pg_connection: psycopg.Connection, sql: str, params: list):
    """The first row of a statement prepared on the connection and run by libpq
    (`PQexecPrepared`), loaded by psycopg's loaders as its cursor would; `_UNANSWERED` when
    a parameter is not one the statement can take as psycopg would send it (an integer past 64
    bits, a NUL, a lone surrogate) or the statement did not answer rows (a lost connection, a
    statement the server forgot): the caller runs it on a cursor, which answers or raises as
    Django's cursors do.

    Parameters are typed as psycopg types them (bigint, uuid, boolean; text left for the
    server to infer), so the server takes what the cursor's run would take: inside a
    transaction a refused parameter would abort it.

    A psycopg cursor's execute and fetch took 0.43 ms of CPU a read against 0.11 ms here (5,000
    reads in one process): its generators, its wait loop and a new loader per row. libpq's
    call waits in C.
    """
    values, types = [], []
    for value in params:
        if value is None:
            values.append(None)
            types.append(0)
        elif isinstance(value, bool):
            values.append(b"t" if value else b"f")
            types.append(_BOOL)
        elif isinstance(value, int):
            if not -(2**63) <= value < 2**63:
                return _UNANSWERED
            values.append(str(value).encode())
            types.append(_BIGINT)
        elif isinstance(value, uuid.UUID):
            values.append(str(value).encode())
            types.append(_UUID)
        elif isinstance(value, str) and "\x00" not in value:
            try:
                values.append(value.encode())
            except UnicodeEncodeError:
                return _UNANSWERED
            types.append(0)
        else:
            return _UNANSWERED
    prepared = _prepared.get(pg_connection)
    if prepared is None:
        prepared = _prepared[pg_connection] = _Prepared(
            names={}, loader=psycopg.adapt.Transformer(_ReadContext(pg_connection))
        )
    pgconn = pg_connection.pgconn
    key = (sql, tuple(types))
    name = prepared.names.get(key)
    if name is None:
        name = f"profile_read_{next(_statement_numbers)}".encode()
        numbered = sql % tuple(f"${number}" for number in range(1, len(params) + 1))
        made = pgconn.prepare(name, numbered.encode(), types)
        if made.status != psycopg.pq.ExecStatus.COMMAND_OK:
            return _UNANSWERED
        prepared.names[key] = name
    result = pgconn.exec_prepared(name, values)
    if result.status != psycopg.pq.ExecStatus.TUPLES_OK:
        del prepared.names[key]  # the server may have forgotten it (a reset, a pooler)
        return _UNANSWERED
    if not result.ntuples:
        return None
    prepared.loader.set_pgresult(result)
    return prepared.loader.load_row(0, tuple)


class _ReadContext:
    """The connection's types for the reads' loader, but psycopg's own timestamp loader (C)
    where Django's is Python: 7 µs a timestamp against 0.5, two a profile. Django's sets the
    connection's time zone on what psycopg's reads, the session's, which Django set on connect:
    the same moment either way (a test holds both paths' profiles equal)."""

    def __init__(self, pg_connection: psycopg.Connection) -> None:
        self.connection = pg_connection
        self.adapters = psycopg.adapt.AdaptersMap(pg_connection.adapters)
        self.adapters.register_loader("timestamptz", TimestamptzLoader)


_BIGINT, _BOOL, _UUID = (psycopg.postgres.types[name].oid for name in ("int8", "bool", "uuid"))
_statement_numbers = itertools.count()


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
    database = connections[DEFAULT_DB_ALIAS]
    values = list(row)
    for index, column, converters in _converters(database.ops):
        for convert in converters:
            values[index] = convert(values[index], column, database)
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
