"""Document imports: the import definitions (format, encoding) executions are recorded under."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from imports.admin.execution_pace import status_label
from imports.admin.executions import outcome, uploader
from imports.admin.forms import DocumentImportForm
from imports.admin.permissions import can_import
from imports.models import DocumentImport
from imports.services import (
    document_import_create,
    document_import_delete,
    document_import_update,
)
from profiles.admin.display import moment
from profiles.admin.scoping import DatamartListFilter, DatamartScopedAdmin

RECENT_EXECUTIONS = 20


@admin.register(DocumentImport)
class DocumentImportAdmin(DatamartScopedAdmin):
    form = DocumentImportForm
    list_display = ("name", "datamart", "mime_type", "encoding", "created_ts", "executions_link")
    list_filter = (DatamartListFilter, "mime_type")
    list_select_related = ("datamart",)
    search_fields = ("name",)
    show_facets = admin.ShowFacets.NEVER

    def _allowed(self, request, action: str) -> bool:
        return can_import(request) or request.user.has_perm(f"imports.{action}_documentimport")

    def has_module_permission(self, request):
        return self._allowed(request, "view")

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, "view")

    def has_add_permission(self, request):
        return self._allowed(request, "add")

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, "change")

    def has_delete_permission(self, request, obj=None):
        # Its executions go with it: the model permission, not the import one.
        return request.user.has_perm("imports.delete_documentimport")

    def get_readonly_fields(self, request, obj=None):
        # Executions keep their datamart: the definition does not move.
        return ("datamart", "created_ts", "recent_executions") if obj else ()

    def get_fields(self, request, obj=None):
        fields = ("datamart", "name", "document_type", "mime_type", "encoding", "column_mapping")
        return (*fields, "created_ts", "recent_executions") if obj else fields

    @admin.display(description="Executions, newest first")
    def recent_executions(self, obj):
        executions = list(
            obj.executions.select_related("created_by", "api_token").order_by("-id")[
                : RECENT_EXECUTIONS + 1
            ]
        )
        if not executions:
            return "None yet."
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">#{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
            "<td>{}</td></tr>",
            (
                (
                    reverse("admin:imports_execution_change", args=[execution.pk]),
                    execution.pk,
                    execution.file_name or "—",
                    moment(execution.created_ts),
                    uploader(execution),
                    status_label(execution),
                    outcome(execution),
                )
                for execution in executions[:RECENT_EXECUTIONS]
            ),
        )
        more = (
            format_html('<p><a href="{}">Every execution ›</a></p>', self._executions_url(obj))
            if len(executions) > RECENT_EXECUTIONS
            else ""
        )
        return format_html(
            '<table class="document-import-executions"><thead><tr><th>Execution</th><th>File</th>'
            "<th>Uploaded</th><th>Uploaded by</th><th>Status</th><th>Outcome</th></tr></thead>"
            "<tbody>{}</tbody></table>{}",
            rows,
            more,
        )

    @staticmethod
    def _executions_url(obj) -> str:
        return f"{reverse('admin:imports_execution_changelist')}?document_import={obj.pk}"

    @admin.display(description="Executions")
    def executions_link(self, obj):
        return format_html('<a href="{}">executions</a>', self._executions_url(obj))

    def save_form(self, request, form, change):
        # Django goes on with the definition the service saved (log entry, message, redirect).
        data = form.cleaned_data
        names = ("name", "document_type", "mime_type", "encoding", "column_mapping")
        fields = {key: data[key] for key in names}
        if change:
            return document_import_update(document_import=form.instance, **fields)
        return document_import_create(datamart=data["datamart"], **fields)

    def delete_model(self, request, obj):
        document_import_delete(document_import=obj)
