"""The one write engine: a batch of profile commands applied set-based (SPEC §2).

Every profile write goes through here: an import chunk of a thousand lines, and an API or
admin write as a batch of one. `batch_prepare` checks each command's strategy, profile object
and compartments (CPU only, before the transaction); `batch_write` then, in one transaction:
resolves identifiers one query per kind and creates the missing user points with their
identifiers in bulk (`profiles.points`), locks and loads the profiles involved
(``SELECT … FOR UPDATE`` ordered by id, so overlapping batches queue instead of deadlocking),
applies every line in file order in memory with `profiles.merge.apply_merge` (a later line
sees an earlier one's effect), and writes the result back in a few statements
(`profiles.bulk`): deletes, inserts, one UPDATE, the history rows.

One rule each, here: the outcome of a line (created, updated, deleted, unchanged, not_found)
and "a result equal to the stored profile writes nothing"; the addressing is
`profiles.commands.command_address`, the compartment lookup `profiles.compartments`, the
history row `profiles.history`.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from profiles.bulk import BulkWriter, json_text, profiles_lock
from profiles.commands import LineError, Operation, ProfileCommand, command_address, line_error
from profiles.compartments import DatamartCompartments
from profiles.errors import ConcurrentWrite, ProfileError
from profiles.history import HISTORY_FIELDS, ChangeSource, changed_keys, history_row
from profiles.identifiers import identifier_label
from profiles.merge import MergeMode, apply_merge, choose_merge_mode
from profiles.models import Compartment, Datamart, ProfileChange, UserProfile
from profiles.points import IdentifierKey, identifier_key, points_create, points_find
from profiles.validation import MAX_PROFILE_BYTES, validate_custom_properties

logger = logging.getLogger(__name__)

OUTCOMES = ("created", "updated", "deleted", "unchanged", "not_found")
# A batch whose transaction meets a concurrent writer (unique violation, deadlock, a busy
# SQLite file) is rolled back and applied again, at most this many times.
BATCH_TRANSACTION_TRIES = 5
_RETRYABLE_SQLSTATES = {"23505", "40001", "40P01"}  # unique violation, serialization, deadlock

# What a batch takes: commands, and the lines a reader already refused (reported as they are).
BatchRecord = ProfileCommand | LineError
# A profile's key: (user point id, compartment pk, user_account_id or None).
ProfileKey = tuple[uuid.UUID, int, str | None]
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


@dataclass(frozen=True)
class ProfileDiff:
    """One line's effect: which profile it addresses, and its properties before/after."""

    line: int
    identifier: str
    operation: str
    outcome: str  # created / updated / deleted / unchanged / not_found
    compartment_id: int
    user_account_id: str | None
    before: dict[str, Any] | None  # None: no profile
    after: dict[str, Any] | None


@dataclass
class BatchResult:
    lines: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    errors: list[LineError] = field(default_factory=list)
    diffs: list[ProfileDiff] = field(default_factory=list)
    # The domain error behind each failed command, by line (services raise it as it is).
    problems: dict[int, ProfileError] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return len(self.errors)


@dataclass
class _Line:
    index: int
    command: ProfileCommand
    mode: MergeMode | None  # None for DELETE
    compartment: Compartment
    user_account_id: str | None
    properties: dict[str, Any]
    identifier_key: IdentifierKey


@dataclass
class PreparedBatch:
    """A batch's lines checked against everything but the profiles: no lock needed yet."""

    datamart: Datamart
    records: list[BatchRecord]
    compartments: DatamartCompartments
    lines: list[_Line]
    errors: list[LineError]
    problems: dict[int, ProfileError]


