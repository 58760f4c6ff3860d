"""The import pipeline: a file read as a stream and applied in chunks (SPEC §2, §4).

`execution_run` claims an execution, reads its file with the streaming readers and applies it
`IMPORT_CHUNK_SIZE` lines at a time. Each chunk is one transaction together with its
checkpoint (the last line applied and the byte offset after it), its counters and its line
errors, so a worker killed at any moment resumes after the last committed chunk and ends with
the database a clean run gives.

`chunk_apply` applies one chunk set-based: a few statements whatever the chunk's size.
`chunk_prepare` checks each line's strategy, profile object and compartments (CPU only, before
the transaction); `chunk_write` then resolves identifiers one query per kind, creates missing
user points and identifiers in bulk, locks and loads the profiles involved (``SELECT … FOR
UPDATE`` ordered by id), applies every line in file order in memory with
`profiles.merge.apply_merge` (a later line sees an earlier one's effect), and writes the result
back: deletes, inserts, one UPDATE, the history rows (COPY on PostgreSQL). Line outcomes and errors are those of `profiles.services.profile_command_apply`,
the line-by-line reference (a hypothesis test holds the two together).

Who runs an execution: a run *claims* it (a fresh token, the worker's node name, a heartbeat
stamped at each chunk). Every chunk transaction locks the execution row and checks the token,
so when a second run takes over (a redelivered task, a restarted worker) the first one cannot
commit anything more: no line is applied twice. A run does not take over from another worker
whose heartbeat is fresh. `attempts` counts the runs started at the same checkpoint; past
`IMPORT_MAX_ATTEMPTS` the execution fails instead of killing workers forever.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import IO, Any

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from uuid6 import uuid7

from imports.models import Execution, ExecutionError
from imports.readers import (
    FileError,
    FileFormat,
    ImportRecord,
    Reader,
    ReaderOptions,
    open_reader,
)
from imports.services import (
    PREVIEW_DIFF_LINES,
    PREVIEW_ERRORS,
    ImportPreview,
    PreviewError,
    ProfileDiff,
    execution_merge_mode,
)
from imports.writers import write_failed_lines
from profiles.commands import LineError, Operation, ProfileCommand
from profiles.errors import ProfileError
from profiles.identifiers import (
    AccountIdentifier,
    EmailIdentifier,
    Identifier,
    UserAgentIdentifier,
    identifier_label,
)
from profiles.merge import MergeMode, apply_merge, choose_merge_mode, json_equal
from profiles.models import (
    Compartment,
    Datamart,
    ProfileChange,
    UserAccount,
    UserAgent,
    UserEmail,
    UserPoint,
    UserProfile,
)
from profiles.services import ChangeSource, changed_keys
from profiles.validation import (
    MAX_PROFILE_BYTES,
    PropertyError,
    split_profile_object,
    validate_custom_properties,
)

logger = logging.getLogger(__name__)

OUTCOMES = ("created", "updated", "deleted", "unchanged", "not_found")
# A chunk whose transaction meets a concurrent writer (unique violation, deadlock, a busy
# SQLite file) is rolled back and applied again, at most this many times.
CHUNK_TRANSACTION_TRIES = 5
_RETRYABLE_SQLSTATES = {"23505", "40001", "40P01"}  # unique violation, serialization, deadlock


# --------------------------------------------------------------------------- one chunk


@dataclass
class ChunkResult:
    lines: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    errors: list[LineError] = field(default_factory=list)
    diffs: list[ProfileDiff] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.errors)


# An identifier as a lookup key: ("account", compartment pk, id), ("email", hash), ("agent", id).
IdentifierKey = tuple[str, Any] | tuple[str, int, str]
# A profile's key: (user point id, compartment pk, user_account_id or None).
ProfileKey = tuple[uuid.UUID, int, str | None]


@dataclass
class _Line:
    index: int
    command: ProfileCommand
    mode: MergeMode | None  # None for DELETE
    compartment: Compartment
    user_account_id: str | None
    properties: dict[str, Any]
    identifier_key: IdentifierKey


class _Compartments:
    """The datamart's compartments, loaded once per chunk (a handful of rows)."""

    def __init__(self, datamart: Datamart) -> None:
        self.datamart = datamart
        rows = list(Compartment.objects.filter(datamart=datamart))
        self.by_id = {row.compartment_id: row for row in rows}
        self.by_pk = {row.pk: row for row in rows}
        self.default = next((row for row in rows if row.is_default), None)

    def get(self, compartment_id: int | None, field_name: str) -> Compartment:
        """The same errors as `profiles.services.compartment_get`, naming the line's field."""
        if compartment_id is None:
            if self.default is None:
                raise ProfileError(
                    "NO_DEFAULT_COMPARTMENT",
                    f"datamart {self.datamart.id} has no default compartment",
                )
            return self.default
        compartment = self.by_id.get(compartment_id)
        if compartment is None:
            raise ProfileError(
                "UNKNOWN_COMPARTMENT",
                f"compartment {compartment_id} does not exist in datamart {self.datamart.id}",
                field=field_name,
            )
        return compartment


