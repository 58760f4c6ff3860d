"""Reverting recorded changes (profiles.revert), for any batches: the profiles come back.

Any batch of commands applied after any other, then reverted from its history rows in chunks of
any size, leaves the profiles of before it; reverting the revert gives the batch's result back.
"""

from __future__ import annotations

from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from profiles.commands import command_from_mapping
from profiles.engine import commands_apply
from profiles.history import ChangeSource
from profiles.merge import DEFAULT_MERGE_MODE
from profiles.models import ProfileChange
from profiles.revert import ChangeRow, changes_revert, chunk_rows, properties_before
from tests.imports.helpers import snapshot
from tests.profiles.test_engine_vs_oracle import batches, typed


def _source(execution_id: int) -> ChangeSource:
    return ChangeSource(kind=ProfileChange.Source.IMPORT, execution_id=execution_id)


def _apply(datamart, commands: list[dict], execution_id: int) -> None:
    records = [command_from_mapping(command, line=n) for n, command in enumerate(commands, 1)]
    commands_apply(
        datamart=datamart,
        records=records,
        default_mode=DEFAULT_MERGE_MODE,
        source=_source(execution_id),
    )


def _revert(datamart, execution_id: int, by: int, chunk: int) -> None:
    rows = chunk_rows(ProfileChange.objects.filter(execution_id=execution_id).order_by("id"))
    for start in range(0, len(rows), chunk):
        changes_revert(
            datamart=datamart,
            chunk=rows[start : start + chunk],
            first_line=start + 1,
            reverted_ids=frozenset({execution_id, by}),
            since_id=rows[0][0],
            force=False,
            source=_source(by),
        )


def _profiles(datamart) -> dict:
    return {key: typed(value) for key, value in snapshot(datamart.pk)["profiles"].items()}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(before=batches(), batch=batches(), chunk=st.integers(1, 5))
def test_a_reverted_batch_leaves_the_profiles_of_before_and_its_revert_reverted_gives_it_back(
    datamart, crm_compartment, before, batch, chunk
):
    with transaction.atomic():
        _apply(datamart, before, 1)
        earlier = _profiles(datamart)
        _apply(datamart, batch, 2)
        applied = _profiles(datamart)
        _revert(datamart, 2, by=3, chunk=chunk)
        assert _profiles(datamart) == earlier
        _revert(datamart, 3, by=4, chunk=chunk)
        assert _profiles(datamart) == applied
        transaction.set_rollback(True)


def _row(action: str, keys: list[str], previous: dict) -> ChangeRow:
    return ChangeRow(1, None, 1, None, action, keys, previous, 1)  # type: ignore[arg-type]


def test_properties_before_undoes_rows_newest_first():
    rows_newest_first = [
        _row("updated", ["x", "y"], {"x": 2}),  # x was 2, y was absent
        _row("deleted", ["x"], {"x": 1}),  # before: deleted with x = 1... then recreated
        _row("created", ["x"], {}),
    ]
    assert properties_before({"x": 3, "y": 0}, rows_newest_first[:1]) == {"x": 2}
    assert properties_before(None, rows_newest_first[1:2]) == {"x": 1}
    assert properties_before({"x": 3, "y": 0}, rows_newest_first) is None
