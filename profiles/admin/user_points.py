"""User points: created with one identifier, given more on their page, which also shows their
identifiers, profiles and the history of all of them."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils.text import Truncator

from profiles.admin.counted_lists import EstimatedCountListMixin
from profiles.admin.display import properties_summary
from profiles.admin.forms import UserPointForm
from profiles.admin.history import ChangeHistoryMixin
from profiles.admin.scoping import (
    DatamartListFilter,
    DatamartScopedAdmin,
    ReadOnlyInline,
    visible_datamart_ids,
)
from profiles.errors import ProfileError
from profiles.history import ChangeSource
from profiles.models import ProfileChange, UserAccount, UserAgent, UserEmail, UserPoint, UserProfile
from profiles.selectors import point_ids_matching, user_point_changes, with_profile_existing
from profiles.services import (
    identifier_attach,
    user_point_create,
    user_point_delete,
    user_point_erase,
)
from profiles.wording import count_noun


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


@admin.register(UserPoint)
class UserPointAdmin(ChangeHistoryMixin, EstimatedCountListMixin, DatamartScopedAdmin):
    form = UserPointForm
    list_display = ("id", "datamart", "identifiers", "creation_ts")
    list_filter = (DatamartListFilter,)
    list_select_related = ("datamart",)
    # UUID order: meaningless but indexed, where creation order would sort 10M rows.
    ordering = ("id",)
    sortable_by = ()
    search_fields = ("=id",)
    search_help_text = "Exact account id, email hash, user agent id or user point id."
    inlines = (AccountInline, EmailInline, AgentInline, ProfileInline)
    change_form_template = "admin/profiles/userpoint/change_form.html"
    actions = ("erase_points",)

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

    def get_inlines(self, request, obj):
        # A point being added has no identifier nor profile to show yet.
        return self.inlines if obj is not None else ()

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

    @admin.display(description="Identifiers")
    def identifiers(self, obj):
        labels = [
            f"{account.compartment.compartment_id}/{account.user_account_id}"
            for account in obj.accounts.all()
        ]
        labels += [f"email {email.email_hash}" for email in obj.emails.all()]
        labels += [f"agent {agent.user_agent_id}" for agent in obj.agents.all()]
        return Truncator(", ".join(labels)).chars(90) or "—"

    history_with_profile = True

    def recorded_changes(self, obj):
        return with_profile_existing(user_point_changes(user_point=obj))

    def save_form(self, request, form, change):
        if change:
            return super().save_form(request, form, change)  # attached in save_model, see there
        # Django goes on with the point the service created (log entry, message, redirect).
        return user_point_create(
            datamart=form.cleaned_data["datamart"],
            identifier=form.cleaned_data["identifier"],
            email=form.cleaned_data.get("identifier_email") or "",
        )

    def save_model(self, request, obj, form, change):
        # The change page carries inlines, validated after save_form: attach once they are.
        identifier = form.cleaned_data.get("identifier")
        if change and identifier is not None:
            identifier_attach(
                user_point=obj,
                identifier=identifier,
                email=form.cleaned_data.get("identifier_email") or "",
            )

    def delete_model(self, request, obj):
        user_point_delete(user_point=obj)

    @admin.action(description="Erase (right to be forgotten)", permissions=["delete"])
    def erase_points(self, request, queryset):
        """Like Django's delete action: a confirmation page first, then the erasure of each
        point through `user_point_erase` (docs/rules.md#erasure)."""
        points = list(queryset.prefetch_related("accounts__compartment", "emails", "agents"))
        if request.POST.get("post") != "yes":
            return TemplateResponse(
                request,
                "admin/profiles/userpoint/erase_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Erase these people?",
                    "opts": self.model._meta,
                    "points": [(point, self.identifiers(point)) for point in points],
                    "points_counted": count_noun(len(points), "user point"),
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                    "media": self.media,
                },
            )
        source = ChangeSource(kind=ProfileChange.Source.ADMIN, user_id=request.user.pk)
        erased = 0
        for point in points:
            try:
                user_point_erase(datamart=point.datamart, user_point=point, source=source)
            except ProfileError:
                continue  # erased by someone else meanwhile
            erased += 1
        self.message_user(request, f"Erased {count_noun(erased, 'user point')}.", messages.SUCCESS)
        return None
