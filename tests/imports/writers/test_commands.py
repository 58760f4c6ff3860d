"""The NDJSON export: one FORCE_REPLACE UPSERT command per profile."""

from __future__ import annotations

import io
import json

from imports.writers import write_ndjson_commands
from profiles.commands import EmailIdentifier


def test_ndjson_export_writes_force_replace_upserts():
    out = io.BytesIO()
    count = write_ndjson_commands(
        [
            {"$compartment_id": 1606, "$user_account_id": "c1", "a": 1},
            (EmailIdentifier("h"), {"b": 2}),
        ],
        out,
    )
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert count == 2
    assert lines == [
        {
            "operation": "UPSERT",
            "update_strategy": "FORCE_REPLACE",
            "compartment_id": 1606,
            "user_account_id": "c1",
            "user_profile": {"$compartment_id": 1606, "$user_account_id": "c1", "a": 1},
        },
        {
            "operation": "UPSERT",
            "update_strategy": "FORCE_REPLACE",
            "email_hash": "h",
            "user_profile": {"b": 2},
        },
    ]
