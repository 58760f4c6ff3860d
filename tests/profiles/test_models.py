"""The constraints of SPEC §1 live in the database, not only in forms."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from profiles.merge import DEFAULT_MERGE_MODE
from profiles.models import (
    Compartment,
    ProfileChange,
    UserAccount,
    UserEmail,
    UserPoint,
    UserProfile,
)
from profiles.services import compartment_create, profile_delete, profile_upsert


def test_second_default_compartment_is_refused_by_the_database(datamart):
    with pytest.raises(IntegrityError), transaction.atomic():
        Compartment.objects.create(datamart=datamart, compartment_id=7, name="x", is_default=True)


def test_compartment_id_is_unique_in_its_datamart_only(datamart, other_datamart):
    compartment_create(datamart=other_datamart, compartment_id=1606, name="there")
    compartment_create(datamart=datamart, compartment_id=1606, name="here")
    with pytest.raises(IntegrityError), transaction.atomic():
        Compartment.objects.create(datamart=datamart, compartment_id=1606, name="again")


def test_email_hash_is_unique_in_the_datamart_but_not_across(datamart, other_datamart):
    for dm in (datamart, other_datamart):
        point = UserPoint.objects.create(datamart=dm)
        UserEmail.objects.create(datamart=dm, user_point=point, email_hash="h1")
    point = UserPoint.objects.create(datamart=datamart)
    with pytest.raises(IntegrityError), transaction.atomic():
        UserEmail.objects.create(datamart=datamart, user_point=point, email_hash="h1")


def test_account_is_unique_in_its_compartment(datamart, crm_compartment):
    for _ in range(2):
        point = UserPoint.objects.create(datamart=datamart)
    UserAccount.objects.create(
        datamart=datamart, user_point=point, compartment=crm_compartment, user_account_id="a"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        UserAccount.objects.create(
            datamart=datamart,
            user_point=UserPoint.objects.create(datamart=datamart),
            compartment=crm_compartment,
            user_account_id="a",
        )


@pytest.mark.parametrize("account", [None, "acc-1"])
def test_a_point_holds_one_profile_per_compartment_and_account(datamart, crm_compartment, account):
    point = UserPoint.objects.create(datamart=datamart)
    fields = {"datamart": datamart, "user_point": point, "compartment": crm_compartment}
    UserProfile.objects.create(**fields, user_account_id=account)
    with pytest.raises(IntegrityError), transaction.atomic():
        UserProfile.objects.create(**fields, user_account_id=account)


def test_a_point_holds_several_profiles_across_compartments_and_accounts(datamart, crm_compartment):
    point = UserPoint.objects.create(datamart=datamart)
    default = Compartment.objects.get(datamart=datamart, is_default=True)
    for compartment in (default, crm_compartment):
        for account in (None, "a", "b"):
            UserProfile.objects.create(
                datamart=datamart,
                user_point=point,
                compartment=compartment,
                user_account_id=account,
            )
    assert point.profiles.count() == 6


def test_user_point_ids_follow_creation_order(datamart):
    """UUIDv7: the points an import creates append to the indexes on point ids."""
    points = [UserPoint.objects.create(datamart=datamart) for _ in range(50)]
    assert [point.id.version for point in points] == [7] * 50
    assert sorted(points, key=lambda point: point.id) == points


def test_deleting_a_point_deletes_its_identifiers_and_profiles(datamart, crm_compartment):
    point = UserPoint.objects.create(datamart=datamart)
    UserEmail.objects.create(datamart=datamart, user_point=point, email_hash="h")
    UserProfile.objects.create(datamart=datamart, user_point=point, compartment=crm_compartment)
    point.delete()
    assert not UserEmail.objects.exists()
    assert not UserProfile.objects.exists()


def test_deleting_a_point_or_a_datamart_deletes_its_history(datamart, other_datamart):
    """History rows carry no database constraint (imports write many): Django cascades."""

    def profile_written(owner):
        return profile_upsert(
            user_point=UserPoint.objects.create(datamart=owner),
            compartment=owner.compartments.get(),
            user_account_id="a",
            properties={"n": 1},
            mode=DEFAULT_MERGE_MODE,
        ).profile

    first, second, elsewhere = (
        profile_written(datamart),
        profile_written(datamart),
        profile_written(other_datamart),
    )
    first.user_point.delete()
    assert set(ProfileChange.objects.values_list("profile_id", flat=True)) == {
        second.pk,
        elsewhere.pk,
    }
    profile_delete(
        user_point=second.user_point, compartment=second.compartment, user_account_id="a"
    )
    assert ProfileChange.objects.filter(profile_id=second.pk).count() == 2  # created, deleted
    datamart.delete()
    assert list(ProfileChange.objects.values_list("profile_id", flat=True)) == [elsewhere.pk]


def test_profile_renders_system_keys_in_epoch_milliseconds(datamart, crm_compartment):
    point = UserPoint.objects.create(datamart=datamart)
    profile = UserProfile.objects.create(
        datamart=datamart,
        user_point=point,
        compartment=crm_compartment,
        user_account_id="a",
        properties={"firstname": "David"},
    )
    rendered = profile.as_client_object()
    assert rendered["$compartment_id"] == 1606
    assert rendered["$user_account_id"] == "a"
    assert isinstance(rendered["$creation_ts"], int)
    assert abs(rendered["$creation_ts"] - profile.creation_ts.timestamp() * 1000) < 1
    assert rendered["firstname"] == "David"
