"""Every export re-imports to the same profiles (hypothesis), in each format."""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imports.readers import FileFormat
from imports.writers import write_flat_export, write_ndjson_commands
from profiles.commands import (
    AccountIdentifier,
    EmailIdentifier,
    LineError,
    Operation,
    ProfileCommand,
    UserAgentIdentifier,
)
from tests.imports.writers.helpers import export_flat, read_bytes, typed

TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)  # what a profile may hold (64 bits)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
    | st.sampled_from(
        ["=1+1", "-", "@x", "", " ", "\r\n", "a\rb", "#N/A", "'quoted", "1606", "true"]
    )
)
KEYS = TEXT | st.sampled_from(
    ["a", "b", "a.b", "x:int", "operation", "email_hash", "_line", "_error", "[x]", "$k"]
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3),
    max_leaves=12,
)
PROFILES = st.builds(
    lambda fixed, free: {**fixed, **free},
    st.fixed_dictionaries(
        {},
        optional={"$compartment_id": st.integers(0, 10**6), "$user_account_id": TEXT.filter(bool)},
    ),
    st.dictionaries(KEYS, VALUES, max_size=6),
)


def identifiers(text):
    ids = text.filter(lambda value: 0 < len(value) <= 255)
    return (
        st.builds(AccountIdentifier, ids, st.none() | st.integers(0, 10**6))
        | st.builds(EmailIdentifier, ids)
        | st.builds(UserAgentIdentifier, ids)
    )


ITEMS = st.lists(st.tuples(identifiers(TEXT), PROFILES), min_size=1, max_size=5)
# XLSX cannot hold control characters in a text cell, nor keep a CR.
XLSX_SAFE_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(["\n", "\t"]), max_size=12
)
XLSX_ITEMS = st.lists(st.tuples(identifiers(XLSX_SAFE_TEXT), PROFILES), min_size=1, max_size=4)


def assert_reimported(records, items):
    assert all(isinstance(r, ProfileCommand) for r in records), [
        r for r in records if isinstance(r, LineError)
    ]
    assert [(r.operation, r.update_strategy) for r in records] == [
        (Operation.UPSERT, "FORCE_REPLACE")
    ] * len(items)
    assert [(r.identifier, typed(r.user_profile)) for r in records] == [
        (identifier, typed(profile)) for identifier, profile in items
    ]


ROUND_TRIP = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@ROUND_TRIP
@given(ITEMS)
def test_csv_export_reimports_to_the_same_profiles(items):
    data = export_flat(items, FileFormat.CSV)
    assert_reimported(read_bytes(data, FileFormat.CSV), items)  # delimiter sniffed


@ROUND_TRIP
@given(ITEMS, st.sampled_from([";", "\t", "|"]))
def test_csv_export_with_another_delimiter_reimports(items, delimiter):
    out = io.BytesIO()
    write_flat_export(items, FileFormat.CSV, out, delimiter=delimiter)
    assert_reimported(read_bytes(out.getvalue(), FileFormat.CSV), items)


@ROUND_TRIP
@given(ITEMS)
def test_ndjson_export_reimports_to_the_same_profiles(items):
    out = io.BytesIO()
    write_ndjson_commands(items, out)
    assert_reimported(read_bytes(out.getvalue(), FileFormat.NDJSON), items)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(XLSX_ITEMS)
def test_xlsx_export_reimports_to_the_same_profiles(items):
    data = export_flat(items, FileFormat.XLSX)
    assert_reimported(read_bytes(data, FileFormat.XLSX), items)
