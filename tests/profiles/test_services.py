"""Services: resolving points, applying commands, timestamps, and concurrency."""

from __future__ import annotations

import time

import pytest

from profiles.errors import ProfileError
from profiles.identifiers import AccountIdentifier, EmailIdentifier, UserAgentIdentifier
from profiles.merge import DEFAULT_MERGE_MODE, MergeMode, Strategy, json_equal
from profiles.models import Compartment, Datamart, UserPoint, UserProfile
from profiles.services import (
    WriteOutcome,
    compartment_delete,
    compartment_make_default,
    compartment_update,
    datamart_create,
    user_point_resolve,
)
from tests.concurrency import run_at_once
from tests.factories import command_write

FORCE = MergeMode(Strategy.FORCE_REPLACE)
PARTIAL_DELETE = MergeMode(Strategy.PARTIAL_DELETE)


def upsert(datamart, identifier, user_profile, mode=DEFAULT_MERGE_MODE):
    return command_write(datamart, identifier=identifier, user_profile=user_profile, mode=mode)


def delete(datamart, identifier, user_profile=None):
    return command_write(
        datamart, identifier=identifier, user_profile=user_profile, operation="DELETE"
    )


def test_create_datamart_is_idempotent_with_one_default(db):
    for _ in range(2):
        datamart = datamart_create(datamart_id=5, name="Five", default_compartment_id=9)
    assert list(
        Compartment.objects.filter(datamart=datamart).values_list("compartment_id", "is_default")
    ) == [(9, True)]


def test_making_another_compartment_default_swaps_it(datamart, crm_compartment):
    compartment_make_default(compartment=crm_compartment)
    defaults = Compartment.objects.filter(datamart=datamart, is_default=True)
    assert list(defaults.values_list("compartment_id", flat=True)) == [1606]


def test_the_default_compartment_cannot_be_unset_or_deleted(datamart):
    default = Compartment.objects.get(datamart=datamart, is_default=True)
    with pytest.raises(ProfileError) as unset:
        compartment_update(compartment=default, name="x", is_default=False)
    assert unset.value.code == "DEFAULT_COMPARTMENT_REQUIRED"
    with pytest.raises(ProfileError):
        compartment_delete(compartment=default)


@pytest.mark.parametrize(
    "identifier",
    [
        AccountIdentifier("acc", 1606),
        AccountIdentifier("acc"),
        EmailIdentifier("h"),
        UserAgentIdentifier("vec:1"),
    ],
)
def test_unknown_identifier_creates_a_point_once(datamart, crm_compartment, identifier):
    first, created = user_point_resolve(datamart=datamart, identifier=identifier, create=True)
    again, created_again = user_point_resolve(datamart=datamart, identifier=identifier, create=True)
    assert created and not created_again
    assert first == again
    assert UserPoint.objects.count() == 1


def test_identifiers_do_not_cross_datamarts(datamart, other_datamart):
    mine, _ = user_point_resolve(datamart=datamart, identifier=EmailIdentifier("h"), create=True)
    theirs, _ = user_point_resolve(
        datamart=other_datamart, identifier=EmailIdentifier("h"), create=False
    )
    assert mine is not None and theirs is None


def test_unknown_compartment_is_an_error_never_created(datamart):
    with pytest.raises(ProfileError) as error:
        upsert(datamart, AccountIdentifier("acc", 4242), {"a": 1})
    assert error.value.code == "UNKNOWN_COMPARTMENT"
    with pytest.raises(ProfileError):
        upsert(datamart, EmailIdentifier("h"), {"$compartment_id": "4242", "a": 1})
    assert not Compartment.objects.filter(compartment_id=4242).exists()
    assert not UserPoint.objects.exists()


def test_profile_address_is_not_inherited_from_the_line_identifier(datamart, crm_compartment):
    write = upsert(datamart, AccountIdentifier("X", 1606), {"firstname": "David"})
    assert write.outcome == WriteOutcome.CREATED
    assert write.profile.compartment.is_default
    assert write.profile.user_account_id is None


def test_profile_address_comes_from_dollar_keys(datamart, crm_compartment):
    write = upsert(
        datamart, EmailIdentifier("h"), {"$compartment_id": "1606", "$user_account_id": "X", "a": 1}
    )
    assert (write.profile.compartment.compartment_id, write.profile.user_account_id) == (1606, "X")
    assert write.profile.properties == {"a": 1}


