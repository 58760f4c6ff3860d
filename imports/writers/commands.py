"""NDJSON export: one FORCE_REPLACE UPSERT import command per profile (SPEC.md §3).

Each command names the item's identifier and holds the profile object as
`user_profile`, so the file re-imports to the same profiles. A JSON array export
is the same commands inside `[` `]` (`imports.resources.JsonArrayOut`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import BinaryIO

from imports.writers.items import ExportItem, export_item
from profiles.commands import Operation, identifier_fields
from profiles.strict_json import compact_json


def write_ndjson_commands(items: Iterable[ExportItem], out: BinaryIO) -> int:
    """One FORCE_REPLACE UPSERT command per profile (SPEC §3); returns the count."""
    count = 0
    for item in items:
        identifier, profile = export_item(item)
        command = {
            "operation": Operation.UPSERT.value,
            "update_strategy": "FORCE_REPLACE",
            **identifier_fields(identifier),
            "user_profile": profile,
        }
        out.write(compact_json(command).encode("utf-8") + b"\n")
        count += 1
    return count
