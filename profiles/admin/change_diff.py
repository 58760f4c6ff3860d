"""A change's values before → after, key by key, as pretty JSON with the lines that differ
marked: what a change's page shows (profiles.admin.history)."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DiffLine:
    text: str
    changed: bool


@dataclass(frozen=True)
class KeyChange:
    """One changed key: its lines before and after (None: the key was absent)."""

    key: str
    before: list[DiffLine] | None
    after: list[DiffLine] | None


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def key_changes(
    *, keys: list[str], before: dict[str, Any], after: dict[str, Any]
) -> list[KeyChange]:
    """Each key's pretty JSON before and after, lines not shared by both sides marked changed
    (a key absent on one side: every line of the other side is changed)."""
    changes = []
    for key in keys:
        old = pretty_json(before[key]).splitlines() if key in before else None
        new = pretty_json(after[key]).splitlines() if key in after else None
        kept_old: set[int] = set()
        kept_new: set[int] = set()
        if old is not None and new is not None:
            # A comma a line gains or loses when a neighbour goes does not change the line.
            matcher = difflib.SequenceMatcher(
                a=[line.removesuffix(",") for line in old],
                b=[line.removesuffix(",") for line in new],
                autojunk=False,
            )
            for block in matcher.get_matching_blocks():
                kept_old.update(range(block.a, block.a + block.size))
                kept_new.update(range(block.b, block.b + block.size))
        changes.append(
            KeyChange(
                key=key,
                before=None
                if old is None
                else [DiffLine(text, i not in kept_old) for i, text in enumerate(old)],
                after=None
                if new is None
                else [DiffLine(text, i not in kept_new) for i, text in enumerate(new)],
            )
        )
    return changes
