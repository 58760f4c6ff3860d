"""Editing a profile: validated like the API, saved through the services, never silently over
another staff member's save."""

from __future__ import annotations

import json

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages

from profiles.admin.forms import js_rounding_undone
from profiles.admin.user_profiles import NOTHING_CHANGED
from profiles.errors import ProfileError
from profiles.models import ProfileChange, UserAccount, UserPoint, UserProfile
from profiles.validation import PropertyError, validate_custom_properties

PROFILES = "/admin/profiles/userprofile/"


@pytest.fixture
def profile(datamart, make_profile):
    return make_profile(datamart, "c987", {"firstname": "David", "nl": {"subscribed": True}})


def change(client, profile, properties, *, loaded=None):
    """Posts the change form as the browser does: the editor's JSON and the hidden version."""
    form = client.get(f"{PROFILES}{profile.pk}/change/").context["adminform"].form
    return client.post(
        f"{PROFILES}{profile.pk}/change/",
        {
            "properties": properties if isinstance(properties, str) else json.dumps(properties),
            "loaded_last_modified_ts": loaded or form.initial["loaded_last_modified_ts"],
        },
    )


def shown_messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_saving_replaces_the_properties_and_records_the_staff_member(profile, alice, login):
    response = change(login(alice), profile, {"firstname": "David", "nl": {"subscribed": False}})
    assert response.status_code == 302
    stored = UserProfile.objects.get(pk=profile.pk)
    assert stored.properties == {"firstname": "David", "nl": {"subscribed": False}}
    assert stored.last_modified_ts > profile.last_modified_ts
    latest = ProfileChange.objects.filter(profile_id=profile.pk).first()
    assert (latest.source, latest.user, latest.action, latest.changed_keys) == (
        "admin",
        alice,
        "updated",
        ["nl"],
    )


def test_saving_without_a_change_keeps_last_modified_ts(profile, alice, login):
    response = change(login(alice), profile, profile.properties)
    assert response.status_code == 302
    assert UserProfile.objects.get(pk=profile.pk).last_modified_ts == profile.last_modified_ts
    assert ProfileChange.objects.filter(profile_id=profile.pk).count() == 1  # the creation
    assert any("Nothing changed" in message for message in shown_messages(response))


@pytest.mark.parametrize(
    "properties",
    [{"$secret": 1}, {"＄x": 1}, {"a": {"": 1}}, {"big": 2**70}],
    ids=["reserved-key", "fullwidth-dollar", "empty-nested-key", "int-over-64-bits"],
)
def test_invalid_properties_show_the_validators_message_next_to_the_field(
    profile, alice, login, properties
):
    with pytest.raises(PropertyError) as expected:
        validate_custom_properties(properties)
    response = change(login(alice), profile, properties)
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["properties"] == [expected.value.message]
    page = response.content.decode()
    row = page[page.index('class="form-row errors field-properties"') :]
    assert row.index("errorlist") < row.index("id_properties")
    assert UserProfile.objects.get(pk=profile.pk).properties == profile.properties


def test_text_that_is_not_json_is_an_error_not_a_crash(profile, alice, login):
    response = change(login(alice), profile, "{not json")
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["properties"] == ["Enter a valid JSON."]


def test_system_fields_are_read_only(profile, crm_compartment, alice, login):
    client = login(alice)
    response = client.get(f"{PROFILES}{profile.pk}/change/")
    assert list(response.context["adminform"].form.fields) == [
        "properties",
        "loaded_last_modified_ts",
    ]
    form = response.context["adminform"].form
    client.post(
        f"{PROFILES}{profile.pk}/change/",
        {
            "properties": json.dumps({"firstname": "Eve"}),
            "loaded_last_modified_ts": form.initial["loaded_last_modified_ts"],
            "compartment": crm_compartment.pk,
            "user_account_id": "hijack",
            "last_modified_ts": "2001-01-01T00:00:00Z",
            "creation_ts": "2001-01-01T00:00:00Z",
        },
    )
    stored = UserProfile.objects.get(pk=profile.pk)
    assert (stored.compartment_id, stored.user_account_id, stored.creation_ts) == (
        profile.compartment_id,
        "c987",
        profile.creation_ts,
    )
    assert stored.properties == {"firstname": "Eve"}
    assert "$last_modified_ts" in response.content.decode()