def test_client_timestamps_are_ignored_and_unchanged_writes_do_not_touch_last_modified(datamart):
    created = upsert(
        datamart, EmailIdentifier("h"), {"$creation_ts": 1, "$last_modified_ts": 2, "a": 1}
    )
    stamp = created.profile.last_modified_ts
    assert created.profile.creation_ts.year > 2000
    time.sleep(0.01)
    again = upsert(datamart, EmailIdentifier("h"), {"a": 1})
    assert again.outcome == WriteOutcome.UNCHANGED
    assert UserProfile.objects.get().last_modified_ts == stamp
    changed = upsert(datamart, EmailIdentifier("h"), {"a": 2})
    assert changed.outcome == WriteOutcome.UPDATED
    assert UserProfile.objects.get().last_modified_ts > stamp


def test_true_replacing_one_is_a_change(datamart):
    upsert(datamart, EmailIdentifier("h"), {"a": 1})
    assert upsert(datamart, EmailIdentifier("h"), {"a": True}).outcome == WriteOutcome.UPDATED
    assert UserProfile.objects.get().properties == {"a": True}


def test_force_replace_keeps_creation_ts(datamart):
    created = upsert(datamart, EmailIdentifier("h"), {"a": 1, "b": 2}).profile
    replaced = upsert(datamart, EmailIdentifier("h"), {"c": 3}, FORCE).profile
    assert replaced.properties == {"c": 3}
    assert replaced.creation_ts == created.creation_ts


def test_partial_delete_of_a_missing_profile_creates_nothing(datamart):
    write = upsert(datamart, EmailIdentifier("h"), {"a": None}, PARTIAL_DELETE)
    assert write.outcome == WriteOutcome.UNCHANGED
    assert not UserProfile.objects.exists()


def test_delete_of_unknown_identifier_is_not_found_and_creates_nothing(datamart):
    assert delete(datamart, EmailIdentifier("nobody")).outcome == WriteOutcome.NOT_FOUND
    assert not UserPoint.objects.exists()


def test_delete_without_profile_through_an_account_deletes_that_accounts_profile(
    datamart, crm_compartment
):
    ident = AccountIdentifier("X", 1606)
    upsert(datamart, ident, {"$compartment_id": 1606, "$user_account_id": "X", "a": 1})
    upsert(datamart, ident, {"anonymous": True})
    assert delete(datamart, ident).outcome == WriteOutcome.DELETED
    remaining = UserProfile.objects.get()
    assert remaining.user_account_id is None and remaining.compartment.is_default
    assert UserPoint.objects.count() == 1  # the point and its identifiers stay


def test_delete_with_profile_addresses_its_dollar_keys(datamart, crm_compartment):
    upsert(datamart, EmailIdentifier("h"), {"$compartment_id": 1606, "a": 1})
    assert delete(datamart, EmailIdentifier("h"), {}).outcome == WriteOutcome.NOT_FOUND
    assert (
        delete(datamart, EmailIdentifier("h"), {"$compartment_id": 1606}).outcome
        == WriteOutcome.DELETED
    )


def test_reserved_keys_are_rejected_with_their_code(datamart):
    with pytest.raises(ProfileError) as error:
        upsert(datamart, EmailIdentifier("h"), {"\uff04x": 1})
    assert error.value.code == "RESERVED_KEY"
    assert not UserPoint.objects.exists()


def _write_concurrently(datamart_id: int, keys: list[str]) -> list[object]:
    def write(key: str) -> None:
        datamart = Datamart.objects.get(id=datamart_id)
        upsert(datamart, EmailIdentifier("shared"), {key: {"v": key}})

    return [outcome for outcome in run_at_once(write, keys) if outcome is not None]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_of_one_profile_lose_nothing_on_postgresql():
    datamart = datamart_create(datamart_id=1, name="Demo", default_compartment_id=1)
    keys = [f"k{i}" for i in range(12)]
    # Twelve real connections create then update the same point and profile at the same time.
    assert _write_concurrently(datamart.id, keys) == []
    assert UserPoint.objects.count() == 1
    assert sorted(UserProfile.objects.get().properties) == sorted(keys)


@pytest.mark.parametrize("value", [1e300, -4.16204692637487e16, 2.0**64])
def test_a_stored_big_float_reads_back_equal_and_can_be_written_again(datamart, value):
    """PostgreSQL's jsonb writes 1e300 without its exponent; it still reads back as a float,
    so a client that sends back what it read is not refused (integers stop at 64 bits)."""
    identifier = EmailIdentifier("h")
    written = upsert(datamart, identifier, {"x": value, "y": 1})
    stored = UserProfile.objects.get(pk=written.profile.pk)
    assert json_equal(stored.properties["x"], value)
    again = upsert(datamart, identifier, dict(stored.properties), mode=FORCE)
    assert again.outcome == WriteOutcome.UNCHANGED