def _identifier_key(identifier: Identifier, compartments: _Compartments) -> IdentifierKey:
    match identifier:
        case AccountIdentifier():
            compartment = compartments.get(identifier.compartment_id, "compartment_id")
            return ("account", compartment.pk, identifier.user_account_id)
        case EmailIdentifier():
            return ("email", identifier.email_hash)
        case UserAgentIdentifier():
            return ("agent", identifier.user_agent_id)
    raise TypeError(f"not an identifier: {identifier!r}")


def _line_error(command: ProfileCommand, problem: ProfileError) -> LineError:
    return LineError(
        line=command.line,
        code=problem.code,
        message=f"line {command.line}: {problem.message}",
        field=problem.field,
        identifier=identifier_label(command.identifier),
        raw=command.raw,
    )


def _prepare(
    command: ProfileCommand, index: int, default_mode: MergeMode, compartments: _Compartments
) -> _Line:
    """Everything about a line that does not depend on the database; raises ProfileError.

    Checked in the order of the reference: the strategy (chosen by the caller there), the
    profile object, the profile's compartment, then the identifier's compartment.
    """
    mode = None
    if command.operation is Operation.UPSERT:
        mode = choose_merge_mode(
            update_strategy=command.update_strategy,
            force_replace=command.force_replace,
            merge_objects=command.merge_objects,
            default=default_mode,
        )
    if command.operation is Operation.DELETE and command.user_profile is None:
        # SPEC §2: a DELETE without user_profile through an account deletes that account's profile.
        identifier = command.identifier
        if isinstance(identifier, AccountIdentifier):
            compartment_id, account = identifier.compartment_id, identifier.user_account_id
        else:
            compartment_id, account = None, None
        properties: dict[str, Any] = {}
        compartment_field = "compartment_id"
    else:
        address, properties = split_profile_object(command.user_profile)
        compartment_id, account = address.compartment_id, address.user_account_id
        compartment_field = "$compartment_id"
    compartment = compartments.get(compartment_id, compartment_field)
    return _Line(
        index=index,
        command=command,
        mode=mode,
        compartment=compartment,
        user_account_id=account,
        properties=properties,
        identifier_key=_identifier_key(command.identifier, compartments),
    )


def _find_points(datamart: Datamart, keys: Iterable[IdentifierKey]) -> dict[IdentifierKey, Any]:
    """One query per identifier kind: the user point of each key that exists."""
    accounts: dict[int, list[str]] = {}
    emails: list[str] = []
    agents: list[str] = []
    for key in keys:
        if key[0] == "account":
            accounts.setdefault(key[1], []).append(key[2])
        elif key[0] == "email":
            emails.append(key[1])
        else:
            agents.append(key[1])
    found: dict[IdentifierKey, Any] = {}
    if accounts:
        condition = Q()
        for compartment_pk, account_ids in accounts.items():
            condition |= Q(compartment_id=compartment_pk, user_account_id__in=account_ids)
        for compartment_pk, account_id, point_id in UserAccount.objects.filter(
            condition
        ).values_list("compartment_id", "user_account_id", "user_point_id"):
            found[("account", compartment_pk, account_id)] = point_id
    if emails:
        for email_hash, point_id in UserEmail.objects.filter(
            datamart=datamart, email_hash__in=emails
        ).values_list("email_hash", "user_point_id"):
            found[("email", email_hash)] = point_id
    if agents:
        for agent_id, point_id in UserAgent.objects.filter(
            datamart=datamart, user_agent_id__in=agents
        ).values_list("user_agent_id", "user_point_id"):
            found[("agent", agent_id)] = point_id
    return found


class _ConcurrentWrite(Exception):
    """Another transaction changed what this chunk relies on: roll back and apply it again."""


class _Profile:
    """A profile while a chunk applies: loaded and locked, or created by a line of the chunk.

    Its attributes are named like UserProfile's, so the history is built the same way.
    """

    __slots__ = (
        "pk",
        "datamart_id",
        "user_point_id",
        "compartment",
        "user_account_id",
        "properties",
        "text",  # the properties as JSON text, once computed
        "dead",  # created in this chunk and deleted by a later line of it
    )

    def __init__(
        self,
        *,
        pk: int | None,
        datamart_id: int,
        user_point_id: Any,
        compartment: Compartment,
        user_account_id: str | None,
        properties: dict[str, Any],
        text: str | None = None,
    ) -> None:
        self.pk = pk
        self.datamart_id = datamart_id
        self.user_point_id = user_point_id
        self.compartment = compartment
        self.user_account_id = user_account_id
        self.properties = properties
        self.text = text
        self.dead = False


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _uuid_hex(value: uuid.UUID) -> str:
    return value.hex