def test_a_second_save_of_the_same_loaded_version_is_refused(profile, alice, make_staff, login):
    carol = make_staff("carol", [profile.datamart])
    alice_client, carol_client = login(alice), login(carol)
    loaded = (
        alice_client.get(f"{PROFILES}{profile.pk}/change/")
        .context["adminform"]
        .form.initial["loaded_last_modified_ts"]
    )
    assert change(carol_client, profile, {"firstname": "Carol's"}, loaded=loaded).status_code == 302
    response = change(alice_client, profile, {"firstname": "Alice's"}, loaded=loaded)
    assert response.status_code == 200
    errors = response.context["adminform"].form.non_field_errors()
    assert len(errors) == 1
    assert "changed by carol" in errors[0]
    assert "not saved" in errors[0]
    assert UserProfile.objects.get(pk=profile.pk).properties == {"firstname": "Carol's"}


def test_a_refusal_raised_by_the_service_itself_is_shown_not_a_crash(
    profile, alice, login, monkeypatch
):
    def stale(**kwargs):
        raise ProfileError("STALE_PROFILE", "this profile was changed by someone else")

    monkeypatch.setattr("profiles.admin.user_profiles.profile_upsert", stale)
    response = change(login(alice), profile, {"firstname": "Late"})
    assert response.status_code == 302
    assert "changed by someone else" in shown_messages(response)[0]
    assert UserProfile.objects.get(pk=profile.pk).properties == profile.properties


def test_adding_a_profile_with_a_new_account_creates_its_point(datamart, alice, login):
    compartment = datamart.compartments.get()
    response = login(alice).post(
        PROFILES + "add/",
        {
            "compartment": compartment.pk,
            "user_account_id": "new-42",
            "point": "",
            "properties": json.dumps({"firstname": "Nina"}),
        },
    )
    assert response.status_code == 302
    profile = UserProfile.objects.get(user_account_id="new-42")
    assert profile.properties == {"firstname": "Nina"}
    assert UserAccount.objects.get(user_account_id="new-42").user_point_id == profile.user_point_id
    assert ProfileChange.objects.get(profile_id=profile.pk).user == alice


def test_adding_a_profile_to_an_existing_point(profile, crm_compartment, alice, login):
    response = login(alice).post(
        PROFILES + "add/",
        {
            "compartment": crm_compartment.pk,
            "user_account_id": "",
            "point": str(profile.user_point_id),
            "properties": "{}",
        },
    )
    assert response.status_code == 302
    added = UserProfile.objects.get(compartment=crm_compartment)
    assert (added.user_point_id, added.user_account_id) == (profile.user_point_id, None)
    assert UserPoint.objects.count() == 1


def test_adding_a_profile_that_exists_is_refused(profile, alice, login):
    response = login(alice).post(
        PROFILES + "add/",
        {
            "compartment": profile.compartment_id,
            "user_account_id": "c987",
            "point": "",
            "properties": "{}",
        },
    )
    assert response.status_code == 200
    assert "already has a profile" in str(response.context["adminform"].form.non_field_errors())
    assert UserProfile.objects.get(pk=profile.pk).properties == profile.properties


def test_adding_a_profile_to_a_point_of_another_datamart_is_refused(
    datamart, other_datamart, make_profile, alice, login
):
    foreign = make_profile(other_datamart, "x", {})
    response = login(alice).post(
        PROFILES + "add/",
        {
            "compartment": datamart.compartments.get().pk,
            "user_account_id": "",
            "point": str(foreign.user_point_id),
            "properties": "{}",
        },
    )
    assert response.status_code == 200
    assert "point" in response.context["adminform"].form.errors


