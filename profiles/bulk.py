"""The few statements a batch of profile writes needs, in each database's fastest form.

PostgreSQL: COPY (rows go in at C speed, no per-row SQL), a temporary table for the
identifiers (INSERT … ON CONFLICT DO NOTHING) and the updates (one UPDATE … FROM).
SQLite: executemany inside the batch's transaction, which holds the file's write lock
(`transaction_mode` IMMEDIATE).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import connection

from profiles.models import UserProfile


def json_text(value: Any) -> str:
    """Compact JSON, as the properties column stores it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _uuid_hex(value: uuid.UUID) -> str:
    return value.hex


def _columns(model: type, names: list[str]) -> tuple[str, str]:
    """The quoted table and column list of a model, for hand-written statements."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(model._meta.get_field(name).column) for name in names)
    return quote(model._meta.db_table), columns


class BulkWriter:
    """Inserts, identifier inserts that yield to existing rows, and property updates."""

    def __init__(self) -> None:
        self.postgres = connection.vendor == "postgresql"
        native = connection.features.has_native_uuid_field
        # UUIDField's own conversion, without its per-call lookups: rows are many.
        self.uuid: Callable[[uuid.UUID], Any] = (lambda value: value) if native else _uuid_hex

    def timestamp(self, value: datetime) -> Any:
        return value if self.postgres else connection.ops.adapt_datetimefield_value(value)

    def insert(self, model: type, names: list[str], rows: list[tuple]) -> None:
        if not rows:
            return
        table, columns = _columns(model, names)
        if self.postgres:
            with (
                connection.wrap_database_errors,
                connection.cursor() as cursor,
                cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(names))
            with connection.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)

    def next_ids(self, model: type, count: int) -> list[int]:
        """Ids for rows about to be inserted, so history rows can name them."""
        table = model._meta.db_table
        with connection.cursor() as cursor:
            if self.postgres:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                    [table, count],
                )
                return [row[0] for row in cursor.fetchall()]
            # The chunk's transaction holds SQLite's write lock (BEGIN IMMEDIATE): nobody else
            # can take ids until it commits. AUTOINCREMENT never reuses one above the sequence.
            cursor.execute(
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = %s), 0), "
                f"coalesce((SELECT max(id) FROM {connection.ops.quote_name(table)}), 0))",
                [table],
            )
            last = cursor.fetchone()[0]
            return list(range(last + 1, last + 1 + count))

    def insert_identifiers(self, model: type, names: list[str], rows: list[tuple]) -> int:
        """Rows that lose against an existing identifier are skipped; returns how many went in."""
        if not rows:
            return 0
        table, columns = _columns(model, names)
        if not self.postgres:
            marks = ", ".join(["%s"] * len(names))
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"INSERT OR IGNORE INTO {table} ({columns}) VALUES ({marks})", rows
                )
                return cursor.rowcount
        staging = f"import_new_{model._meta.model_name}"
        with connection.wrap_database_errors, connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} ON COMMIT DELETE ROWS "
                f"AS SELECT {columns} FROM {table} WITH NO DATA"
            )
            with cursor.cursor.copy(f"COPY {staging} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            # Sorted rows: two chunks inserting the same identifiers queue on them in the
            # same order instead of deadlocking.
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} "
                f"ORDER BY {columns} ON CONFLICT DO NOTHING"
            )
            inserted = cursor.rowcount
            cursor.execute(f"DELETE FROM {staging}")
            return inserted

    def update_properties(self, rows: list[tuple[int, str]], now: datetime) -> None:
        """Set (id, properties JSON text) pairs and stamp them modified at `now`."""
        if not rows:
            return
        table, _ = _columns(UserProfile, [])
        quote = connection.ops.quote_name
        properties = quote(UserProfile._meta.get_field("properties").column)
        modified = quote(UserProfile._meta.get_field("last_modified_ts").column)
        if self.postgres:
            with connection.wrap_database_errors, connection.cursor() as cursor:
                cursor.execute(
                    "CREATE TEMPORARY TABLE IF NOT EXISTS import_profile_updates "
                    "(id bigint PRIMARY KEY, properties text) ON COMMIT DELETE ROWS"
                )
                with cursor.cursor.copy(
                    "COPY import_profile_updates (id, properties) FROM STDIN"
                ) as copy:
                    for row in rows:
                        copy.write_row(row)
                cursor.execute(
                    f"UPDATE {table} AS p SET {properties} = u.properties::jsonb, "
                    f"{modified} = %s FROM import_profile_updates AS u WHERE p.id = u.id",
                    [now],
                )
                cursor.execute("DELETE FROM import_profile_updates")
        else:
            stamp = self.timestamp(now)
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"UPDATE {table} SET {properties} = %s, {modified} = %s WHERE id = %s",
                    [(text, stamp, pk) for pk, text in rows],
                )


def profiles_lock(point_ids: list[Any], compartment_pks: set[int]) -> list[tuple]:
    """(id, user_point_id, compartment_id, user_account_id, properties) of the profiles of
    these points in these compartments, locked (``FOR UPDATE``) in id order.

    PostgreSQL gets two array parameters: Django's ``__in`` of a chunk's thousand point ids
    made a thousand placeholders that Django, then psycopg, built and parsed on every chunk.
    """
    if connection.vendor != "postgresql":
        return list(
            UserProfile.objects.filter(
                user_point_id__in=point_ids, compartment_id__in=compartment_pks
            )
            .order_by("id")
            .select_for_update()
            .values_list("id", "user_point_id", "compartment_id", "user_account_id", "properties")
        )
    field = UserProfile._meta.get_field("properties")
    table, columns = _columns(
        UserProfile, ["id", "user_point", "compartment", "user_account_id", "properties"]
    )
    point_column = connection.ops.quote_name(UserProfile._meta.get_field("user_point").column)
    compartment_column = connection.ops.quote_name(
        UserProfile._meta.get_field("compartment").column
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {table} WHERE {point_column} = ANY(%s::uuid[]) "
            f"AND {compartment_column} = ANY(%s::integer[]) ORDER BY id FOR UPDATE",
            [list(point_ids), sorted(compartment_pks)],
        )
        return [
            (pk, point, compartment, account, field.from_db_value(text, None, connection))
            for pk, point, compartment, account, text in cursor.fetchall()
        ]
