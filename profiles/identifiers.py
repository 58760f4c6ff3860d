"""The three kinds of identifier that name a user point (SPEC §1), as plain values."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class AccountIdentifier:
    user_account_id: str
    compartment_id: int | None = None  # None: the datamart's default compartment


@dataclass(frozen=True)
class EmailIdentifier:
    email_hash: str


@dataclass(frozen=True)
class UserAgentIdentifier:
    user_agent_id: str


Identifier = AccountIdentifier | EmailIdentifier | UserAgentIdentifier

# A user point named by its id, or by one of its identifiers (the REST API's selectors).
UserPointSelector = uuid.UUID | Identifier


def identifier_label(identifier: Identifier | uuid.UUID) -> str:
    """The identifier (or user point id) in the REST selector's form, for error reports."""
    match identifier:
        case uuid.UUID():
            return f"user_point_id={identifier}"
        case AccountIdentifier(user_account_id=account, compartment_id=None):
            return f"user_account_id={account}"
        case AccountIdentifier(user_account_id=account, compartment_id=compartment):
            return f"compartment_id={compartment},user_account_id={account}"
        case EmailIdentifier(email_hash=email_hash):
            return f"email_hash={email_hash}"
        case UserAgentIdentifier(user_agent_id=agent):
            return f"user_agent_id={agent}"
    raise TypeError(f"not an identifier: {identifier!r}")
