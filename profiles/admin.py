"""The back-office: datamarts, compartments, user points, profiles, API tokens, history.

Every admin here derives from `DatamartScopedAdmin` (profiles/admin_scope.py), so staff see
and change only their datamarts' objects; every write goes through profiles/services.py, so
the rules and `$last_modified_ts` behave as in the API and the importer.

`UserProfileAdmin` is meant to be extended by the import/export screens: its options are class
attributes, its `change_list_template` extends Django's and has an `extra-object-tools` block,
and `has_import_permission` / `has_export_permission` check the two separate permissions
`profiles.import_profiles` / `profiles.export_profiles`. A django-import-export mixin listed
before it in the bases must keep those two methods (its own read other settings).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from profiles.admin_forms import (
    ApiTokenAddForm,
    CompartmentForm,
    DatamartAddForm,
    ProfileAddForm,
    ProfileChangeForm,
    UserPointForm,
    change_author,
)
from profiles.admin_scope import (
    CompartmentListFilter,
    DatamartListFilter,
    DatamartScopedAdmin,
    ScopedQuerysetMixin,
    exact_search_q,
    own_account_q,
    point_ids_matching,
    selected_compartment,
    visible_datamart_ids,
)
from profiles.errors import ProfileError
from profiles.identifiers import AccountIdentifier
from profiles.merge import MergeMode, Strategy
from profiles.models import (
    ApiToken,
    Compartment,
    Datamart,
    DatamartMembership,
    ProfileChange,
    UserAccount,
    UserAgent,
    UserEmail,
    UserPoint,
    UserProfile,
    epoch_ms,
)
from profiles.paginators import EstimatedCountPaginator
from profiles.permissions import EXPORT_PROFILES, IMPORT_PROFILES
from profiles.property_paths import property_expression_parse, property_filter_q
from profiles.selectors import profile_changes
from profiles.services import (
    ChangeSource,
    WriteOutcome,
    api_token_create,
    api_token_revoke,
    compartment_create,
    compartment_delete,
    compartment_update,
    datamart_create,
    identifier_attach,
    profile_delete,
    profile_upsert,
    user_point_delete,
    user_point_resolve,
)

FORCE_REPLACE = MergeMode(Strategy.FORCE_REPLACE)
HISTORY_ROWS = 50
SUMMARY_KEYS = 3

admin.site.site_header = "Profiles back-office"
admin.site.site_title = "Profiles"
admin.site.index_title = "Datamarts, user points and profiles"


def admin_source(request) -> ChangeSource:
    return ChangeSource(kind=ProfileChange.Source.ADMIN, user_id=request.user.pk)


def moment(value) -> str:
    """A timestamp as staff read it, with the epoch milliseconds clients see."""
    if value is None:
        return "—"
    return f"{value:%Y-%m-%d %H:%M:%S} UTC ({epoch_ms(value)})"


def short_json(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return Truncator(text).chars(width)


def value_at(properties: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(properties, dict) and part in properties:
            properties = properties[part]
        elif isinstance(properties, list) and part.isdigit() and int(part) < len(properties):
            properties = properties[int(part)]
        else:
            return None
    return properties


def execution_url(execution_id: int) -> str:
    """The import execution's admin page (its admin lives in the imports app)."""
    try:
        return reverse("admin:imports_execution_change", args=[execution_id])
    except NoReverseMatch:
        return f"{reverse('admin:index')}imports/execution/{execution_id}/change/"


SOURCE_LABELS = {"admin": "Back-office", "api": "API", "import": "Import", "system": "System"}


def source_label(change: ProfileChange) -> str:
    return SOURCE_LABELS.get(change.source, change.source)


def change_who(change: ProfileChange) -> str:
    if change.execution_id is not None and change.user is None and change.api_token is None:
        return format_html(
            '<a href="{}">import execution {}</a>',
            execution_url(change.execution_id),
            change.execution_id,
        )
    return change_author(change)


