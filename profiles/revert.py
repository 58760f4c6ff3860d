"""Undoing a recorded batch of changes (docs/rules.md#revert): the profiles an import execution
changed put back to their state before it, from the history (`ProfileChange.previous_values`).

`properties_before` is the one rule that reads the history backwards; `profile_restore_command`
the one way to put a profile back to given properties (a FORCE_REPLACE, or a DELETE), applied
by the write engine like any other write; `changes_revert` does one chunk of an execution's
history rows, in the caller's transaction: lock, look for later changes (conflicts), write.
The imports app runs it chunk by chunk as an execution of its own (`imports.revert`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection

from profiles.commands import LineError, Operation, ProfileCommand
from profiles.compartments import DatamartCompartments
from profiles.engine import BatchResult, batch_prepare, batch_write
from profiles.history import ChangeSource
from profiles.merge import DEFAULT_MERGE_MODE
from profiles.models import Datamart, ProfileChange, UserPoint, UserProfile

Action = ProfileChange.Action
# A profile's address as the history keeps it: (user point id, public compartment id, account).
Address = tuple[uuid.UUID, int, str | None]
CHANGE_FIELDS = (
    "id",
    "user_point_id",
    "compartment_id",
    "user_account_id",
    "action",
    "changed_keys",
    "previous_values",
    "execution_id",
)


@dataclass(frozen=True)
class ChangeRow:
    """One history row, as far as a revert reads it."""

    id: int
    user_point_id: uuid.UUID
    compartment_id: int
    user_account_id: str | None
    action: str
    changed_keys: list[str]
    previous_values: dict[str, Any]
    execution_id: int | None

    @property
    def address(self) -> Address:
        return (self.user_point_id, self.compartment_id, self.user_account_id)


def change_rows(queryset) -> list[ChangeRow]:
    return [ChangeRow(*values) for values in queryset.values_list(*CHANGE_FIELDS)]


# One history row to revert: its id and its profile's address (its values are read later, with
# the profile's other rows: no need to decode them twice).
ChunkRow = tuple[int, Address]


def chunk_rows(queryset) -> list[ChunkRow]:
    return [
        (pk, (point, compartment, account))
        for pk, point, compartment, account in queryset.values_list(
            "id", "user_point_id", "compartment_id", "user_account_id"
        )
    ]


def properties_before(
    current: dict[str, Any] | None, rows_newest_first: Iterable[ChangeRow]
) -> dict[str, Any] | None:
    """The properties a profile had before the oldest of `rows`, from its properties now
    (None: no profile) and its history rows since, newest first: each row undone in turn.

    created → no profile; deleted → its whole properties; updated → each changed key back to
    its previous value, or removed when it was absent before.
    """
    state = None if current is None else dict(current)
    for row in rows_newest_first:
        if row.action == Action.CREATED:
            state = None
        elif row.action == Action.DELETED:
            state = dict(row.previous_values)
        elif row.action == Action.UPDATED:
            state = {} if state is None else state
            for key in row.changed_keys:
                if key in row.previous_values:
                    state[key] = row.previous_values[key]
                else:
                    state.pop(key, None)
    return state


def profile_restore_command(
    *, line: int, address: Address, properties: dict[str, Any] | None
) -> ProfileCommand:
    """The command that puts the profile at `address` back to `properties` (None: no profile):
    a FORCE_REPLACE through the point's id (which never creates a point), or a DELETE."""
    point_id, compartment_id, account = address
    return ProfileCommand(
        line=line,
        operation=Operation.DELETE if properties is None else Operation.UPSERT,
        identifier=point_id,
        user_profile={
            "$compartment_id": compartment_id,
            "$user_account_id": account,
            **(properties or {}),
        },
        update_strategy=None if properties is None else "FORCE_REPLACE",
    )


def address_label(address: Address) -> str:
    """A profile named as the API's selectors name it, for error reports."""
    point_id, compartment_id, account = address
    label = f"user_point_id={point_id},compartment_id={compartment_id}"
    return label if account is None else f"{label},user_account_id={account}"


def _current_properties(
    addresses: Sequence[Address], compartments: DatamartCompartments
) -> dict[Address, dict[str, Any]]:
    """The profiles at `addresses` now, locked in id order as the engine locks them, so no
    writer changes them (nor their history) until the chunk commits."""
    points = {address[0] for address in addresses}
    pks = {compartments.by_id[c].pk for _, c, _ in addresses if c in compartments.by_id}
    rows = (
        UserProfile.objects.filter(user_point_id__in=points, compartment_id__in=pks)
        .order_by("id")
        .select_for_update()
        .values_list("user_point_id", "compartment_id", "user_account_id", "properties")
    )
    return {
        (point, compartments.by_pk[pk].compartment_id, account): properties
        for point, pk, account, properties in rows
    }


