"""The history of profile changes: the "Profile changes" list, a change's own page (each
changed key before → after), and the history of a profile's and a user point's pages, which
their HISTORY button opens in full (`ChangeHistoryMixin`). Each change links to what made it:
the import execution, the staff user, the API token."""

from __future__ import annotations

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from profiles.admin.change_diff import key_changes
from profiles.admin.counted_lists import EstimatedCountListMixin
from profiles.admin.display import moment, moment_text, object_link
from profiles.admin.scoping import DatamartListFilter, DatamartScopedAdmin, visible_datamart_ids
from profiles.models import ProfileChange, UserPoint, UserProfile
from profiles.selectors import (
    own_account_q,
    point_ids_matching,
    profile_change_values_after,
    with_profile_existing,
)

HISTORY_ROWS = 50  # on a profile's or point's page; its HISTORY button pages through all
HISTORY_PAGE_ROWS = 100


def execution_url(execution_id: int) -> str:
    """The import execution's admin page (its admin lives in the imports app)."""
    try:
        return reverse("admin:imports_execution_change", args=[execution_id])
    except NoReverseMatch:
        return f"{reverse('admin:index')}imports/execution/{execution_id}/change/"


def may_open_executions(request) -> bool:
    """Whether the viewer may open import executions (their admin, in the imports app, says)."""
    try:
        model_admin = admin.site.get_model_admin(apps.get_model("imports", "Execution"))
    except (LookupError, admin.sites.NotRegistered):
        return False
    return model_admin.has_view_or_change_permission(request)


def source_label(change: ProfileChange) -> str:
    return change.get_source_display()


def change_origin(change: ProfileChange, *, request) -> SafeString | str:
    """What made the change, each part linked to its page (for a viewer who may open it): the
    import execution, the staff user, the API token."""
    parts = []
    if change.execution_id is not None:
        label = format_html("import execution #{}", change.execution_id)
        if may_open_executions(request):
            label = format_html('<a href="{}">{}</a>', execution_url(change.execution_id), label)
        parts.append(label)
    if change.user is not None:
        name = object_link(request, change.user, change.user.get_username())
        parts.append(format_html("by {}", name) if parts else name)
    if change.api_token is not None:
        label = object_link(
            request, change.api_token, format_html("API token “{}”", change.api_token.name)
        )
        parts.append(format_html("with {}", label) if parts else label)
    if not parts:
        return change.get_source_display().lower()
    return format_html_join(" ", "{}", ((part,) for part in parts))


def change_link(change: ProfileChange) -> SafeString:
    """The change's time, linked to its page (its values before → after)."""
    return format_html(
        '<a href="{}" class="change-link">{}</a>',
        reverse("admin:profiles_profilechange_change", args=[change.pk]),
        moment(change.ts),
    )


def profile_cell(change: ProfileChange) -> str:
    """The profile a change names, linked while it is stored (`with_profile_existing`; deleted
    or erased since, the label alone); an erasure names none."""
    if change.action == ProfileChange.Action.ERASED:
        return "—"
    label = f"{change.compartment_id}/{change.user_account_id or 'anonymous'}"
    if change.action == ProfileChange.Action.DELETED or not getattr(change, "profile_exists", True):
        return label
    return format_html(
        '<a href="{}">{}</a>',
        reverse("admin:profiles_userprofile_change", args=[change.profile_id]),
        label,
    )


def keys_cell(change: ProfileChange) -> str:
    return Truncator(", ".join(change.changed_keys)).chars(80) or "—"


def history_table(changes: list[ProfileChange], *, request, with_profile: bool = False) -> str:
    if not changes:
        return "No recorded change yet."
    head = ["Time", *(["Profile"] if with_profile else []), "Source", "Made by", "Action", "Keys"]
    rows = []
    for change in changes:
        cells = [change_link(change)]
        if with_profile:
            cells.append(profile_cell(change))
        cells += [
            source_label(change),
            change_origin(change, request=request),
            change.get_action_display(),
            keys_cell(change),
        ]
        rows.append(format_html_join("", "<td>{}</td>", ((cell,) for cell in cells)))
    return format_html(
        '<table class="profile-history"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
        format_html_join("", "<th>{}</th>", ((title,) for title in head)),
        format_html_join("", "<tr>{}</tr>", ((row,) for row in rows)),
    )


