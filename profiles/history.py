"""Who changed a profile, and how: the history row every write records (rules.md#history)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from profiles.merge import json_equal
from profiles.models import ProfileChange


@dataclass(frozen=True)
class ChangeSource:
    """Who writes: recorded in each profile's history."""

    kind: str = ProfileChange.Source.SYSTEM
    user_id: int | None = None
    api_token_id: int | None = None
    execution_id: int | None = None


SYSTEM_SOURCE = ChangeSource()

# The columns of a history row, in the order `history_row` gives them.
HISTORY_FIELDS = [
    "datamart",
    "user_point",
    "profile_id",
    "compartment_id",
    "user_account_id",
    "action",
    "changed_keys",
    "previous_values",
    "source",
    "user",
    "api_token",
    "execution_id",
    "ts",
]


def changed_keys(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The top-level keys whose value differs between two versions of the properties."""
    keys = before.keys() | after.keys()
    return sorted(
        key
        for key in keys
        if key not in before or key not in after or not json_equal(before[key], after[key])
    )


def history_row(
    *,
    datamart_id: int,
    user_point_id: Any,
    profile_id: int,
    compartment_id: int,
    user_account_id: str | None,
    action: str,
    keys_json: str,
    previous_json: str,
    source: ChangeSource,
    stamp: Any,
) -> tuple:
    """One history row as `HISTORY_FIELDS` values, for a bulk insert."""
    return (
        datamart_id,
        user_point_id,
        profile_id,
        compartment_id,
        user_account_id,
        action,
        keys_json,
        previous_json,
        source.kind,
        source.user_id,
        source.api_token_id,
        source.execution_id,
        stamp,
    )
