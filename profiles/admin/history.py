"""The history of profile changes: the "Profile changes" list, and the history tables of a
profile's and a user point's pages (when, source, who, action, changed keys)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from profiles.admin.forms import change_author
from profiles.admin.scoping import DatamartListFilter, DatamartScopedAdmin, visible_datamart_ids
from profiles.models import ProfileChange, UserProfile
from profiles.paginators import EstimatedCountPaginator
from profiles.selectors import own_account_q, point_ids_matching

HISTORY_ROWS = 50
SOURCE_LABELS = {"admin": "Back-office", "api": "API", "import": "Import", "system": "System"}


def execution_url(execution_id: int) -> str:
    """The import execution's admin page (its admin lives in the imports app)."""
    try:
        return reverse("admin:imports_execution_change", args=[execution_id])
    except NoReverseMatch:
        return f"{reverse('admin:index')}imports/execution/{execution_id}/change/"


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


def profile_cell(change: ProfileChange) -> str:
    """The profile a change names, linked while it may still exist; an erasure names none."""
    if change.action == ProfileChange.Action.ERASED:
        return "—"
    label = f"{change.compartment_id}/{change.user_account_id or 'anonymous'}"
    if change.action == ProfileChange.Action.DELETED:
        return label
    return format_html(
        '<a href="{}">{}</a>',
        reverse("admin:profiles_userprofile_change", args=[change.profile_id]),
        label,
    )


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
            cells.append(profile_cell(change))
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
        return profile_cell(obj)

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