def _columns(model: type, names: list[str]) -> tuple[str, str]:
    """The quoted table and column list of a model, for hand-written statements."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(model._meta.get_field(name).column) for name in names)
    return quote(model._meta.db_table), columns


class _Writer:
    """The few statements a chunk writes, in each database's fastest form.

    PostgreSQL: COPY (rows go in at C speed, no per-row SQL), a temporary table for the
    identifiers (INSERT … ON CONFLICT DO NOTHING) and the updates (one UPDATE … FROM).
    SQLite: executemany inside the chunk's transaction, which holds the file's write lock.
    """

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

    def update_properties(self, profiles: list[_Profile], now: datetime) -> None:
        if not profiles:
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
                    for profile in profiles:
                        copy.write_row((profile.pk, profile.text))
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
                    [(profile.text, stamp, profile.pk) for profile in profiles],
                )


_PROFILE_FIELDS = [
    "id",
    "datamart",
    "user_point",
    "compartment",
    "user_account_id",
    "properties",
    "creation_ts",
    "last_modified_ts",
]
_HISTORY_FIELDS = [
    "datamart",
    "user_point",
    "profile_id",
    "compartment_id",
    "user_account_id",
    "action",
    "changed_keys",
    "source",
    "user",
    "api_token",
    "execution_id",
    "ts",
]


def history_row(
    writer: _Writer,
    profile: _Profile,
    action: str,
    keys: list[str],
    source: ChangeSource,
    stamp: Any,
) -> tuple:
    """The columns `profiles.services.profile_change_build` fills, as a row (`_HISTORY_FIELDS`)."""
    return (
        profile.datamart_id,
        writer.uuid(profile.user_point_id),
        profile.pk,
        profile.compartment.compartment_id,
        profile.user_account_id,
        action,
        _json_text(keys),
        source.kind,
        source.user_id,
        source.api_token_id,
        source.execution_id,
        stamp,
    )


def _create_points(
    writer: _Writer, datamart: Datamart, keys: list[IdentifierKey], now: datetime
) -> dict[IdentifierKey, Any]:
    """A new user point per key, with its identifier; returns each key's point.

    Identifiers go in with ON CONFLICT DO NOTHING and are read back, so an execution that
    created the same identifier meanwhile wins and both use its point; the points this chunk
    created for nothing are deleted.
    """
    points = {key: uuid7() for key in keys}
    stamp = writer.timestamp(now)
    writer.insert(
        UserPoint,
        ["id", "datamart", "creation_ts"],
        [(writer.uuid(point), datamart.pk, stamp) for point in points.values()],
    )
    accounts, emails, agents = [], [], []
    for key, point in points.items():
        if key[0] == "account":
            accounts.append((datamart.pk, writer.uuid(point), key[1], key[2]))
        elif key[0] == "email":
            emails.append((datamart.pk, writer.uuid(point), key[1], ""))
        else:
            agents.append((datamart.pk, writer.uuid(point), key[1]))
    inserted = writer.insert_identifiers(
        UserAccount, ["datamart", "user_point", "compartment", "user_account_id"], accounts
    )
    inserted += writer.insert_identifiers(
        UserEmail, ["datamart", "user_point", "email_hash", "email"], emails
    )
    inserted += writer.insert_identifiers(
        UserAgent, ["datamart", "user_point", "user_agent_id"], agents
    )
    if inserted == len(keys):
        return points  # no other execution got there first: every identifier is ours
    found = _find_points(datamart, keys)
    orphans = [point for key, point in points.items() if found.get(key) != point]
    if orphans:
        UserPoint.objects.filter(pk__in=orphans).delete()
    if len(found) != len(keys):
        raise _ConcurrentWrite("an identifier vanished while it was being created")
    return found


def _lock_profiles(
    datamart: Datamart,
    point_ids: Iterable[Any],
    compartment_pks: Iterable[int],
    compartments: _Compartments,
) -> dict[ProfileKey, _Profile]:
    """The existing profiles the chunk may touch, locked in id order (no deadlock between
    executions that lock overlapping sets)."""
    point_ids = list(point_ids)
    if not point_ids:
        return {}
    rows = (
        UserProfile.objects.filter(
            user_point_id__in=point_ids, compartment_id__in=set(compartment_pks)
        )
        .order_by("id")
        .select_for_update()
        .values_list("id", "user_point_id", "compartment_id", "user_account_id", "properties")
    )
    return {
        (point_id, compartment_pk, account): _Profile(
            pk=pk,
            datamart_id=datamart.pk,
            user_point_id=point_id,
            compartment=compartments.by_pk[compartment_pk],
            user_account_id=account,
            properties=properties,
        )
        for pk, point_id, compartment_pk, account, properties in rows
    }


def _changed(merged: dict[str, Any], existing: dict[str, Any]) -> bool:
    # Python's == is JSON's except that it takes true for 1: a difference it finds is real.
    return merged != existing or not json_equal(merged, existing)


def _checked_text(properties: dict[str, Any]) -> str:
    """The JSON text of merged properties, checked like `validate_custom_properties`.

    Keys and values of a merge result all come from validated objects, and merging never
    nests deeper than its inputs: only the size can go over a limit. Over it, the validator
    itself raises, so the error is its own.
    """
    text = _json_text(properties)
    if len(text) > MAX_PROFILE_BYTES // 4 and len(text.encode("utf-8")) > MAX_PROFILE_BYTES:
        validate_custom_properties(properties)
    return text


@dataclass
class PreparedChunk:
    """A chunk's lines checked against everything but the profiles: no lock needed yet."""

    datamart: Datamart
    records: list[ImportRecord]
    compartments: _Compartments
    lines: list[_Line]
    errors: list[LineError]


