"""User profiles: the list (exact searches, filters, columns per compartment) and the page that
edits a profile's custom properties.

`UserProfileAdmin` is defined here and registered by the import/export screens
(imports/admin/profile_import_export.py), which extend it with django-import-export's mixin:
one admin class for the model, and `profiles` never imports `imports`. Its options are class
attributes, its `change_list_template` extends Django's with an `extra-object-tools` block, and
`has_import_permission` / `has_export_permission` check the two separate permissions
`profiles.import_profiles` / `profiles.export_profiles`. A django-import-export mixin listed
before it in the bases must keep those two methods (its own read other settings).

The list's rows come from `profiles.selectors.user_profiles_for_list`, as an export's do: the
filters here render, the selector filters.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.db.models import QuerySet
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

from profiles.admin.counted_lists import EstimatedCountChangeList, EstimatedCountListMixin
from profiles.admin.display import moment, properties_summary, value_at, value_text
from profiles.admin.forms import ProfileAddForm, ProfileChangeForm
from profiles.admin.history import ChangeHistoryMixin
from profiles.admin.scoping import (
    CompartmentListFilter,
    DatamartListFilter,
    DatamartScopedAdmin,
    selected_compartment,
)
from profiles.errors import ProfileError
from profiles.history import ChangeSource
from profiles.identifiers import AccountIdentifier
from profiles.merge import MergeMode, Strategy
from profiles.models import ProfileChange, UserProfile
from profiles.permissions import EXPORT_PROFILES, IMPORT_PROFILES
from profiles.selectors import (
    PROFILE_LIST_FILTER_PARAMETERS,
    PROPERTY_PARAMETER,
    ProfileListFilters,
    profile_changes,
    user_profiles_for_list,
)
from profiles.services import (
    profile_delete,
    profile_upsert,
    user_point_resolve,
)

FORCE_REPLACE = MergeMode(Strategy.FORCE_REPLACE)
NOTHING_CHANGED = (
    "Nothing changed: the properties were already these, so the profile was not written and "
    "its $last_modified_ts stays as it was."
)


def admin_source(request) -> ChangeSource:
    return ChangeSource(kind=ProfileChange.Source.ADMIN, user_id=request.user.pk)


# --- the list -------------------------------------------------------------------------------


class ShownFilter:
    """A filter of the profile list that only renders: `user_profiles_for_list` applied it."""

    def queryset(self, request, queryset):
        return queryset


class ProfileDatamartFilter(ShownFilter, DatamartListFilter):
    pass


class ProfileCompartmentFilter(ShownFilter, CompartmentListFilter):
    pass


class PropertyListFilter(ShownFilter, admin.SimpleListFilter):
    """`path=value`, typed by staff; the value is read as the API reads it (JSON literal or text)."""

    title = "property"
    parameter_name = PROPERTY_PARAMETER
    template = "admin/profiles/property_filter.html"

    def lookups(self, request, model_admin):
        return []

    def has_output(self):
        return True

    def choices(self, changelist):
        kept = [
            (name, value)
            for name, values in self.request.GET.lists()
            if name not in (self.parameter_name, "p", "e")
            for value in values
        ]
        yield {
            "value": self.value() or "",
            "hidden": kept,
            "remove_url": changelist.get_query_string(remove=[self.parameter_name, "p"]),
        }


class ModifiedListFilter(ShownFilter, admin.DateFieldListFilter):
    """Django's date filter (bounded ranges, served by the last-modified index), named plainly."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = "last modified"


class ProfileChangeList(EstimatedCountChangeList):
    """The list's rows are the selector's; Django then orders and pages them."""

    def get_queryset(self, request, exclude_parameters=None):
        self.root_queryset = self.model_admin.listed_profiles(request)
        return super().get_queryset(request, exclude_parameters)


def property_column(path: str):
    parts = path.split(".")

    # A long dotted path may break after its dots, so the column stays narrow.
    @admin.display(description=mark_safe(".<wbr>".join(escape(part) for part in parts)))
    def column(obj):
        return value_text(value_at(obj.properties, parts))

    column.__name__ = "property_" + "_".join(part for part in parts if part.isidentifier())
    return column