def _prepare(
    command: ProfileCommand, index: int, default_mode: MergeMode, compartments: DatamartCompartments
) -> _Line:
    """Everything about a line that does not depend on the database; raises ProfileError.

    Checked in this order: the strategy, the profile object, the profile's compartment, then
    the identifier's compartment.
    """
    mode = None
    if command.operation is Operation.UPSERT:
        mode = choose_merge_mode(
            update_strategy=command.update_strategy,
            force_replace=command.force_replace,
            merge_objects=command.merge_objects,
            default=default_mode,
        )
    address = command_address(command)
    compartment = compartments.get(address.compartment_id, field=address.compartment_field)
    return _Line(
        index=index,
        command=command,
        mode=mode,
        compartment=compartment,
        user_account_id=address.user_account_id,
        properties=address.properties,
        identifier_key=identifier_key(command.identifier, compartments),
    )


def batch_prepare(
    *, datamart: Datamart, records: list[BatchRecord], default_mode: MergeMode
) -> PreparedBatch:
    """Strategies, profile objects and compartments of each line (the CPU-heavy part), done
    before the batch's transaction so locks are held only while the database is written."""
    compartments = DatamartCompartments(datamart)
    prepared = PreparedBatch(datamart, records, compartments, [], [], {})
    for index, record in enumerate(records):
        if isinstance(record, LineError):
            prepared.errors.append(record)
            continue
        try:
            prepared.lines.append(_prepare(record, index, default_mode, compartments))
        except ProfileError as problem:
            prepared.errors.append(line_error(record, problem))
            prepared.problems[record.line] = problem
    return prepared


class _Profile:
    """A profile while a batch applies: loaded and locked, or created by a line of the batch."""

    __slots__ = (
        "pk",
        "user_point_id",
        "compartment",
        "user_account_id",
        "properties",
        "text",  # the properties as JSON text, once computed
        "dead",  # created in this batch and deleted by a later line of it
    )

    def __init__(
        self,
        *,
        pk: int | None,
        user_point_id: Any,
        compartment: Compartment,
        user_account_id: str | None,
        properties: dict[str, Any],
    ) -> None:
        self.pk = pk
        self.user_point_id = user_point_id
        self.compartment = compartment
        self.user_account_id = user_account_id
        self.properties = properties
        self.text: str | None = None
        self.dead = False


def _lock_profiles(
    point_ids: Iterable[Any], compartment_pks: Iterable[int], compartments: DatamartCompartments
) -> dict[ProfileKey, _Profile]:
    """The existing profiles the batch may touch, locked in id order."""
    point_ids = list(point_ids)
    if not point_ids:
        return {}
    rows = profiles_lock(point_ids, set(compartment_pks))
    return {
        (point_id, compartment_pk, account): _Profile(
            pk=pk,
            user_point_id=point_id,
            compartment=compartments.by_pk[compartment_pk],
            user_account_id=account,
            properties=properties,
        )
        for pk, point_id, compartment_pk, account, properties in rows
    }


def _checked_text(properties: dict[str, Any]) -> str:
    """The JSON text of merged properties, checked like `validate_custom_properties`.

    Keys and values of a merge result all come from validated objects, and merging never
    nests deeper than its inputs: only the size can go over a limit. Over it, the validator
    itself raises, so the error is its own.
    """
    text = json_text(properties)
    if len(text) > MAX_PROFILE_BYTES // 4 and len(text.encode("utf-8")) > MAX_PROFILE_BYTES:
        validate_custom_properties(properties)
    return text


class _Changes:
    """What the in-memory pass decided, to be written in a few statements."""

    def __init__(self) -> None:
        # (profile, action, changed keys, the changed keys' values before: absent keys left out)
        self.history: list[tuple[_Profile, str, list[str], dict[str, Any]]] = []
        self.generations: dict[ProfileKey, int] = {}
        self.inserts: dict[int, list[_Profile]] = {}  # generation -> profiles to insert
        self.dirty: dict[int, _Profile] = {}  # pk -> existing profile whose properties changed
        self.deleted: list[int] = []  # pks of existing profiles deleted


