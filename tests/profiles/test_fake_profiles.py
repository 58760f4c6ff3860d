"""The fake profile generator: points with account identifiers and profiles, in bulk."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from profiles.fake_profiles import fake_properties
from profiles.identifiers import AccountIdentifier, EmailIdentifier
from profiles.models import UserAccount, UserAgent, UserEmail, UserPoint, UserProfile
from profiles.selectors import user_point_find


def test_command_generates_points_identifiers_and_profiles(datamart, crm_compartment, capsys):
    call_command(
        "generate_fake_profiles", "--datamart", "1", "--count", "25", "--batch", "10", "--tag", "t1"
    )
    assert "created 25 profiles in datamart 1" in capsys.readouterr().out
    assert UserPoint.objects.filter(datamart=datamart).count() == 25
    assert UserAccount.objects.filter(datamart=datamart).count() == 25
    assert (UserEmail.objects.count(), UserAgent.objects.count()) == (3, 2)
    profiles = UserProfile.objects.filter(datamart=datamart)
    assert profiles.count() == 25
    assert set(profiles.values_list("compartment__compartment_id", flat=True)) == {1, 1606}


def test_generated_profiles_are_reachable_by_their_identifiers(datamart, crm_compartment):
    call_command("generate_fake_profiles", "--datamart", "1", "--count", "12", "--tag", "t2")
    account = UserAccount.objects.get(user_account_id="acct-t2-0000000007")
    point = user_point_find(
        datamart=datamart,
        identifier=AccountIdentifier(account.user_account_id, account.compartment.compartment_id),
    )
    profile = UserProfile.objects.get(user_point=point)
    assert profile.user_account_id == account.user_account_id
    assert profile.properties == fake_properties(7)
    assert profile.creation_ts <= profile.last_modified_ts
    email = UserEmail.objects.get(user_point__profiles__user_account_id="acct-t2-0000000010")
    assert user_point_find(datamart=datamart, identifier=EmailIdentifier(email.email_hash))


def test_two_runs_do_not_collide(datamart):
    for _ in range(2):
        call_command("generate_fake_profiles", "--datamart", "1", "--count", "5")
    assert UserProfile.objects.count() == 10


def test_an_unknown_datamart_is_an_error(db):
    with pytest.raises(CommandError, match="datamart 9 does not exist"):
        call_command("generate_fake_profiles", "--datamart", "9", "--count", "5")