def chunk_prepare(
    *, datamart: Datamart, records: list[ImportRecord], default_mode: MergeMode
) -> PreparedChunk:
    """Strategies, profile objects and compartments of each line (the CPU-heavy part), done
    before the chunk's transaction so locks are held only while the database is written."""
    compartments = _Compartments(datamart)
    lines: list[_Line] = []
    errors: list[LineError] = []
    for index, record in enumerate(records):
        if isinstance(record, LineError):
            errors.append(record)
            continue
        try:
            lines.append(_prepare(record, index, default_mode, compartments))
        except ProfileError as problem:
            errors.append(_line_error(record, problem))
    return PreparedChunk(datamart, records, compartments, lines, errors)


def chunk_apply(
    *,
    datamart: Datamart,
    records: list[ImportRecord],
    default_mode: MergeMode,
    source: ChangeSource,
    record_history: bool = True,
    diff_lines: int = 0,
) -> ChunkResult:
    """Apply a chunk of records in file order, set-based, in one transaction."""
    prepared = chunk_prepare(datamart=datamart, records=records, default_mode=default_mode)
    return chunk_write(
        prepared, source=source, record_history=record_history, diff_lines=diff_lines
    )


def chunk_write(
    prepared: PreparedChunk,
    *,
    source: ChangeSource,
    record_history: bool = True,
    diff_lines: int = 0,
) -> ChunkResult:
    """Apply a prepared chunk in file order, set-based, in one transaction.

    Joins the caller's transaction when there is one (the pipeline commits the checkpoint in
    it; the preview rolls it back). `diff_lines`: report the properties before/after of the
    chunk's first lines (the preview).
    """
    datamart, compartments, lines = prepared.datamart, prepared.compartments, prepared.lines
    result = ChunkResult(lines=len(prepared.records), errors=list(prepared.errors))
    now = timezone.now()
    writer = _Writer()
    with transaction.atomic(savepoint=False):
        # User points: those that exist, and those an UPSERT creates.
        points = _find_points(datamart, {line.identifier_key for line in lines})
        missing = {
            line.identifier_key: None
            for line in lines
            if line.identifier_key not in points and line.command.operation is Operation.UPSERT
        }
        existing_points = set(points.values())
        if missing:
            points.update(_create_points(writer, datamart, list(missing), now))

        profiles: dict[ProfileKey, _Profile | None] = dict(
            _lock_profiles(
                datamart,
                existing_points,
                {line.compartment.pk for line in lines},
                compartments,
            )
        )

        # Apply in file order, in memory.
        changes: list[tuple[_Profile, str, list[str]]] = []
        generations: dict[ProfileKey, int] = {}
        inserts: dict[int, list[_Profile]] = {}  # generation -> profiles to insert
        dirty: dict[int, _Profile] = {}  # pk -> existing profile whose properties changed
        deleted: list[int] = []  # pks of existing profiles deleted
        for line in lines:
            command = line.command
            key = line.identifier_key
            # A point an UPSERT creates further down has no profile before that line, so a
            # DELETE above it finds nothing either way.
            point_id = points.get(key)
            if point_id is None:
                outcome, before, after = "not_found", None, None
            else:
                profile_key = (point_id, line.compartment.pk, line.user_account_id)
                profile = profiles.get(profile_key)
                before = None if profile is None else profile.properties
                after = before
                if command.operation is Operation.DELETE:
                    if profile is None:
                        outcome = "not_found"
                    else:
                        outcome, after = "deleted", None
                        changes.append((profile, "deleted", sorted(profile.properties)))
                        if profile.pk is None:
                            profile.dead = True
                        else:
                            deleted.append(profile.pk)
                            dirty.pop(profile.pk, None)
                        profiles[profile_key] = None
                elif profile is None:
                    assert line.mode is not None
                    created = apply_merge(None, line.properties, line.mode)
                    if created is None:
                        outcome = "unchanged"
                    else:
                        outcome, after = "created", created
                        profile = _Profile(
                            pk=None,
                            datamart_id=datamart.pk,
                            user_point_id=point_id,
                            compartment=line.compartment,
                            user_account_id=line.user_account_id,
                            properties=created,
                        )
                        generation = generations.get(profile_key, 0) + 1
                        generations[profile_key] = generation
                        inserts.setdefault(generation, []).append(profile)
                        changes.append((profile, "created", sorted(created)))
                        profiles[profile_key] = profile
                else:
                    assert line.mode is not None
                    merged = apply_merge(profile.properties, line.properties, line.mode)
                    if merged is None or not _changed(merged, profile.properties):
                        outcome = "unchanged"
                    else:
                        try:
                            text = _checked_text(merged)
                        except PropertyError as problem:
                            result.errors.append(_line_error(command, problem))
                            continue
                        outcome, after = "updated", merged
                        changes.append(
                            (profile, "updated", changed_keys(profile.properties, merged))
                        )
                        profile.properties, profile.text = merged, text
                        if profile.pk is not None:
                            dirty[profile.pk] = profile
            result.counts[outcome] += 1
            if line.index < diff_lines:
                result.diffs.append(
                    ProfileDiff(
                        line=command.line,
                        identifier=identifier_label(command.identifier),
                        operation=command.operation.value,
                        outcome=outcome,
                        compartment_id=line.compartment.compartment_id,
                        user_account_id=line.user_account_id,
                        before=before,
                        after=after,
                    )
                )

        # Write: deletes first (a deleted profile's key may be created again), then the new
        # profiles generation by generation, then the updates, then the history.
        if deleted:
            UserProfile.objects.filter(pk__in=deleted).delete()
        stamp = writer.timestamp(now)
        for generation in sorted(inserts):
            batch = inserts[generation]
            for profile, pk in zip(batch, writer.next_ids(UserProfile, len(batch)), strict=True):
                profile.pk = pk
            writer.insert(
                UserProfile,
                _PROFILE_FIELDS,
                [
                    (
                        profile.pk,
                        profile.datamart_id,
                        writer.uuid(profile.user_point_id),
                        profile.compartment.pk,
                        profile.user_account_id,
                        profile.text or _json_text(profile.properties),
                        stamp,
                        stamp,
                    )
                    for profile in batch
                ],
            )
            dead = [profile.pk for profile in batch if profile.dead]
            if dead:
                UserProfile.objects.filter(pk__in=dead).delete()
        writer.update_properties(list(dirty.values()), now)
        if record_history and changes:
            writer.insert(
                ProfileChange,
                _HISTORY_FIELDS,
                [
                    history_row(writer, profile, action, keys, source, stamp)
                    for profile, action, keys in changes
                ],
            )
    result.errors.sort(key=lambda error: error.line)
    return result


