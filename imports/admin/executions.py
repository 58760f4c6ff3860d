"""Import executions: a list of who uploaded what and how it went, and a page per run that
follows it (polling `…/progress/`) and offers Cancel, Retry, Revert (a preview, then a
confirmation) and the failed-lines file."""

from __future__ import annotations

import math
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from imports.admin.execution_pace import (
    error_code_counts,
    failures,
    pace_facts,
    progress_chart,
    status_label,
)
from imports.admin.import_preview import mapping_rows
from imports.admin.permissions import can_import
from imports.models import DocumentImport, Execution
from imports.revert import execution_revert, execution_revert_check, execution_revert_preview
from imports.services import (
    ImportRefused,
    execution_cancel,
    execution_failed_lines,
    execution_retry,
)
from profiles.admin.display import moment, object_link
from profiles.admin.scoping import (
    DatamartListFilter,
    DatamartScopedAdmin,
    IdListFilter,
    scope_queryset,
    user_datamart_ids,
)
from profiles.merge import MergeMode, Strategy, merge_mode_label

ERRORS_PER_PAGE = 50
POLL_MILLISECONDS = 1000
COUNTER_LABELS = (
    ("total", "Lines in the file"),
    ("processed", "Processed"),
    ("created", "Created"),
    ("updated", "Updated"),
    ("deleted", "Deleted"),
    ("unchanged", "Unchanged"),
    ("not_found", "Not found"),
    ("failed", "Errors"),
)
# A revert's lines are the reverted execution's history rows; its counters count profiles.
REVERT_COUNTER_LABELS = (
    ("total", "Changes to undo"),
    ("processed", "Changes walked"),
    ("created", "Brought back"),
    ("updated", "Restored"),
    ("deleted", "Removed"),
    ("unchanged", "Unchanged"),
    ("not_found", "Not found"),
    ("failed", "Conflicts, errors"),
)


class DocumentImportListFilter(IdListFilter):
    """The document imports of the user's datamarts only (a plain FK filter would list all)."""

    title = "document import"
    parameter_name = "document_import"
    field = "document_import_id"

    def lookups(self, request, model_admin):
        document_imports = scope_queryset(
            DocumentImport.objects.select_related("datamart"),
            user_datamart_ids(request),
            "datamart_id",
        )
        return [(str(item.pk), f"{item.name} · {item.datamart.name}") for item in document_imports]


def uploader(execution: Execution) -> str:
    if execution.created_by_id:
        return str(execution.created_by)
    if execution.api_token_id:
        return f"API token {execution.api_token}"
    return "command line"


def uploader_link(request, execution: Execution) -> str:
    """Who uploaded, linked to their page (staff user, API token) for a viewer who may open it."""
    if execution.created_by_id:
        return object_link(request, execution.created_by)
    if execution.api_token_id:
        return object_link(
            request, execution.api_token, format_html("API token “{}”", execution.api_token.name)
        )
    return "command line"


def outcome(execution: Execution) -> str:
    parts = [
        f"{count:,} {label}"
        for count, label in (
            (execution.created, "created"),
            (execution.updated, "updated"),
            (execution.deleted, "deleted"),
            (execution.unchanged, "unchanged"),
            (execution.not_found, "not found"),
            (execution.failed, "error" if execution.failed == 1 else "errors"),
        )
        if count
    ]
    return " · ".join(parts) or "—"


def progress_payload(execution: Execution) -> dict[str, Any]:
    return {
        "id": execution.pk,
        "status": execution.status,
        "status_label": status_label(execution),
        "failures": failures(execution),
        "finished": execution.is_finished,
        "cancel_requested": execution.cancel_requested,
        "progress": execution.progress,
        "percent": math.floor(execution.progress * 100),
        "counters": execution.counters(),
        "error_code": execution.error_code,
        "error_message": execution.error_message,
    }