class ChangeHistoryMixin:
    """A page whose object has a recorded history (a profile, a user point): its change page
    shows the latest changes, and Django's HISTORY button opens all of them, paged, instead of
    Django's own log of admin edits (which would miss the API's and the imports' changes)."""

    history_with_profile = False

    def recorded_changes(self, obj) -> QuerySet[ProfileChange]:
        raise NotImplementedError

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            changes = list(self.recorded_changes(obj)[: HISTORY_ROWS + 1])
            context["profile_history"] = history_table(
                changes[:HISTORY_ROWS], request=request, with_profile=self.history_with_profile
            )
            context["profile_history_more"] = len(changes) > HISTORY_ROWS
        return super().render_change_form(request, context, add, change, form_url, obj)

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))  # 404 outside the user's datamarts
        if not self.has_view_or_change_permission(request, obj):
            return super().history_view(request, object_id, extra_context)  # Django's refusal
        paginator = Paginator(self.recorded_changes(obj), HISTORY_PAGE_ROWS)
        page = paginator.get_page(request.GET.get("p"))
        context = {
            **self.admin_site.each_context(request),
            "title": f"History of {self.opts.verbose_name} {obj}",
            "subtitle": None,
            "opts": self.opts,
            "object": obj,
            "page": page,
            "history": history_table(
                list(page.object_list),
                request=request,
                with_profile=self.history_with_profile,
            ),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/profiles/history.html", context)


@admin.register(ProfileChange)
class ProfileChangeAdmin(EstimatedCountListMixin, DatamartScopedAdmin):
    list_filter = (DatamartListFilter, "source", "action")
    list_select_related = ("user", "api_token")
    # The id follows time and is indexed; sorting by `ts` would sort the whole history.
    ordering = ("-id",)
    sortable_by = ()
    search_fields = ("=user_account_id",)
    search_help_text = "Exact account id, email hash, user agent id or user point id."

    def get_queryset(self, request):
        return with_profile_existing(super().get_queryset(request))

    def get_list_display(self, request):
        @admin.display(description="Made by")
        def made_by(obj):
            return change_origin(obj, request=request)

        return ("time", "profile_link", "action", "source_column", made_by, "keys")

    def get_list_display_links(self, request, list_display):
        return None  # the time links to the change's page itself

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

    @admin.display(description="Time")
    def time(self, obj):
        return change_link(obj)

    @admin.display(description="Profile")
    def profile_link(self, obj):
        return profile_cell(obj)

    @admin.display(description="Source")
    def source_column(self, obj):
        return source_label(obj)

    @admin.display(description="Keys")
    def keys(self, obj):
        return keys_cell(obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        change = self.get_object(request, unquote(object_id))  # 404 outside the datamarts
        if not self.has_view_permission(request, change):
            return super().change_view(request, object_id, form_url, extra_context)
        before = change.previous_values if isinstance(change.previous_values, dict) else {}
        point_exists = UserPoint.objects.filter(pk=change.user_point_id).exists()
        context = {
            **self.admin_site.each_context(request),
            "title": f"Profile {change.get_action_display().lower()}, {moment_text(change.ts)}",
            "subtitle": None,
            "opts": self.opts,
            "change": change,
            "time": moment(change.ts),
            "profile": profile_cell(change),
            "point_url": reverse("admin:profiles_userpoint_change", args=[change.user_point_id])
            if point_exists
            else None,
            "source": source_label(change),
            "origin": change_origin(change, request=request),
            "key_changes": key_changes(
                keys=change.changed_keys,
                before=before,
                after=profile_change_values_after(change=change),
            ),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/profiles/profilechange/change_form.html", context)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
