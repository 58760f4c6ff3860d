"""Signals the domain sends to the apps built on it, which connect to them in their AppConfig:
`profiles` never imports them (STYLE.md), so this is how they learn of a domain event."""

from __future__ import annotations

from django.dispatch import Signal

# Sent by `profiles.services.user_point_erase` inside its transaction, after the point is gone:
# a receiver removes the person's values from what it stores, and a failing receiver rolls the
# erasure back. Arguments: `datamart_id` (int), `user_point_id` (the erased point's UUID),
# `identifiers` (tuple of `profiles.identifiers.Identifier`, accounts with their compartment
# id). A receiver may return how many of its records it scrubbed (an int): the service adds
# those up in its result.
user_point_erased = Signal()
