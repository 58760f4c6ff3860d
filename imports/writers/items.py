"""What an export is made of: one item per profile.

An export item is a profile object as clients see it, identified by its own
`$compartment_id`/`$user_account_id`, or an `(identifier, profile)` pair,
which anonymous profiles need. Every key given is written (`$creation_ts`
included if the caller leaves it in: the import ignores it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from profiles.commands import AccountIdentifier, Identifier

ExportItem = Mapping[str, Any] | tuple[Identifier, Mapping[str, Any]]


def export_item(item: ExportItem) -> tuple[Identifier, Mapping[str, Any]]:
    """(identifier, profile); a bare profile is identified by its own account."""
    if isinstance(item, tuple):
        identifier, profile = item
        return identifier, profile
    account = item.get("$user_account_id")
    if account is None:
        raise ValueError(
            "an anonymous profile has no identifier of its own: pass (identifier, profile)"
        )
    compartment = item.get("$compartment_id")
    return AccountIdentifier(
        user_account_id=str(account),
        compartment_id=None if compartment is None else int(compartment),
    ), item
