"""A change's values after (rules.md#history): read from the next changes' values before, or
the profile as it is now; held against the profile as it stood after each write."""

from __future__ import annotations

from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from profiles.identifiers import AccountIdentifier
from profiles.merge import MergeMode, Strategy
from profiles.models import Compartment, ProfileChange, UserProfile
from profiles.selectors import profile_change_values_after
from profiles.services import profile_delete, profile_upsert, user_point_resolve
from tests.factories import profile_make

KEYS = st.sampled_from(["a", "b", "c"])
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["x", "y"]),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(KEYS, inner, max_size=2),
    max_leaves=4,
)
MODES = st.sampled_from(
    [
        MergeMode(Strategy.FORCE_REPLACE),
        MergeMode(Strategy.PARTIAL_UPDATE, merge_objects=True),
        MergeMode(Strategy.PARTIAL_UPDATE, merge_objects=False),
        MergeMode(Strategy.PARTIAL_DELETE),
    ]
)
WRITES = st.lists(
    st.one_of(st.just(None), st.tuples(MODES, st.dictionaries(KEYS, VALUES, max_size=3))),
    min_size=1,
    max_size=8,
)


def stored_properties(point) -> dict | None:
    profile = UserProfile.objects.filter(user_point=point).first()
    return None if profile is None else profile.properties


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(writes=WRITES)
def test_each_change_reads_the_values_the_profile_held_right_after_it(datamart, writes):
    compartment = Compartment.objects.get(datamart=datamart, compartment_id=1)
    with transaction.atomic():
        point, _ = user_point_resolve(
            datamart=datamart, identifier=AccountIdentifier("acc", 1), create=True
        )
        # The properties right after each recorded change, in the order they were recorded.
        states_after: list[dict | None] = []
        for write in writes:
            last_id = ProfileChange.objects.order_by("-id").values_list("id", flat=True).first()
            if write is None:
                profile_delete(user_point=point, compartment=compartment, user_account_id="acc")
            else:
                mode, properties = write
                profile_upsert(
                    user_point=point,
                    compartment=compartment,
                    user_account_id="acc",
                    properties=properties,
                    mode=mode,
                )
            recorded = ProfileChange.objects.filter(id__gt=last_id or 0).count()
            assert recorded <= 1
            states_after += [stored_properties(point)] * recorded
        changes = list(ProfileChange.objects.filter(user_point=point).order_by("id"))
        assert len(changes) == len(states_after)
        for change, after in zip(changes, states_after, strict=True):
            expected = (
                {}
                if after is None
                else {key: after[key] for key in change.changed_keys if key in after}
            )
            assert profile_change_values_after(change=change) == expected, change.action
        transaction.set_rollback(True)


def test_a_deleted_profiles_change_reads_its_values_after_from_the_deletion(datamart):
    profile = profile_make(datamart, "c1", {"city": "Paris", "age": 30})
    profile_upsert(
        user_point=profile.user_point,
        compartment=profile.compartment,
        user_account_id="c1",
        properties={"city": "Lyon"},
        mode=MergeMode(Strategy.PARTIAL_UPDATE),
    )
    profile_delete(
        user_point=profile.user_point, compartment=profile.compartment, user_account_id="c1"
    )
    created, updated, deleted = ProfileChange.objects.filter(profile_id=profile.pk).order_by("id")
    assert profile_change_values_after(change=created) == {"age": 30, "city": "Paris"}
    assert (updated.previous_values, profile_change_values_after(change=updated)) == (
        {"city": "Paris"},
        {"city": "Lyon"},
    )
    assert profile_change_values_after(change=deleted) == {}