def _apply_line(
    line: _Line,
    point_id: Any,
    profiles: dict[ProfileKey, _Profile | None],
    changes: _Changes,
) -> tuple[str, dict | None, dict | None]:
    """One line in memory: (outcome, properties before, after); raises ProfileError."""
    profile_key = (point_id, line.compartment.pk, line.user_account_id)
    profile = profiles.get(profile_key)
    before = None if profile is None else profile.properties
    if line.command.operation is Operation.DELETE:
        if profile is None:
            return "not_found", None, None
        changes.history.append((profile, "deleted", sorted(profile.properties), profile.properties))
        if profile.pk is None:
            profile.dead = True
        else:
            changes.deleted.append(profile.pk)
            changes.dirty.pop(profile.pk, None)
        profiles[profile_key] = None
        return "deleted", before, None
    assert line.mode is not None
    if profile is None:
        created = apply_merge(None, line.properties, line.mode)
        if created is None:
            return "unchanged", None, None
        profile = _Profile(
            pk=None,
            user_point_id=point_id,
            compartment=line.compartment,
            user_account_id=line.user_account_id,
            properties=created,
        )
        generation = changes.generations.get(profile_key, 0) + 1
        changes.generations[profile_key] = generation
        changes.inserts.setdefault(generation, []).append(profile)
        changes.history.append((profile, "created", sorted(created), {}))
        profiles[profile_key] = profile
        return "created", None, created
    merged = apply_merge(profile.properties, line.properties, line.mode)
    # The unchanged rule: a result JSON-equal to the stored properties writes nothing.
    keys = [] if merged is None else changed_keys(profile.properties, merged)
    if not keys:
        return "unchanged", before, before
    text = _checked_text(merged)
    previous = {key: profile.properties[key] for key in keys if key in profile.properties}
    changes.history.append((profile, "updated", keys, previous))
    profile.properties, profile.text = merged, text
    if profile.pk is not None:
        changes.dirty[profile.pk] = profile
    return "updated", before, merged


def _write(
    writer: BulkWriter,
    datamart: Datamart,
    changes: _Changes,
    source: ChangeSource,
    record_history: bool,
) -> None:
    """Deletes first (a deleted profile's key may be created again), then the new profiles
    generation by generation, then the updates, then the history."""
    now = timezone.now()
    if changes.deleted:
        UserProfile.objects.filter(pk__in=changes.deleted).delete()
    stamp = writer.timestamp(now)
    for generation in sorted(changes.inserts):
        batch = changes.inserts[generation]
        for profile, pk in zip(batch, writer.next_ids(UserProfile, len(batch)), strict=True):
            profile.pk = pk
        writer.insert(
            UserProfile,
            _PROFILE_FIELDS,
            [
                (
                    profile.pk,
                    datamart.pk,
                    writer.uuid(profile.user_point_id),
                    profile.compartment.pk,
                    profile.user_account_id,
                    profile.text or json_text(profile.properties),
                    stamp,
                    stamp,
                )
                for profile in batch
            ],
        )
        dead = [profile.pk for profile in batch if profile.dead]
        if dead:
            UserProfile.objects.filter(pk__in=dead).delete()
    writer.update_properties(
        [(profile.pk, profile.text) for profile in changes.dirty.values()], now
    )
    if record_history and changes.history:
        writer.insert(
            ProfileChange,
            HISTORY_FIELDS,
            [
                history_row(
                    datamart_id=datamart.pk,
                    user_point_id=writer.uuid(profile.user_point_id),
                    profile_id=profile.pk,
                    compartment_id=profile.compartment.compartment_id,
                    user_account_id=profile.user_account_id,
                    action=action,
                    keys_json=json_text(keys),
                    previous_json=json_text(previous),
                    source=source,
                    stamp=stamp,
                )
                for profile, action, keys, previous in changes.history
            ],
        )