def history_table(changes: list[ProfileChange], *, with_profile: bool = False) -> str:
    if not changes:
        return "No recorded change yet."
    head = [
        "Time",
        *(["Profile"] if with_profile else []),
        "Source",
        "Who",
        "Action",
        "Changed keys",
    ]
    rows = []
    for change in changes:
        cells = [f"{change.ts:%Y-%m-%d %H:%M:%S} UTC"]
        if with_profile:
            account = change.user_account_id or "anonymous"
            cells.append(
                format_html(
                    '<a href="{}">{}/{}</a>',
                    reverse("admin:profiles_userprofile_change", args=[change.profile_id]),
                    change.compartment_id,
                    account,
                )
                if change.action != ProfileChange.Action.DELETED
                else f"{change.compartment_id}/{account}"
            )
        cells += [
            source_label(change),
            change_who(change),
            change.get_action_display(),
            ", ".join(change.changed_keys) or "—",
        ]
        rows.append(format_html_join("", "<td>{}</td>", ((cell,) for cell in cells)))
    return format_html(
        '<table class="profile-history"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
        format_html_join("", "<th>{}</th>", ((title,) for title in head)),
        format_html_join("", "<tr>{}</tr>", ((row,) for row in rows)),
    )


class ReadOnlyInline(ScopedQuerysetMixin, admin.TabularInline):
    """Shown with the parent; changed through the parent's services, never row by row."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        parent = self.parent_model._meta
        return request.user.has_perm(f"{parent.app_label}.view_{parent.model_name}") or (
            request.user.has_perm(f"{parent.app_label}.change_{parent.model_name}")
        )


# --- datamarts ----------------------------------------------------------------------------


class MembershipInline(admin.TabularInline):
    model = DatamartMembership
    extra = 1
    verbose_name = "staff member"
    verbose_name_plural = "staff members (superusers see every datamart)"


class CompartmentInline(ReadOnlyInline):
    model = Compartment
    fields = ("compartment_id", "name", "is_default")
    readonly_fields = fields
    show_change_link = True


@admin.register(Datamart)
class DatamartAdmin(DatamartScopedAdmin):
    datamart_lookup = "id"
    list_display = ("id", "name")
    search_fields = ("name",)

    def get_fields(self, request, obj=None):
        return ("id", "name") if obj else ("id", "name", "default_compartment_id")

    def get_readonly_fields(self, request, obj=None):
        return ("id",) if obj else ()

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = DatamartAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_inlines(self, request, obj):
        if obj is None:
            return []
        return (
            [CompartmentInline, MembershipInline]
            if request.user.is_superuser
            else [CompartmentInline]
        )

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name"])
            return
        created = datamart_create(
            datamart_id=obj.id,
            name=obj.name,
            default_compartment_id=form.cleaned_data["default_compartment_id"],
        )
        obj._state.adding = False
        obj.pk = created.pk

    def get_deleted_objects(self, objs, request):
        # The cascade reaches millions of rows: say what goes, do not list it.
        names = [
            f"{datamart}: its compartments, user points, identifiers, profiles, history, "
            "API tokens and imports"
            for datamart in objs
        ]
        return names, {"datamarts": len(names)}, set(), []


@admin.register(DatamartMembership)
class DatamartMembershipAdmin(admin.ModelAdmin):
    """Who may see which datamart: superusers only."""

    list_display = ("user", "datamart")
    list_filter = ("datamart",)
    list_select_related = ("user", "datamart")

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


# --- compartments -------------------------------------------------------------------------


@admin.register(Compartment)
class CompartmentAdmin(DatamartScopedAdmin):
    form = CompartmentForm
    list_display = ("compartment_id", "name", "datamart", "is_default")
    list_display_links = ("compartment_id", "name")
    list_filter = (DatamartListFilter,)
    list_select_related = ("datamart",)
    ordering = ("datamart_id", "compartment_id")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # The default is moved by making another compartment the default, never unset.
        return (
            ("datamart", "compartment_id", "is_default")
            if obj.is_default
            else (
                "datamart",
                "compartment_id",
            )
        )

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def save_model(self, request, obj, form, change):
        if change:
            # The form already set the new values on `obj`: the service compares with the stored.
            stored = Compartment.objects.get(pk=obj.pk)
            compartment_update(compartment=stored, name=obj.name, is_default=obj.is_default)
            Compartment.objects.filter(pk=obj.pk).update(list_properties=obj.list_properties)
            return
        created = compartment_create(
            datamart=obj.datamart,
            compartment_id=obj.compartment_id,
            name=obj.name,
            is_default=obj.is_default,
        )
        Compartment.objects.filter(pk=created.pk).update(list_properties=obj.list_properties)
        obj.pk, obj.is_default = created.pk, created.is_default
        obj._state.adding = False

    def delete_model(self, request, obj):
        compartment_delete(compartment=obj)

    def get_deleted_objects(self, objs, request):
        protected = []
        for compartment in objs:
            if compartment.is_default:
                protected.append(
                    f"{compartment} is the default compartment: make another one the default first"
                )
            elif compartment.profiles.exists() or compartment.accounts.exists():
                protected.append(f"{compartment} still holds profiles or accounts")
        return [str(compartment) for compartment in objs], {}, set(), protected


# --- user points --------------------------------------------------------------------------


class AccountInline(ReadOnlyInline):
    model = UserAccount
    fields = ("compartment", "user_account_id")
    readonly_fields = fields
    verbose_name = "account identifier"


class EmailInline(ReadOnlyInline):
    model = UserEmail
    fields = ("email_hash", "email")
    readonly_fields = fields
    verbose_name = "email identifier"


class AgentInline(ReadOnlyInline):
    model = UserAgent
    fields = ("user_agent_id",)
    readonly_fields = fields
    verbose_name = "user agent identifier"


class ProfileInline(ReadOnlyInline):
    model = UserProfile
    fields = ("compartment", "user_account_id", "properties_summary", "last_modified_ts")
    readonly_fields = fields
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("compartment")

    @admin.display(description="Properties")
    def properties_summary(self, obj):
        return properties_summary(obj)


def properties_summary(profile: UserProfile) -> str:
    paths = profile.compartment.list_properties or list(profile.properties)[:SUMMARY_KEYS]
    parts = [
        f"{path}: {short_json(value_at(profile.properties, path.split('.')), 40)}" for path in paths
    ]
    more = len(profile.properties) - len(paths)
    if more > 0 and not profile.compartment.list_properties:
        parts.append(f"+{more}")
    return " · ".join(parts) or "{}"


@admin.register(UserPoint)
class UserPointAdmin(DatamartScopedAdmin):
    form = UserPointForm
    list_display = ("id", "datamart", "identifiers", "creation_ts")
    list_filter = (DatamartListFilter,)
    list_select_related = ("datamart",)
    # UUID order: meaningless but indexed, where creation order would sort 10M rows.
    ordering = ("id",)
    sortable_by = ()
    search_fields = ("=id",)
    search_help_text = "Exact account id, email hash, user agent id or user point id."
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    inlines = (AccountInline, EmailInline, AgentInline, ProfileInline)
    change_form_template = "admin/profiles/userpoint/change_form.html"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .prefetch_related("accounts__compartment", "emails", "agents")
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        ids = point_ids_matching(term, datamart_ids=visible_datamart_ids(request))
        return queryset.filter(pk__in=ids), False

    def get_fieldsets(self, request, obj=None):
        identifier = (
            "identifier_kind",
            "identifier_value",
            "identifier_compartment",
            "identifier_email",
        )
        if obj is None:
            return [(None, {"fields": ("datamart",)}), ("First identifier", {"fields": identifier})]
        return [
            (None, {"fields": ("id", "datamart", "creation_ts")}),
            (
                "Attach another identifier",
                {"fields": identifier, "classes": ("collapse",)},
            ),
        ]

    def get_readonly_fields(self, request, obj=None):
        return ("id", "datamart", "creation_ts") if obj else ()

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["profile_history"] = self.history(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="Identifiers")
    def identifiers(self, obj):
        labels = [
            f"{account.compartment.compartment_id}/{account.user_account_id}"
            for account in obj.accounts.all()
        ]
        labels += [f"email {email.email_hash}" for email in obj.emails.all()]
        labels += [f"agent {agent.user_agent_id}" for agent in obj.agents.all()]
        return Truncator(", ".join(labels)).chars(90) or "—"

    @admin.display(description="History")
    def history(self, obj):
        changes = list(
            ProfileChange.objects.filter(user_point_id=obj.pk).select_related("user", "api_token")[
                :HISTORY_ROWS
            ]
        )
        return history_table(changes, with_profile=True)

    def save_model(self, request, obj, form, change):
        identifier = form.cleaned_data.get("identifier")
        if change:
            if identifier is not None:
                identifier_attach(
                    user_point=obj,
                    identifier=identifier,
                    email=form.cleaned_data.get("identifier_email") or "",
                )
            return
        point, _ = user_point_resolve(datamart=obj.datamart, identifier=identifier, create=True)
        email = form.cleaned_data.get("identifier_email")
        if email:
            UserEmail.objects.filter(user_point=point).update(email=email)
        obj.pk, obj.creation_ts = point.pk, point.creation_ts
        obj._state.adding = False

    def delete_model(self, request, obj):
        user_point_delete(user_point=obj)

    def delete_queryset(self, request, queryset):
        for point in queryset:
            user_point_delete(user_point=point)


# --- profiles -----------------------------------------------------------------------------


class PropertyListFilter(admin.SimpleListFilter):
    """`path=value`, typed by staff; the value is read as the API reads it (JSON literal or text)."""

    title = "property"
    parameter_name = "property"
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

    def queryset(self, request, queryset):
        expression = (self.value() or "").strip()
        if not expression:
            return queryset
        try:
            path, value = property_expression_parse(expression)
            return queryset.filter(property_filter_q(path, value))
        except ProfileError as error:
            messages.error(request, error.message)
            return queryset.none()


class ModifiedListFilter(admin.DateFieldListFilter):
    """Django's date filter (bounded ranges, served by the last-modified index), named plainly."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = "last modified"