def changes_revert(
    *,
    datamart: Datamart,
    chunk: Sequence[ChunkRow],
    first_line: int,
    reverted_ids: frozenset[int],
    since_id: int,
    force: bool,
    source: ChangeSource,
) -> BatchResult:
    """Revert the profiles whose first change by the reverted execution is in `chunk` (rows of
    it, in id order; `first_line` the 1-based rank of the chunk's first row among them).

    `reverted_ids`: the execution and its earlier, unfinished reverts: their rows are undone;
    a row of anything else since the profile's first row is a conflict (`REVERT_CONFLICT`,
    the profile left alone) unless `force`. `since_id`: the execution's first row.
    Runs in the caller's transaction; the result counts profiles, its errors name the rank of
    the profile's first row as their line.
    """
    compartments = DatamartCompartments(datamart)
    firsts: dict[Address, int] = {}  # address -> its line (rank of its first row here)
    for offset, (_, address) in enumerate(chunk):
        firsts.setdefault(address, first_line + offset)
    addresses = list(firsts)
    current = _current_properties(addresses, compartments)
    history: dict[Address, list[ChangeRow]] = {}
    later = ProfileChange.objects.filter(
        user_point_id__in={address[0] for address in addresses}, id__gte=since_id
    ).order_by("id")
    for row in change_rows(later):
        if row.address in firsts:
            history.setdefault(row.address, []).append(row)
    live_points = set(
        UserPoint.objects.filter(pk__in={address[0] for address in addresses}).values_list(
            "pk", flat=True
        )
    )
    result = BatchResult(lines=len(addresses))
    commands: list[ProfileCommand] = []
    chunk_start = chunk[0][0]
    for address, line in firsts.items():
        rows = history.get(address, [])
        start = next((i for i, row in enumerate(rows) if row.execution_id in reverted_ids), None)
        if start is None:  # erased since the chunk was read: its rows moved to another id
            result.errors.append(_gone(line, address))
            continue
        if rows[start].id < chunk_start:
            result.lines -= 1  # its first change was in an earlier chunk, reverted there
            continue
        rows = rows[start:]
        if address[0] not in live_points:
            result.errors.append(_gone(line, address))
            continue
        others = [row for row in rows if row.execution_id not in reverted_ids]
        if others and not force:
            result.errors.append(_conflict(line, address, others[0]))
            continue
        before = properties_before(current.get(address), reversed(rows))
        if before is None and address not in current:
            result.counts["unchanged"] += 1
            continue
        commands.append(profile_restore_command(line=line, address=address, properties=before))
    if commands:
        prepared = batch_prepare(
            datamart=datamart, records=commands, default_mode=DEFAULT_MERGE_MODE
        )
        written = batch_write(prepared, source=source)
        for outcome, count in written.counts.items():
            result.counts[outcome] += count
        result.errors.extend(written.errors)
    result.errors.sort(key=lambda error: error.line)
    return result


def _conflict(line: int, address: Address, other: ChangeRow) -> LineError:
    by = (
        f"execution {other.execution_id}"
        if other.execution_id is not None
        else f"a {other.action} change"
    )
    return LineError(
        line=line,
        code="REVERT_CONFLICT",
        message=(
            f"line {line}: the profile {address_label(address)} was changed since by {by} "
            f"(history row {other.id}): left as it is; a forced revert (the API's force=true, the "
            "admin's Force box) puts it back anyway"
        ),
        identifier=address_label(address),
    )


def _gone(line: int, address: Address) -> LineError:
    # An erased person's rows moved to an id no point has: nothing personal is named.
    return LineError(
        line=line,
        code="USER_POINT_NOT_FOUND",
        message=f"line {line}: the user point was erased since: its profile cannot come back",
    )


@dataclass(frozen=True)
class RevertPreview:
    """What a revert of an execution would do, by profile, from its history rows."""

    rows: int  # the execution's history rows
    delete: int  # profiles it created
    restore: int  # profiles it updated
    recreate: int  # profiles it deleted
    unchanged: int  # created then deleted by it: nothing to put back
    conflicts: int  # changed since by something else

    @property
    def profiles(self) -> int:
        return self.delete + self.restore + self.recreate + self.unchanged


def revert_preview(*, execution_id: int, reverted_ids: frozenset[int]) -> RevertPreview:
    """Counts by profile: its first and last change by the execution say what a revert does
    (created … → delete; … deleted → recreate; else restore); a change by anything else since
    its first one is a conflict. One aggregate query over the execution's rows."""
    table = connection.ops.quote_name(ProfileChange._meta.db_table)
    own = ", ".join(["%s"] * len(reverted_ids))
    sql = f"""
        WITH spans AS (
            SELECT user_point_id, compartment_id, user_account_id,
                   min(id) AS first_id, max(id) AS last_id, count(*) AS n_rows
            FROM {table} WHERE execution_id = %s
            GROUP BY user_point_id, compartment_id, user_account_id
        )
        SELECT f.action, l.action,
               CASE WHEN EXISTS (
                   SELECT 1 FROM {table} o
                   WHERE o.user_point_id = s.user_point_id
                     AND o.compartment_id = s.compartment_id
                     AND (o.user_account_id = s.user_account_id
                          OR (o.user_account_id IS NULL AND s.user_account_id IS NULL))
                     AND o.id > s.first_id
                     AND (o.execution_id IS NULL OR o.execution_id NOT IN ({own}))
               ) THEN 1 ELSE 0 END,
               count(*), sum(s.n_rows)
        FROM spans s
        JOIN {table} f ON f.id = s.first_id
        JOIN {table} l ON l.id = s.last_id
        GROUP BY 1, 2, 3
    """
    counts = dict.fromkeys(("rows", "delete", "restore", "recreate", "unchanged", "conflicts"), 0)
    with connection.cursor() as cursor:
        cursor.execute(sql, [execution_id, *sorted(reverted_ids)])
        for first, last, conflict, profiles, rows in cursor.fetchall():
            counts["rows"] += rows
            if conflict:
                counts["conflicts"] += profiles
            if first == Action.CREATED:
                counts["unchanged" if last == Action.DELETED else "delete"] += profiles
            else:
                counts["recreate" if last == Action.DELETED else "restore"] += profiles
    return RevertPreview(**counts)
