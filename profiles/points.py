"""User points by identifier (SPEC §2 rule 1): found in bulk, and created with their identifier.

A point is named by an identifier key: ("account", compartment pk, user_account_id),
("email", email_hash), ("agent", user_agent_id), or ("point", user point id) for a point named
by its id (API and admin writes), which is never created.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Q
from uuid6 import uuid7

from profiles.bulk import BulkWriter
from profiles.compartments import DatamartCompartments
from profiles.errors import ConcurrentWrite
from profiles.identifiers import (
    AccountIdentifier,
    EmailIdentifier,
    Identifier,
    UserAgentIdentifier,
)
from profiles.models import Datamart, UserAccount, UserAgent, UserEmail, UserPoint

IdentifierKey = tuple[str, Any] | tuple[str, int, str]


def identifier_key(
    identifier: Identifier | uuid.UUID, compartments: DatamartCompartments
) -> IdentifierKey:
    """The lookup key of an identifier; an account's unknown compartment is an error."""
    match identifier:
        case uuid.UUID():
            return ("point", identifier)
        case AccountIdentifier():
            compartment = compartments.get(identifier.compartment_id, field="compartment_id")
            return ("account", compartment.pk, identifier.user_account_id)
        case EmailIdentifier():
            return ("email", identifier.email_hash)
        case UserAgentIdentifier():
            return ("agent", identifier.user_agent_id)
    raise TypeError(f"not an identifier: {identifier!r}")


def points_find(datamart: Datamart, keys: Iterable[IdentifierKey]) -> dict[IdentifierKey, Any]:
    """One query per identifier kind: the user point id of each key that exists."""
    accounts: dict[int, list[str]] = {}
    by_kind: dict[str, list[Any]] = {"email": [], "agent": [], "point": []}
    for key in keys:
        if key[0] == "account":
            accounts.setdefault(key[1], []).append(key[2])
        else:
            by_kind[key[0]].append(key[1])
    found: dict[IdentifierKey, Any] = {}
    if accounts:
        condition = Q()
        for compartment_pk, account_ids in accounts.items():
            condition |= Q(compartment_id=compartment_pk, user_account_id__in=account_ids)
        for compartment_pk, account_id, point_id in UserAccount.objects.filter(
            condition
        ).values_list("compartment_id", "user_account_id", "user_point_id"):
            found[("account", compartment_pk, account_id)] = point_id
    if by_kind["email"]:
        for email_hash, point_id in UserEmail.objects.filter(
            datamart=datamart, email_hash__in=by_kind["email"]
        ).values_list("email_hash", "user_point_id"):
            found[("email", email_hash)] = point_id
    if by_kind["agent"]:
        for agent_id, point_id in UserAgent.objects.filter(
            datamart=datamart, user_agent_id__in=by_kind["agent"]
        ).values_list("user_agent_id", "user_point_id"):
            found[("agent", agent_id)] = point_id
    if by_kind["point"]:
        for point_id in UserPoint.objects.filter(
            datamart=datamart, pk__in=by_kind["point"]
        ).values_list("id", flat=True):
            found[("point", point_id)] = point_id
    return found


def points_create(
    writer: BulkWriter, datamart: Datamart, keys: list[IdentifierKey], now: datetime
) -> dict[IdentifierKey, Any]:
    """A new user point per identifier key, with its identifier; returns each key's point.

    Identifiers go in with ON CONFLICT DO NOTHING and are read back, so a writer that
    created the same identifier meanwhile wins and both use its point; the points created
    here for nothing are deleted.
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
    found = points_find(datamart, keys)
    orphans = [point for key, point in points.items() if found.get(key) != point]
    if orphans:
        UserPoint.objects.filter(pk__in=orphans).delete()
    if len(found) != len(keys):
        raise ConcurrentWrite("an identifier vanished while it was being created")
    return found
