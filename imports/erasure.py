"""Erasing a person (SPEC §7) reaches the stored line errors: `profiles` sends
`profiles.signals.user_point_erased` and this app, which depends on `profiles` and never the
other way, connects `line_errors_erase` to it in `ImportsConfig.ready`. It runs in the
erasure's transaction, so the person is erased everywhere or nowhere.

The failed-lines file is written from these rows on each download, so it no longer shows
them either: a scrubbed line comes back as `_line` and `_error` alone (JSON), or as empty
cells with `_line` and `_error` (CSV, XLSX).
"""

from __future__ import annotations

import uuid

from django.db.models import CharField, Value
from django.db.models.functions import Cast, Concat

from imports.models import ExecutionError
from profiles.identifiers import AccountIdentifier, Identifier, identifier_label

ERASED_MESSAGE = ": this line named a person since erased; its content was removed"


def erased_labels(user_point_id: uuid.UUID, identifiers: tuple[Identifier, ...]) -> set[str]:
    """Every form a line error's `identifier` may have given the person's identifiers: an
    account also alone, as a line of the default compartment names it (the default may have
    moved since, so any of them)."""
    labels = {identifier_label(user_point_id)}
    for identifier in identifiers:
        labels.add(identifier_label(identifier))
        if isinstance(identifier, AccountIdentifier):
            labels.add(identifier_label(AccountIdentifier(identifier.user_account_id)))
    return labels


def line_errors_erase(
    sender, *, datamart_id: int, user_point_id: uuid.UUID, identifiers, **kwargs
) -> int:
    """Blank the identifier and the source record of the datamart's line errors that named the
    person, and replace their message (it may quote a value); line, code and field stay.
    Returns how many rows were scrubbed."""
    return ExecutionError.objects.filter(
        execution__datamart_id=datamart_id,
        identifier__in=erased_labels(user_point_id, tuple(identifiers)),
    ).update(
        identifier="",
        raw=None,
        message=Concat(
            Value("line "),
            Cast("line", CharField()),
            Value(ERASED_MESSAGE),
            output_field=CharField(),
        ),
    )