def _is_retryable(problem: Exception) -> bool:
    if isinstance(problem, _ConcurrentWrite):
        return True
    cause = problem.__cause__
    state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if state in _RETRYABLE_SQLSTATES:
        return True
    # SQLite serialises writers: only a file that stayed locked past the timeout is transient.
    return (
        connection.vendor == "sqlite"
        and isinstance(problem, OperationalError)
        and "locked" in str(problem)
    )


def _with_retries(apply: Callable[[], Any]) -> Any:
    """Run `apply` (one transaction) again when a concurrent writer made it roll back."""
    for attempt in range(1, CHUNK_TRANSACTION_TRIES + 1):
        try:
            return apply()
        except (IntegrityError, OperationalError, _ConcurrentWrite) as problem:
            if attempt == CHUNK_TRANSACTION_TRIES or not _is_retryable(problem):
                raise
            logger.info("chunk rolled back (%s), applying it again", problem)
            time.sleep(random.uniform(0.02, 0.1) * attempt)
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- error rows


def _clean_text(text: str, limit: int | None = None) -> str:
    """Text a database column accepts: no NUL, no lone surrogate."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if not text.isascii():
        text = text.encode("utf-8", errors="replace").decode("utf-8")
    return text if limit is None else text[:limit]


def storable_raw(value: Any, encoding: str = "utf-8") -> Any:
    """The source record as JSON a database takes: undecodable bytes are decoded with
    replacement characters, NUL and lone surrogates replaced (the line was refused for
    them anyway, and the failed-lines file stays writable)."""
    if isinstance(value, bytes):
        return _clean_text(value.decode(encoding, errors="replace"))
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, dict):
        return {_clean_text(str(key)): storable_raw(item, encoding) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable_raw(item, encoding) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return _clean_text(str(value))


def _error_rows(execution_id: int, errors: list[LineError], encoding: str) -> list[ExecutionError]:
    return [
        ExecutionError(
            execution_id=execution_id,
            line=error.line,
            identifier=_clean_text(error.identifier, 600),
            error_code=_clean_text(error.code, 64),
            message=_clean_text(error.message),
            field=_clean_text(error.field, 300),
            raw=storable_raw(error.raw, encoding),
        )
        for error in errors
    ]


# --------------------------------------------------------------------------- running


class _LostClaim(Exception):
    """Another run took the execution over: this one stops without writing."""


@dataclass
class _Run:
    execution: Execution
    claim: str
    chunk_size: int
    record_history: bool
    datamart: Datamart | None = None
    progress: Callable[[int, int | None], None] | None = None
    processed: int = 0
    total: int | None = None


def _default_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _locked_row(run: _Run) -> dict[str, Any]:
    row = (
        Execution.objects.select_for_update()
        .filter(pk=run.execution.pk)
        .values("claim", "status", "cancel_requested", "checkpoint_line", "processed")
        .first()
    )
    if row is None or row["claim"] != run.claim or row["status"] != Execution.Status.RUNNING:
        raise _LostClaim()
    return row


def _canceled_message(checkpoint_line: int, processed: int) -> str:
    if not processed:
        return "canceled before any line was applied"
    return (
        f"canceled after line {checkpoint_line}: {processed} lines were applied or reported, "
        "the lines after it were not applied"
    )


def _claim(execution_id: int, worker: str) -> _Run | None:
    """Take the execution for this run, or None when there is nothing to do here."""
    with transaction.atomic():
        execution = Execution.objects.select_for_update().filter(pk=execution_id).first()
        if execution is None or execution.is_finished:
            return None
        if execution.cancel_requested:
            execution.transition(
                Execution.Status.CANCELED,
                error_code="CANCELED",
                error_message=_canceled_message(execution.checkpoint_line, execution.processed),
            )
            return None
        now = timezone.now()
        fresh = execution.heartbeat_ts is not None and now - execution.heartbeat_ts < timedelta(
            seconds=settings.IMPORT_STALE_SECONDS
        )
        if execution.status == Execution.Status.RUNNING and execution.worker != worker and fresh:
            logger.info("execution %s is running on %s: not taken over", execution_id, worker)
            return None
        attempts = execution.attempts + 1
        chunk_size = max(1, settings.IMPORT_CHUNK_SIZE)
        if attempts > settings.IMPORT_MAX_ATTEMPTS:
            first = execution.checkpoint_line + 1
            execution.transition(
                Execution.Status.FAILED,
                error_code="CHUNK_KEEPS_FAILING",
                error_message=(
                    f"{execution.attempts} runs stopped (worker killed or lost) while applying "
                    f"the chunk that starts after line {execution.checkpoint_line} (line {first} "
                    f"on): the execution stops there; {execution.processed} lines were applied "
                    "or reported before it"
                ),
            )
            return None
        claim = uuid.uuid4().hex
        execution.transition(Execution.Status.RUNNING)
        Execution.objects.filter(pk=execution_id).update(
            attempts=attempts, worker=worker, claim=claim, heartbeat_ts=now
        )
        execution.attempts, execution.worker, execution.claim = attempts, worker, claim
        execution.heartbeat_ts = now
    return _Run(execution=execution, claim=claim, chunk_size=chunk_size, record_history=True)


def _commit_chunk(
    run: _Run, records: list[ImportRecord], position: int | None, default_mode: MergeMode
) -> bool:
    """Apply one chunk and move the checkpoint past it; False when a cancel stopped the run."""
    execution = run.execution
    # The history names who uploaded the file: a staff user or an API token.
    source = ChangeSource(
        kind=ProfileChange.Source.IMPORT,
        user_id=execution.created_by_id,
        api_token_id=None if execution.created_by_id else execution.api_token_id,
        execution_id=execution.pk,
    )
    prepared = chunk_prepare(
        datamart=run.datamart or execution.datamart, records=records, default_mode=default_mode
    )

    def apply() -> bool:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # The checkpoint commits with the chunk, so a commit lost in a database crash
                # only means that chunk is applied again: no need to wait for the WAL flush.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
            row = _locked_row(run)
            if row["cancel_requested"]:
                execution.transition(
                    Execution.Status.CANCELED,
                    error_code="CANCELED",
                    error_message=_canceled_message(row["checkpoint_line"], row["processed"]),
                )
                return False
            result = chunk_write(prepared, source=source, record_history=run.record_history)
            if result.errors:
                ExecutionError.objects.bulk_create(
                    _error_rows(execution.pk, result.errors, execution.encoding)
                )
            counters = {name: F(name) + count for name, count in result.counts.items() if count}
            if result.failed:
                counters["failed"] = F("failed") + result.failed
            Execution.objects.filter(pk=execution.pk).update(
                processed=F("processed") + result.lines,
                checkpoint_line=records[-1].line,
                checkpoint_offset=position or 0,
                attempts=0,
                heartbeat_ts=timezone.now(),
                **counters,
            )
            run.processed = row["processed"] + result.lines
            return True

    return _with_retries(apply)


def _finish(run: _Run, status: str, *, error_code: str = "", error_message: str = "") -> None:
    with transaction.atomic():
        _locked_row(run)
        if status == Execution.Status.SUCCEEDED:
            Execution.objects.filter(pk=run.execution.pk).update(total_lines=F("processed"))
        run.execution.transition(status, error_code=error_code, error_message=error_message)


def _records_after(reader: Reader, execution: Execution) -> Iterator[ImportRecord]:
    if not execution.checkpoint_line:
        return reader.iterate()
    if reader.format is FileFormat.XLSX or not execution.checkpoint_offset:
        return reader.iterate(after_line=execution.checkpoint_line)
    return reader.iterate(
        after_line=execution.checkpoint_line, at_offset=execution.checkpoint_offset
    )


def execution_run(
    *,
    execution_id: int,
    worker: str = "",
    progress: Callable[[int, int | None], None] | None = None,
    record_history: bool = True,
) -> None:
    """Apply an execution's file from its checkpoint to the end (or to a cancel, or a failure).

    Safe to call for any execution at any time: a finished one, or one running elsewhere, is
    left alone. `progress(processed, total)` is called after each committed chunk.
    `record_history=False` skips the ProfileChange rows: for the benchmark only.
    """
    run = _claim(execution_id, worker or _default_worker())
    if run is None:
        return
    run.progress = progress
    run.record_history = record_history
    try:
        _run(run)
    except _LostClaim:
        logger.info("execution %s was taken over by another run: this one stops", execution_id)
    except Exception as problem:
        logger.exception("execution %s failed", execution_id)
        with contextlib.suppress(_LostClaim):
            _finish(
                run,
                Execution.Status.FAILED,
                error_code="INTERNAL_ERROR",
                error_message=f"the import stopped on an unexpected error: {problem!r}"[:2000],
            )


def _run(run: _Run) -> None:
    execution = run.execution
    execution.refresh_from_db()
    run.datamart = execution.datamart
    default_mode = execution_merge_mode(execution)
    options = ReaderOptions(
        encoding=execution.encoding or "utf-8", delimiter=execution.delimiter or None
    )
    try:
        if not execution.file.name:
            raise FileError("UNREADABLE_FILE", "the execution has no file")
        reader = open_reader(execution.file.path, FileFormat(execution.file_format), options)
    except FileError as problem:
        _finish(
            run, Execution.Status.FAILED, error_code=problem.code, error_message=problem.message
        )
        return
    described: dict[str, Any] = {}
    if reader.delimiter and execution.delimiter != reader.delimiter:
        described["delimiter"] = reader.delimiter
    if reader.headers is not None and execution.headers is None:
        described["headers"] = reader.headers
    if execution.total_lines is None:
        total = reader.count_records()
        if total is not None:
            described["total_lines"] = total
    if described:
        Execution.objects.filter(pk=execution.pk).update(**described)
    run.total = described.get("total_lines", execution.total_lines)
    run.processed = execution.processed

    records = _records_after(reader, execution)
    chunk: list[ImportRecord] = []
    file_error: FileError | None = None
    try:
        while True:
            try:
                record = next(records)
            except StopIteration:
                break
            except FileError as problem:
                file_error = problem
                break
            chunk.append(record)
            if len(chunk) >= run.chunk_size:
                if not _commit_chunk(run, chunk, reader.position, default_mode):
                    return
                chunk = []
                if run.progress:
                    run.progress(run.processed, run.total)
        # The lines read before a file-level error are applied: they were valid.
        if chunk:
            if not _commit_chunk(run, chunk, reader.position, default_mode):
                return
            if run.progress:
                run.progress(run.processed, run.total)
    finally:
        close = getattr(records, "close", None)
        if close:
            close()
    if file_error is not None:
        _finish(
            run,
            Execution.Status.FAILED,
            error_code=file_error.code,
            error_message=file_error.message,
        )
    else:
        _finish(run, Execution.Status.SUCCEEDED)


# --------------------------------------------------------------------------- preview


def _rule_two_warning(records: list[ImportRecord]) -> str:
    """SPEC §2 rule 2: the line's account does not address the profile."""
    lines = [
        record.line
        for record in records
        if isinstance(record, ProfileCommand)
        and isinstance(record.identifier, AccountIdentifier)
        and isinstance(record.user_profile, dict)
        and (
            record.user_profile.get("$compartment_id") is None
            or record.user_profile.get("$user_account_id") in (None, "")
        )
    ]
    if not lines:
        return ""
    shown = ", ".join(str(line) for line in lines[:10]) + (", …" if len(lines) > 10 else "")
    return (
        f"{len(lines)} lines are identified by an account but their user_profile names no "
        "$compartment_id and/or $user_account_id (lines "
        f"{shown}): they write the profile the user_profile names, in the default compartment "
        "and/or anonymous, not the account's own profile (SPEC §2 rule 2). Add "
        "$compartment_id and $user_account_id to the user_profile to address the account's profile."
    )


