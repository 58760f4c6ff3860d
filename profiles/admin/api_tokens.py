"""API tokens: shown raw once, at creation, on a page no cache keeps; revoked, never deleted,
so the history keeps naming the token that made a change."""

from __future__ import annotations

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.html import format_html

from profiles.admin.display import moment
from profiles.admin.forms import ApiTokenAddForm
from profiles.admin.scoping import DatamartListFilter, DatamartScopedAdmin
from profiles.models import ApiToken
from profiles.services import api_token_create, api_token_rename, api_token_revoke
from profiles.wording import count_noun


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
        return "active" if obj.is_active else format_html("revoked {}", moment(obj.revoked_ts))

    def has_delete_permission(self, request, obj=None):
        # Revoke instead: the history keeps naming the token that made a change.
        return False

    def save_form(self, request, form, change):
        # Django goes on with the token the service saved (log entry, message, redirect).
        if change:
            return api_token_rename(token=form.instance, name=form.cleaned_data["name"])
        token, raw_token = api_token_create(
            datamart=form.cleaned_data["datamart"], name=form.cleaned_data["name"]
        )
        # Held by this instance only, for the one page that shows it (`response_add`).
        token.raw_token = raw_token
        return token

    def response_add(self, request, obj, post_url_continue=None):
        raw_token = getattr(obj, "raw_token", None)
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
        self.message_user(request, f"{count_noun(revoked, 'token')} revoked.", messages.SUCCESS)
