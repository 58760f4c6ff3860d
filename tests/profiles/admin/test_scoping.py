"""Staff see and change only their datamarts: lists, searches, counts, pages, choices, exports."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import RequestFactory
from import_export.admin import ExportMixin

from profiles.admin.user_profiles import UserProfileAdmin
from profiles.models import UserProfile
from profiles.services import api_token_create, compartment_create

PROFILES = "/admin/profiles/userprofile/"


@pytest.fixture
def two_tenants(datamart, other_datamart, make_profile):
    """One profile in each datamart, with the same account id in both."""
    return (
        make_profile(datamart, "shared-account", {"firstname": "Dana"}),
        make_profile(other_datamart, "shared-account", {"firstname": "Otto"}),
    )


def test_profile_list_shows_only_the_staff_members_datamart(two_tenants, alice, login):
    page = login(alice).get(PROFILES).content.decode()
    assert "Dana" in page
    assert "Otto" not in page
    assert "1 user profile" in page


def test_search_by_account_id_finds_only_the_own_datamarts_profile(two_tenants, alice, login):
    response = login(alice).get(PROFILES, {"q": "shared-account"})
    assert [profile.pk for profile in response.context["cl"].result_list] == [two_tenants[0].pk]


def test_change_page_of_another_datamarts_profile_answers_404(two_tenants, alice, login):
    client = login(alice)
    foreign = two_tenants[1]
    for suffix in ("change/", "history/", "delete/"):
        assert client.get(f"{PROFILES}{foreign.pk}/{suffix}").status_code == 404
    assert client.post(f"{PROFILES}{foreign.pk}/change/", {"properties": "{}"}).status_code == 404
    assert client.get(f"{PROFILES}999999/change/").status_code == 404
    assert UserProfile.objects.get(pk=foreign.pk).properties == {"firstname": "Otto"}


def test_other_objects_of_another_datamart_answer_404(two_tenants, other_datamart, alice, login):
    client = login(alice)
    foreign = two_tenants[1]
    token, _ = api_token_create(datamart=other_datamart, name="crm")
    compartment = other_datamart.compartments.get()
    for url in (
        f"/admin/profiles/userpoint/{foreign.user_point_id}/change/",
        f"/admin/profiles/compartment/{compartment.pk}/change/",
        f"/admin/profiles/apitoken/{token.pk}/change/",
        f"/admin/profiles/datamart/{other_datamart.pk}/change/",
    ):
        assert client.get(url).status_code == 404, url


def test_counts_and_lists_of_every_model_are_scoped(two_tenants, other_datamart, alice, login):
    api_token_create(datamart=other_datamart, name="foreign-token")
    client = login(alice)
    for url in (
        "/admin/profiles/userpoint/",
        "/admin/profiles/compartment/",
        "/admin/profiles/datamart/",
        "/admin/profiles/profilechange/",
        "/admin/profiles/apitoken/",
    ):
        results = client.get(url).context["cl"].result_list
        assert all(getattr(row, "datamart_id", getattr(row, "id", None)) == 1 for row in results), (
            url
        )
    assert client.get("/admin/profiles/userpoint/").context["cl"].result_count == 1


def test_staff_without_membership_sees_no_profile(two_tenants, make_staff, login):
    nobody = make_staff("nobody", [])
    assert login(nobody).get(PROFILES).context["cl"].result_count == 0


def test_superuser_sees_every_datamart(two_tenants, login, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    response = login(root).get(PROFILES, {"q": "shared-account"})
    assert {profile.pk for profile in response.context["cl"].result_list} == {
        profile.pk for profile in two_tenants
    }


def test_choices_offered_in_forms_are_the_own_datamarts(datamart, other_datamart, alice, login):
    compartment_create(datamart=other_datamart, compartment_id=77, name="Foreign CRM")
    client = login(alice)
    compartment_choices = (
        client.get(PROFILES + "add/").context["adminform"].form.fields["compartment"].queryset
    )
    assert {compartment.datamart_id for compartment in compartment_choices} == {1}
    datamart_choices = (
        client.get("/admin/profiles/compartment/add/")
        .context["adminform"]
        .form.fields["datamart"]
        .queryset
    )
    assert list(datamart_choices) == [datamart]


def test_compartment_filter_lists_only_own_compartments(datamart, other_datamart, alice, login):
    compartment_create(datamart=other_datamart, compartment_id=77, name="Foreign CRM")
    page = login(alice).get(PROFILES).content.decode()
    assert "Foreign CRM" not in page


def test_adding_a_compartment_to_another_datamart_is_refused(other_datamart, alice, login):
    response = login(alice).post(
        "/admin/profiles/compartment/add/",
        {"datamart": other_datamart.pk, "compartment_id": 5, "name": "Sneaky"},
    )
    assert response.status_code == 200
    assert "datamart" in response.context["adminform"].form.errors
    assert not other_datamart.compartments.filter(compartment_id=5).exists()


def test_import_and_export_are_separate_permissions(make_staff, datamart):
    profile_admin = UserProfileAdmin(UserProfile, admin.site)
    request = RequestFactory().get(PROFILES)
    for extra, can_import, can_export in (
        ((), False, False),
        (("profiles.import_profiles",), True, False),
        (("profiles.export_profiles",), False, True),
    ):
        request.user = make_staff(f"staff-{len(extra)}-{can_import}", [datamart], extra)
        assert profile_admin.has_import_permission(request) is can_import
        assert profile_admin.has_export_permission(request) is can_export


class ExportingProfileAdmin(ExportMixin, UserProfileAdmin):
    """How the import/export screens hook in: a mixin before UserProfileAdmin."""

    has_export_permission = UserProfileAdmin.has_export_permission


def test_export_through_the_profile_admin_is_scoped(two_tenants, alice):
    exporting = ExportingProfileAdmin(UserProfile, admin.site)
    request = RequestFactory().get(PROFILES)
    request.user = alice
    assert exporting.has_export_permission(request) is False
    assert list(exporting.get_export_queryset(request)) == [two_tenants[0]]