def batch_write(
    prepared: PreparedBatch,
    *,
    source: ChangeSource,
    record_history: bool = True,
    diff_lines: int = 0,
) -> BatchResult:
    """Apply a prepared batch in file order, set-based, in one transaction.

    Joins the caller's transaction when there is one (the import runner commits its
    checkpoint in it; the preview rolls it back). `diff_lines`: report the properties
    before/after of the batch's first lines (the preview).
    """
    datamart, lines = prepared.datamart, prepared.lines
    result = BatchResult(
        lines=len(prepared.records),
        errors=list(prepared.errors),
        problems=dict(prepared.problems),
    )
    writer = BulkWriter()
    with transaction.atomic(savepoint=False):
        points = points_find(datamart, {line.identifier_key for line in lines})
        missing = {
            line.identifier_key: None
            for line in lines
            if line.identifier_key not in points
            and line.command.operation is Operation.UPSERT
            and line.identifier_key[0] != "point"  # a point named by its id is never created
        }
        existing_points = set(points.values())
        if missing:
            points.update(points_create(writer, datamart, list(missing), timezone.now()))
        profiles: dict[ProfileKey, _Profile | None] = dict(
            _lock_profiles(
                existing_points, {line.compartment.pk for line in lines}, prepared.compartments
            )
        )
        changes = _Changes()
        for line in lines:
            command = line.command
            # A point an UPSERT creates further down has no profile before that line, so a
            # DELETE above it finds nothing either way.
            point_id = points.get(line.identifier_key)
            try:
                if point_id is None and command.operation is Operation.UPSERT:
                    raise ProfileError(
                        "USER_POINT_NOT_FOUND", f"user point {command.identifier} does not exist"
                    )
                if point_id is None:
                    outcome, before, after = "not_found", None, None
                else:
                    outcome, before, after = _apply_line(line, point_id, profiles, changes)
            except ProfileError as problem:  # the validator's PropertyError included
                result.errors.append(line_error(command, problem))
                result.problems[command.line] = problem
                continue
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
        _write(writer, datamart, changes, source, record_history)
    result.errors.sort(key=lambda error: error.line)
    return result


def commands_apply(
    *,
    datamart: Datamart,
    records: list[BatchRecord],
    default_mode: MergeMode,
    source: ChangeSource,
    record_history: bool = True,
    diff_lines: int = 0,
) -> BatchResult:
    """Apply a batch of records in file order, set-based, in the caller's transaction."""
    prepared = batch_prepare(datamart=datamart, records=records, default_mode=default_mode)
    return batch_write(
        prepared, source=source, record_history=record_history, diff_lines=diff_lines
    )


def _connection_lost(problem: Exception, state: str | None) -> bool:
    """The server ended our session (pg_terminate_backend, a restart, a network cut): the
    transaction rolled back, and a retry runs on a new connection. Only outside any caller's
    transaction, which died with the connection."""
    if connection.in_atomic_block or not isinstance(problem, OperationalError | InterfaceError):
        return False
    if (state or "")[:2] in {"08", "57"} or connection.connection is None:
        return True
    if connection.vendor != "postgresql" or state is not None:
        return False
    # libpq's own error, without a SQLSTATE ("sending copy data failed: server closed the
    # connection unexpectedly" when the session ends mid-COPY). Leaving the atomic block,
    # Django closed the dead connection and opened another; if not, close it.
    if not connection.is_usable():
        connection.close()
    return True


def _is_retryable(problem: Exception) -> bool:
    if isinstance(problem, ConcurrentWrite):
        return True
    cause = problem.__cause__
    state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if state in _RETRYABLE_SQLSTATES or _connection_lost(problem, state):
        return True
    # SQLite serialises writers: only a file that stayed locked past the timeout is transient.
    return (
        connection.vendor == "sqlite"
        and isinstance(problem, OperationalError)
        and "locked" in str(problem)
    )


def with_retries(apply: Callable[[], Any]) -> Any:
    """Run `apply` (one transaction) again when a concurrent writer made it roll back."""
    for attempt in range(1, BATCH_TRANSACTION_TRIES + 1):
        try:
            return apply()
        except (IntegrityError, OperationalError, InterfaceError, ConcurrentWrite) as problem:
            if attempt == BATCH_TRANSACTION_TRIES or not _is_retryable(problem):
                raise
            logger.info("batch rolled back (%s), applying it again", problem)
            time.sleep(random.uniform(0.02, 0.1) * attempt)
    raise AssertionError("unreachable")