def property_column(path: str):
    parts = path.split(".")

    # A long dotted path may break after its dots, so the column stays narrow.
    @admin.display(description=mark_safe(".<wbr>".join(escape(part) for part in parts)))
    def column(obj):
        value = value_at(obj.properties, parts)
        return "—" if value is None else short_json(value, 40)

    column.__name__ = "property_" + "_".join(part for part in parts if part.isidentifier())
    return column


@admin.register(UserProfile)
class UserProfileAdmin(DatamartScopedAdmin):
    list_display = ("profile", "compartment", "account", "properties_column", "modified")
    list_display_links = ("profile",)
    list_filter = (
        DatamartListFilter,
        CompartmentListFilter,
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
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
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

    def get_list_display(self, request):
        compartment = selected_compartment(request)
        if compartment is None or not compartment.list_properties:
            return self.list_display
        columns = [property_column(path) for path in compartment.list_properties]
        return ("profile", "compartment", "account", *columns, "modified")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(exact_search_q(request, term)), False

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
        return f"{obj.last_modified_ts:%Y-%m-%d %H:%M:%S}"

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
            ("History", {"fields": ("history",)}),
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
            "history",
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

    @admin.display(description="Changes, newest first")
    def history(self, obj):
        changes = list(profile_changes(profile=obj)[:HISTORY_ROWS])
        return history_table(changes)

    # -- writes, through the services

    def save_model(self, request, obj, form, change):
        if change:
            point, compartment, account = obj.user_point, obj.compartment, obj.user_account_id
            expected = form.cleaned_data.get("loaded_last_modified_ts")
        else:
            compartment = form.cleaned_data["compartment"]
            account = form.cleaned_data.get("user_account_id")
            point = form.cleaned_data.get("resolved_point")
            if point is None:
                point, _ = user_point_resolve(
                    datamart=compartment.datamart,
                    identifier=AccountIdentifier(account, compartment.compartment_id),
                    create=True,
                )
            expected = None
        written = profile_upsert(
            user_point=point,
            compartment=compartment,
            user_account_id=account,
            properties=form.cleaned_data["properties"],
            mode=FORCE_REPLACE,
            source=admin_source(request),
            expected_last_modified_ts=expected,
        )
        request._profile_write_outcome = written.outcome
        stored = written.profile
        for field in (
            "id",
            "datamart_id",
            "user_point_id",
            "compartment_id",
            "user_account_id",
            "properties",
            "creation_ts",
            "last_modified_ts",
        ):
            setattr(obj, field, getattr(stored, field))
        obj._state.adding, obj._state.db = False, stored._state.db

    def message_user(self, request, message, level=messages.INFO, *args, **kwargs):
        if (
            level == messages.SUCCESS
            and getattr(request, "_profile_write_outcome", None) == WriteOutcome.UNCHANGED
        ):
            message = (
                "Nothing changed: the properties were already these, so the profile was not "
                "written and its $last_modified_ts stays as it was."
            )
            level = messages.INFO
        return super().message_user(request, message, level, *args, **kwargs)

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


# --- API tokens ---------------------------------------------------------------------------


@admin.register(ApiToken)
class ApiTokenAdmin(DatamartScopedAdmin):
    list_display = ("name", "datamart", "shown_prefix", "created_ts", "last_used_ts", "status")
    list_filter = (DatamartListFilter, ("revoked_ts", admin.EmptyFieldListFilter))
    list_select_related = ("datamart",)
    search_fields = ("name",)
    actions = ("revoke_tokens",)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("datamart", "name")
        return ("datamart", "name", "shown_prefix", "created_ts", "last_used_ts", "revoked_ts")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("datamart", "shown_prefix", "created_ts", "last_used_ts", "revoked_ts")

    @admin.display(description="Token starts with")
    def shown_prefix(self, obj):
        return f"{obj.prefix}…"

    @admin.display(description="Status")
    def status(self, obj):
        return "active" if obj.is_active else f"revoked {obj.revoked_ts:%Y-%m-%d %H:%M} UTC"

    def has_delete_permission(self, request, obj=None):
        # Revoke instead: the history keeps naming the token that made a change.
        return False

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name"])
            return
        token, raw_token = api_token_create(datamart=obj.datamart, name=obj.name)
        request._raw_api_token = raw_token
        obj.pk, obj.prefix, obj.created_ts = token.pk, token.prefix, token.created_ts
        obj._state.adding = False

    def response_add(self, request, obj, post_url_continue=None):
        raw_token = getattr(request, "_raw_api_token", None)
        if raw_token is None:
            return super().response_add(request, obj, post_url_continue)
        response = TemplateResponse(
            request,
            "admin/profiles/apitoken/token_created.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "API token created",
                "token": obj,
                "raw_token": raw_token,
            },
        )
        # Shown once: never kept by a cache, nor in the session or a cookie.
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke_tokens(self, request, queryset):
        revoked = 0
        for token in queryset.filter(revoked_ts__isnull=True):
            api_token_revoke(token=token)
            revoked += 1
        self.message_user(request, f"{revoked} token(s) revoked.", messages.SUCCESS)