@admin.register(Execution)
class ExecutionAdmin(DatamartScopedAdmin):
    """Executions: a list of who uploaded what and how it went; a page per run, read-only."""

    # Six columns, each short, so the list fits a 1366 px screen beside the filters.
    list_display = (
        "execution",
        "file_column",
        "uploaded",
        "status_code",
        "pace",
        "outcome_column",
    )
    list_display_links = ("execution", "file_column")
    list_filter = (DatamartListFilter, "status", DocumentImportListFilter)
    list_select_related = ("document_import", "created_by", "api_token")
    ordering = ("-created_ts", "-id")
    sortable_by = ()
    search_fields = ("file_name",)
    search_help_text = "Part of the file name."
    show_facets = admin.ShowFacets.NEVER
    actions = None

    @staticmethod
    def may_view(request) -> bool:
        return can_import(request) or request.user.has_perm("imports.view_execution")

    def has_module_permission(self, request):
        return self.may_view(request)

    def has_view_permission(self, request, obj=None):
        return self.may_view(request)

    def has_add_permission(self, request):
        return False  # an execution is made by an upload

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the history names executions; they stay

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(
            request, {"title": "Import executions", **(extra_context or {})}
        )

    @admin.display(description="#", ordering="id")
    def execution(self, obj):
        return f"#{obj.pk}"

    @admin.display(description="File")
    def file_column(self, obj):
        return format_html(
            "{}<br><small>{}</small>", obj.file_name or "—", obj.document_import.name
        )

    @admin.display(description="Status")
    def status_code(self, obj):
        failed = failures(obj)
        return format_html(
            '<span class="imports-status {}">{}</span>{}',
            obj.status,
            obj.status,
            format_html(' <span class="imports-failures">· {}</span>', failed) if failed else "",
        )

    @admin.display(description="Pace")
    def pace(self, obj):
        facts = pace_facts(obj)
        eta = format_html("<br><small>ETA {}</small>", facts["eta"]) if "eta" in facts else ""
        return format_html(
            '<span class="imports-nowrap">{}</span> <span class="imports-nowrap">{}</span>{}',
            facts["duration"],
            facts["rate"],
            eta,
        )

    @admin.display(description="Uploaded")
    def uploaded(self, obj):
        return format_html("{}<br><small>by {}</small>", moment(obj.created_ts), uploader(obj))

    @admin.display(description="Outcome")
    def outcome_column(self, obj):
        # Each count stays whole ("1,234 created"); the line breaks only between counts.
        parts = outcome(obj).split(" · ")
        return format_html_join(
            " · ", '<span class="imports-nowrap">{}</span>', ((part,) for part in parts)
        )

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/progress/",
                wrap(self.progress_view),
                name="imports_execution_progress",
            ),
            path(
                "<path:object_id>/cancel/", wrap(self.cancel_view), name="imports_execution_cancel"
            ),
            path("<path:object_id>/retry/", wrap(self.retry_view), name="imports_execution_retry"),
            path(
                "<path:object_id>/revert/",
                wrap(self.revert_view),
                name="imports_execution_revert",
            ),
            path(
                "<path:object_id>/failed-lines/",
                wrap(self.failed_lines_view),
                name="imports_execution_failed_lines",
            ),
            *super().get_urls(),
        ]

    def _execution(self, request, object_id) -> Execution:
        if not self.may_view(request):
            raise PermissionDenied
        return self.get_object(request, unquote(object_id))  # 404 outside the user's datamarts

    def change_view(self, request, object_id, form_url="", extra_context=None):
        execution = self._execution(request, object_id)
        codes = error_code_counts(execution)
        code = request.GET.get("error_code", "")
        code = code if code in dict(codes) else ""
        shown = dict(codes)[code] if code else execution.failed
        page = _page_number(request.GET.get("errors_page"))
        pages = max(1, math.ceil(shown / ERRORS_PER_PAGE))
        page = min(page, pages)
        errors_query = execution.errors.filter(error_code=code) if code else execution.errors
        errors = list(
            errors_query.without_raw().order_by("line", "id")[
                (page - 1) * ERRORS_PER_PAGE : page * ERRORS_PER_PAGE
            ]
        )
        importer = can_import(request)
        retries = list(execution.retries.order_by("id").values_list("id", flat=True))
        reverted_by = list(execution.reverted_by.order_by("id").values_list("id", "status"))
        file_kept = bool(execution.file.name) and execution.file.storage.exists(execution.file.name)
        context = {
            **self.admin_site.each_context(request),
            "title": (
                f"Revert execution #{execution.pk}"
                if execution.reverts_id
                else f"Import execution #{execution.pk}"
            ),
            "subtitle": execution.file_name,
            "opts": self.opts,
            "execution": execution,
            "payload": progress_payload(execution),
            "counters": [
                (name, label, execution.counters()[name])
                for name, label in (
                    REVERT_COUNTER_LABELS if execution.reverts_id else COUNTER_LABELS
                )
            ],
            "uploader": uploader_link(request, execution),
            "datamart_link": object_link(request, execution.datamart),
            "document_import_link": object_link(
                request, execution.document_import, execution.document_import.name
            ),
            "column_mapping": mapping_rows(execution.column_mapping),
            "created": moment(execution.created_ts),
            "started": moment(execution.start_ts),
            "ended": moment(execution.end_ts),
            "status_label": status_label(execution),
            "pace": pace_facts(execution),
            "chart": progress_chart(execution),
            "error_codes": codes,
            "error_code": code,
            "errors_shown": shown,
            "errors": errors,
            "errors_page": page,
            "errors_pages": pages,
            "errors_per_page": ERRORS_PER_PAGE,
            "can_cancel": importer
            and execution.status in (Execution.Status.PENDING, Execution.Status.RUNNING)
            and not execution.cancel_requested,
            "can_retry": importer
            and execution.status in (Execution.Status.FAILED, Execution.Status.CANCELED)
            and file_kept,
            "can_download": importer and execution.failed > 0 and not execution.reverts_id,
            "can_revert": importer and _revertible(execution),
            "retries": retries,
            "reverted_by": reverted_by,
            "poll_milliseconds": POLL_MILLISECONDS,
            "default_mode": merge_mode_label(
                MergeMode(
                    Strategy(execution.default_update_strategy),
                    merge_objects=execution.default_merge_objects,
                )
            ),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/imports/execution/change_form.html", context)

    def progress_view(self, request, object_id):
        # Never cached: admin_view marks every admin response so.
        return JsonResponse(progress_payload(self._execution(request, object_id)))

    @method_decorator(require_POST)
    def cancel_view(self, request, object_id):
        execution = self._execution(request, object_id)
        if not can_import(request):
            raise PermissionDenied
        execution = execution_cancel(execution=execution)
        if execution.status == Execution.Status.CANCELED:
            messages.success(request, "The import is canceled: no line was applied.")
        elif execution.cancel_requested and not execution.is_finished:
            messages.success(
                request, "Cancel requested: the import stops after the chunk it is applying."
            )
        else:
            messages.info(
                request,
                f"The import had already finished ({execution.get_status_display().lower()}).",
            )
        return HttpResponseRedirect(reverse("admin:imports_execution_change", args=[execution.pk]))

    @method_decorator(require_POST)
    def retry_view(self, request, object_id):
        execution = self._execution(request, object_id)
        if not can_import(request):
            raise PermissionDenied
        try:
            retry = execution_retry(execution=execution)
        except ImportRefused as refused:
            messages.error(request, f"Cannot retry: {refused.message}.")
            return HttpResponseRedirect(
                reverse("admin:imports_execution_change", args=[execution.pk])
            )
        messages.success(request, f"Execution #{retry.pk} runs the same file again.")
        return HttpResponseRedirect(reverse("admin:imports_execution_change", args=[retry.pk]))

    def revert_view(self, request, object_id):
        """GET: what the revert would do, and a confirmation; POST: start it."""
        execution = self._execution(request, object_id)
        if not can_import(request):
            raise PermissionDenied
        page = reverse("admin:imports_execution_change", args=[execution.pk])
        if request.method == "POST":
            try:
                revert = execution_revert(
                    execution=execution,
                    force=request.POST.get("force") == "on",
                    created_by=request.user,
                )
            except ImportRefused as refused:
                messages.error(request, f"Cannot revert: {refused.message}.")
                return HttpResponseRedirect(page)
            messages.success(request, f"Execution #{revert.pk} reverts execution #{execution.pk}.")
            return HttpResponseRedirect(reverse("admin:imports_execution_change", args=[revert.pk]))
        try:
            execution_revert_check(execution=execution)
        except ImportRefused as refused:
            messages.error(request, f"Cannot revert: {refused.message}.")
            return HttpResponseRedirect(page)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Revert execution #{execution.pk}?",
            "subtitle": execution.file_name,
            "opts": self.opts,
            "execution": execution,
            "preview": execution_revert_preview(execution=execution),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/imports/execution/revert.html", context)

    def failed_lines_view(self, request, object_id):
        execution = self._execution(request, object_id)
        if not can_import(request):
            raise PermissionDenied
        failed_lines = execution_failed_lines(execution=execution)
        response = StreamingHttpResponse(
            failed_lines.chunks, content_type=failed_lines.content_type
        )
        response["Content-Disposition"] = f'attachment; filename="{failed_lines.file_name}"'
        return response


def _revertible(execution: Execution) -> bool:
    try:
        execution_revert_check(execution=execution)
    except ImportRefused:
        return False
    return True


def _page_number(value: str | None) -> int:
    return int(value) if value and value.isdigit() and int(value) > 0 else 1