class UserProfileAdmin(ChangeHistoryMixin, EstimatedCountListMixin, DatamartScopedAdmin):
    list_display = ("profile", "compartment", "account", "properties_column", "modified")
    list_display_links = ("profile",)
    list_filter = (
        ProfileDatamartFilter,
        ProfileCompartmentFilter,
        ("last_modified_ts", ModifiedListFilter),
        PropertyListFilter,
    )
    list_select_related = ("compartment",)
    # Both orders are served by indexes; sorting by other columns would sort millions of rows.
    ordering = ("-last_modified_ts", "-id")
    sortable_by = ("profile", "modified")
    search_fields = ("=user_account_id",)
    search_help_text = (
        "Exact account id, email hash, user agent id or user point id (no partial matches)."
    )
    list_per_page = 50
    change_list_template = "admin/profiles/userprofile/change_list.html"
    change_form_template = "admin/profiles/userprofile/change_form.html"
    bulk_delete_hint = "delete that many with an import of DELETE commands instead"
    import_permission = IMPORT_PROFILES
    export_permission = EXPORT_PROFILES

    # -- permissions an import/export mixin relies on

    def has_import_permission(self, request) -> bool:
        return request.user.has_perm(self.import_permission)

    def has_export_permission(self, request) -> bool:
        return request.user.has_perm(self.export_permission)

    # -- the list

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("compartment")

    def get_changelist(self, request, **kwargs):
        return ProfileChangeList

    def listed_profiles(self, request, *, ordering=None) -> QuerySet[UserProfile]:
        """The rows of the list for the request's filters and search, the export's too; in
        `ordering` when given (see `list_ordering`)."""
        filters = ProfileListFilters.from_query(request.GET)
        if ordering is not None:
            filters = dataclasses.replace(filters, ordering=ordering)
        try:
            return user_profiles_for_list(user=request.user, filters=filters)
        except ProfileError as error:
            if error.field != PROPERTY_PARAMETER:
                raise IncorrectLookupParameters(error.message) from error
            if not getattr(request, "_property_filter_refused", False):  # once per page
                request._property_filter_refused = True
                messages.error(request, error.message)
            return UserProfile.objects.none()

    def list_ordering(self, request, changelist) -> tuple[str, ...]:
        """The list's order, its column sort (`o`) included, as field names for the selector:
        each field's first mention, up to the id, which decides every tie (as SQL reads it)."""
        ordering: list[str] = []
        for item in changelist.get_ordering(request, changelist.root_queryset):
            if not isinstance(item, str):
                continue  # an expression: no column of this list sorts by one
            descending, name = item.startswith("-"), item.removeprefix("-")
            name = "id" if name == "pk" else name
            if name not in {field.removeprefix("-") for field in ordering}:
                ordering.append(f"-{name}" if descending else name)
            if name == "id":
                break
        return tuple(ordering)

    def lookup_allowed(self, lookup, value, request=None):
        # Only the filters the selector knows: the list never shows rows an export would not hold.
        return lookup in PROFILE_LIST_FILTER_PARAMETERS

    def get_search_results(self, request, queryset, search_term):
        return queryset, False  # `listed_profiles` searched already

    def get_list_display(self, request):
        compartment = selected_compartment(request)
        if compartment is None or not compartment.list_properties:
            return self.list_display
        columns = [property_column(path) for path in compartment.list_properties]
        # The list is filtered on that compartment: its column would repeat it on every row,
        # and the property columns need the room ("Last modified" stays on a 1366 px screen).
        return ("profile", "account", *columns, "modified")

    @admin.display(description="Profile", ordering="id")
    def profile(self, obj):
        return f"#{obj.pk}"

    @admin.display(description="Account")
    def account(self, obj):
        return obj.user_account_id or "anonymous"

    @admin.display(description="Properties")
    def properties_column(self, obj):
        return properties_summary(obj)

    @admin.display(description="Last modified", ordering="last_modified_ts")
    def modified(self, obj):
        return moment(obj.last_modified_ts)

    # -- the change page

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = ProfileChangeForm if obj is not None else ProfileAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [
                (None, {"fields": ("compartment", "user_account_id", "point")}),
                ("Custom properties", {"fields": ("properties",)}),
            ]
        return [
            (
                "System fields",
                {
                    "fields": (
                        "point_link",
                        "compartment_display",
                        "account_display",
                        "creation_display",
                        "last_modified_display",
                    )
                },
            ),
            ("Custom properties", {"fields": ("properties", "loaded_last_modified_ts")}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return (
            "point_link",
            "compartment_display",
            "account_display",
            "creation_display",
            "last_modified_display",
        )

    @admin.display(description="User point")
    def point_link(self, obj):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:profiles_userpoint_change", args=[obj.user_point_id]),
            obj.user_point_id,
        )

    @admin.display(description="$compartment_id")
    def compartment_display(self, obj):
        return f"{obj.compartment.compartment_id} ({obj.compartment.name})"

    @admin.display(description="$user_account_id")
    def account_display(self, obj):
        return obj.user_account_id or "— (anonymous profile)"

    @admin.display(description="$creation_ts")
    def creation_display(self, obj):
        return moment(obj.creation_ts)

    @admin.display(description="$last_modified_ts")
    def last_modified_display(self, obj):
        return moment(obj.last_modified_ts)

    def recorded_changes(self, obj):
        return profile_changes(profile=obj)

    # -- writes, through the services

    def save_form(self, request, form, change):
        # Django goes on with the profile the service stored (log entry, message, redirect).
        data = form.cleaned_data
        if change:
            profile = form.instance
            point, compartment, account = (
                profile.user_point,
                profile.compartment,
                profile.user_account_id,
            )
            expected = data.get("loaded_last_modified_ts")
        else:
            compartment, account = data["compartment"], data.get("user_account_id")
            point = data.get("resolved_point")
            if point is None:
                point, _ = user_point_resolve(
                    datamart=compartment.datamart,
                    identifier=AccountIdentifier(account, compartment.compartment_id),
                    create=True,
                )
            expected = None
        return profile_upsert(
            user_point=point,
            compartment=compartment,
            user_account_id=account,
            properties=data["properties"],
            mode=FORCE_REPLACE,
            source=admin_source(request),
            expected_last_modified_ts=expected,
        ).profile

    def response_change(self, request, obj):
        if not saved_unchanged(request, obj):
            return super().response_change(request, obj)
        # Django's redirects after a save, with this message instead of "changed successfully".
        self.message_user(request, NOTHING_CHANGED, messages.INFO)
        if "_continue" not in request.POST and "_addanother" not in request.POST:
            return self.response_post_save_change(request, obj)
        url = (
            request.path
            if "_continue" in request.POST
            else reverse("admin:profiles_userprofile_add", current_app=self.admin_site.name)
        )
        context = {"preserved_filters": self.get_preserved_filters(request), "opts": self.opts}
        return HttpResponseRedirect(add_preserved_filters(context, url))

    def delete_model(self, request, obj):
        profile_delete(
            user_point=obj.user_point,
            compartment=obj.compartment,
            user_account_id=obj.user_account_id,
            source=admin_source(request),
        )

    def delete_queryset(self, request, queryset: QuerySet):
        for profile in queryset.select_related("user_point", "compartment"):
            self.delete_model(request, profile)


def saved_unchanged(request, profile: UserProfile) -> bool:
    """Whether the save left the version the page loaded: then it wrote nothing (a write
    stamps a new `$last_modified_ts`; a stale page is refused before)."""
    loaded = request.POST.get("loaded_last_modified_ts", "")
    try:
        return bool(loaded) and datetime.fromisoformat(loaded) == profile.last_modified_ts
    except ValueError:
        return False