# --- history ------------------------------------------------------------------------------


@admin.register(ProfileChange)
class ProfileChangeAdmin(DatamartScopedAdmin):
    list_display = ("ts", "profile_link", "action", "source_column", "who", "keys")
    list_filter = (DatamartListFilter, "source", "action")
    list_select_related = ("user", "api_token")
    # The id follows time and is indexed; sorting by `ts` would sort the whole history.
    ordering = ("-id",)
    sortable_by = ()
    search_fields = ("=user_account_id",)
    search_help_text = "Exact account id, email hash, user agent id or user point id."
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        # Through the identifiers' and profiles' indexes to the points, then the history's
        # user point index: the history itself has no index on account ids.
        datamart_ids = visible_datamart_ids(request)
        point_ids = set(point_ids_matching(term, datamart_ids=datamart_ids))
        point_ids.update(
            UserProfile.objects.filter(own_account_q(term, datamart_ids=datamart_ids)).values_list(
                "user_point_id", flat=True
            )
        )
        return queryset.filter(user_point_id__in=point_ids), False

    @admin.display(description="Profile")
    def profile_link(self, obj):
        label = f"{obj.compartment_id}/{obj.user_account_id or 'anonymous'}"
        if obj.action == ProfileChange.Action.DELETED:
            return label
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:profiles_userprofile_change", args=[obj.profile_id]),
            label,
        )

    @admin.display(description="Source")
    def source_column(self, obj):
        return source_label(obj)

    @admin.display(description="Who")
    def who(self, obj):
        return change_who(obj)

    @admin.display(description="Changed keys")
    def keys(self, obj):
        return Truncator(", ".join(obj.changed_keys)).chars(80) or "—"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