def test_deleting_a_profile_is_recorded_in_the_points_history(profile, alice, login):
    client = login(alice)
    response = client.post(f"{PROFILES}{profile.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not UserProfile.objects.filter(pk=profile.pk).exists()
    deleted = ProfileChange.objects.filter(profile_id=profile.pk).first()
    assert (deleted.action, deleted.user) == ("deleted", alice)


def test_deleting_more_profiles_at_once_than_the_limit_is_refused(
    datamart, make_profile, alice, login, monkeypatch
):
    monkeypatch.setattr("profiles.admin.scoping.BULK_DELETE_LIMIT", 2)
    profiles = [make_profile(datamart, f"bulk-{number}", {}) for number in range(3)]
    response = login(alice).post(
        PROFILES,
        {
            "action": "delete_selected",
            "_selected_action": [profile.pk for profile in profiles],
            "post": "yes",
        },
    )
    assert (
        "more than 2 user profiles are selected: delete that many with an import"
        in response.content.decode()
    )
    assert UserProfile.objects.count() == 3


def test_save_and_continue_without_a_change_stays_on_the_page_and_says_so(profile, alice, login):
    client = login(alice)
    url = f"{PROFILES}{profile.pk}/change/"
    form = client.get(url).context["adminform"].form
    response = client.post(
        url,
        {
            "properties": json.dumps(profile.properties),
            "loaded_last_modified_ts": form.initial["loaded_last_modified_ts"],
            "_continue": "1",
        },
    )
    assert (response.status_code, response["Location"]) == (302, url)
    assert shown_messages(response) == [NOTHING_CHANGED]
    assert UserProfile.objects.get(pk=profile.pk).last_modified_ts == profile.last_modified_ts


def test_a_saved_change_is_announced_as_django_does(profile, alice, login):
    response = change(login(alice), profile, {"firstname": "Dave"})
    assert response["Location"] == PROFILES
    assert "was changed successfully" in shown_messages(response)[0]


def test_an_added_profile_is_the_one_logged_and_linked(datamart, alice, login):
    response = login(alice).post(
        PROFILES + "add/",
        {
            "compartment": datamart.compartments.get().pk,
            "user_account_id": "new-43",
            "point": "",
            "properties": json.dumps({"firstname": "Nils"}),
        },
    )
    profile = UserProfile.objects.get(user_account_id="new-43")
    assert LogEntry.objects.get().object_id == str(profile.pk)
    assert f"{PROFILES}{profile.pk}/change/" in shown_messages(response)[0]


@pytest.mark.parametrize(
    ("stored", "edited", "saved"),
    [
        # What the browser's doubles send back for integers staff never touched: the stored.
        ({"a": 9007199254740993}, {"a": 9007199254740992}, {"a": 9007199254740993}),
        ({"a": [2**63 - 1]}, {"a": [9223372036854776000]}, {"a": [2**63 - 1]}),
        ({"a": {"b": -(2**63)}}, {"a": {"b": -9.223372036854776e18}}, {"a": {"b": -(2**63)}}),
        # Real edits stand: another number, a small integer, a new key, a list changed.
        ({"a": 9007199254740993}, {"a": 9007199254741000}, {"a": 9007199254741000}),
        ({"a": 5}, {"a": 5.0}, {"a": 5.0}),
        ({"a": 9007199254740993}, {"b": 9007199254740992}, {"b": 9007199254740992}),
        ({"a": [9007199254740993]}, {"a": [9007199254740992, 1]}, {"a": [9007199254740992, 1]}),
        ({"a": 9007199254740993}, {"a": "9007199254740992"}, {"a": "9007199254740992"}),
    ],
)
def test_the_editor_rounding_of_big_integers_is_undone_and_nothing_else(stored, edited, saved):
    assert js_rounding_undone(edited, stored=stored) == saved