def preview_run(
    *,
    datamart: Datamart,
    path: str | os.PathLike[str],
    file_format: FileFormat,
    options: ReaderOptions,
    default_mode: MergeMode,
    max_lines: int = 1000,
) -> ImportPreview:
    """The first `max_lines` lines through `chunk_apply`, in a transaction rolled back."""
    preview = ImportPreview()
    try:
        reader = open_reader(path, file_format, options)
    except FileError as problem:
        preview.file_error_code, preview.file_error_message = problem.code, problem.message
        return preview
    preview.delimiter = reader.delimiter
    preview.headers = reader.headers
    records: list[ImportRecord] = []
    iterator = reader.iterate()
    try:
        records = list(islice(iterator, max_lines))
        if next(iterator, None) is not None:
            preview.truncated = True
    except FileError as problem:
        preview.file_error_code, preview.file_error_message = problem.code, problem.message
    finally:
        iterator.close()
    preview.lines = len(records)

    source = ChangeSource(kind=ProfileChange.Source.IMPORT)
    chunk_size = max(1, settings.IMPORT_CHUNK_SIZE)
    with transaction.atomic():
        for start in range(0, len(records), chunk_size):
            chunk = records[start : start + chunk_size]
            diff_lines = max(0, PREVIEW_DIFF_LINES - start)

            def apply(chunk=chunk, diff_lines=diff_lines) -> ChunkResult:
                with transaction.atomic():
                    return chunk_apply(
                        datamart=datamart,
                        records=chunk,
                        default_mode=default_mode,
                        source=source,
                        diff_lines=diff_lines,
                    )

            result = _with_retries(apply)
            for name, count in result.counts.items():
                preview.counts[name] += count
            preview.counts["failed"] += result.failed
            preview.diffs.extend(result.diffs)
            for error in result.errors:
                if len(preview.errors) < PREVIEW_ERRORS:
                    preview.errors.append(
                        PreviewError(
                            line=error.line,
                            identifier=error.identifier,
                            error_code=error.code,
                            message=error.message,
                            field=error.field,
                        )
                    )
        transaction.set_rollback(True)

    warning = _rule_two_warning(records)
    if warning:
        preview.warnings.append(warning)
    if preview.truncated:
        preview.warnings.append(
            f"the preview covers the first {preview.lines} lines; the file has more, "
            "applied only when the import runs"
        )
    if preview.file_error_code:
        preview.warnings.append(
            f"the import would fail: {preview.file_error_message} ({preview.file_error_code})"
        )
    return preview


# --------------------------------------------------------------------------- failed lines


def _failed_line_errors(execution: Execution) -> Iterator[LineError]:
    rows = execution.errors.order_by("line", "id").values_list(
        "line", "error_code", "message", "field", "identifier", "raw"
    )
    for line, code, message, field_name, identifier, raw in rows.iterator(chunk_size=2000):
        yield LineError(
            line=line,
            code=code,
            message=message,
            field=field_name,
            identifier=identifier,
            raw=raw,
        )


def failed_lines_write(*, execution: Execution, out: IO[bytes]) -> int:
    """The failed lines in the source format with `_line` and `_error`; returns their count."""
    return write_failed_lines(
        _failed_line_errors(execution),
        FileFormat(execution.file_format or FileFormat.NDJSON),
        out,
        headers=execution.headers,
        delimiter=execution.delimiter or ",",
        encoding=execution.encoding or "utf-8",
    )


def failed_lines_stream(*, execution: Execution, block_size: int = 1 << 16) -> Iterator[bytes]:
    """The failed-lines file in blocks, spooled to disk past a few megabytes."""
    with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
        failed_lines_write(execution=execution, out=spool)
        spool.seek(0)
        while block := spool.read(block_size):
            yield block
