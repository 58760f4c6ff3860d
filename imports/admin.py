"""The import and export screens of the back-office (issue 3, point 4), with django-import-export.

- The profile list gets Import and Export buttons: `ProfileImportExportAdmin` is
  `UserProfileAdmin` with django-import-export's `ImportExportMixin`, re-registered here. It
  keeps UserProfileAdmin's two permission methods (import and export are separate
  permissions) and its datamart scoping.
- Import: upload → preview (`services.import_preview`: a dry run, nothing written) → confirm →
  an execution (`services.execution_start`) that a worker runs; the upload is staged once
  (`imports.uploads`) and moved into the execution when confirmed.
- The execution's page follows the run by itself (a small script polls `…/progress/`), and
  offers Cancel, Retry and the failed-lines file (`services.execution_cancel`,
  `execution_retry`, `execution_failed_lines`).
- Export: the list's own queryset (its filters kept), written by `imports.resources` in the
  SPEC §3 layout and streamed; above `EXPORT_BACKGROUND_ROWS` profiles a worker writes it
  (`imports.exports`) and the export's page links to the file.

Views here parse, call a service and render; the work is in services, pipeline and writers.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import (
    FileResponse,
    Http404,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.text import Truncator
from django.views.decorators.http import require_POST
from import_export.admin import ImportExportMixin

from imports.admin_forms import (
    DocumentImportForm,
    ProfileConfirmImportForm,
    ProfileExportForm,
    ProfileImportForm,
)
from imports.exports import export_file_name, export_job_start, export_needs_background
from imports.models import DocumentImport, Execution, ExportJob
from imports.preview import ImportPreview
from imports.readers import FileFormat, ReaderOptions
from imports.resources import PROFILE_FORMATS, UserProfileResource, format_class_for
from imports.services import (
    ImportRefused,
    execution_cancel,
    execution_failed_lines,
    execution_retry,
    execution_start,
    import_preview,
)
from imports.uploads import (
    MovableFile,
    StagedUpload,
    document_import_for_upload,
    estimated_lines,
    staged_upload_delete,
    staged_upload_get,
    upload_stage,
)
from profiles.admin import PropertyListFilter, UserProfileAdmin, moment
from profiles.admin_scope import (
    DatamartListFilter,
    DatamartScopedAdmin,
    IdListFilter,
    scope_queryset,
    user_datamart_ids,
)
from profiles.engine import ProfileDiff
from profiles.history import changed_keys
from profiles.merge import choose_merge_mode
from profiles.models import Datamart, UserProfile
from profiles.permissions import EXPORT_PROFILES, IMPORT_PROFILES

logger = logging.getLogger(__name__)

SESSION_KEY = "imports_staged_uploads"
SESSION_UPLOADS = 10
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
PREVIEW_COUNT_LABELS = (
    ("created", "Creates"),
    ("updated", "Updates"),
    ("deleted", "Deletes"),
    ("unchanged", "Unchanged"),
    ("not_found", "Not found (DELETE)"),
    ("failed", "Errors"),
)
SERVICE_COVERAGE_WARNING = "the preview covers the first"
DELIMITER_NAMES = {",": "comma (,)", ";": "semicolon (;)", "\t": "tab", "|": "pipe (|)"}


def can_import(request) -> bool:
    return request.user.has_perm(IMPORT_PROFILES)


def can_export(request) -> bool:
    return request.user.has_perm(EXPORT_PROFILES)


# --------------------------------------------------------------------------- preview


@dataclass(frozen=True)
class DiffRow:
    key: str
    before: str
    after: str
    change: str  # "added" | "removed" | "changed" | "same"


@dataclass(frozen=True)
class DiffView:
    diff: ProfileDiff
    profile: str
    rows: list[DiffRow]


def _json_cell(value: Any) -> str:
    """JSON text, so "1" and 1 look different; long values shortened."""
    return Truncator(json.dumps(value, ensure_ascii=False)).chars(80)


def diff_view(diff: ProfileDiff) -> DiffView:
    """One previewed line as staff read it: each top-level key, before → after."""
    before, after = diff.before or {}, diff.after or {}
    changed = set(changed_keys(before, after))
    rows = []
    for key in dict.fromkeys([*before, *after]):
        if key not in before:
            change = "added"
        elif key not in after:
            change = "removed"
        else:
            change = "changed" if key in changed else "same"
        rows.append(
            DiffRow(
                key=key,
                before=_json_cell(before[key]) if key in before else "",
                after=_json_cell(after[key]) if key in after else "",
                change=change,
            )
        )
    profile = f"{diff.compartment_id}/{diff.user_account_id or 'anonymous'}"
    return DiffView(diff=diff, profile=profile, rows=rows)


def preview_context(preview: ImportPreview, staged: StagedUpload, file_format: FileFormat):
    counts = [(label, preview.counts.get(key, 0), key) for key, label in PREVIEW_COUNT_LABELS]
    if preview.truncated:
        total = estimated_lines(staged.path, file_format)
        coverage = (
            f"The preview covers the first {preview.lines:,} lines of about {total:,}."
            if total and total > preview.lines
            else f"The preview covers the first {preview.lines:,} lines; the file has more."
        )
    else:
        coverage = f"The preview covers the whole file: {preview.lines:,} lines."
    # The service says "the preview covers the first N lines" too; ours adds the file's size.
    warnings = [coverage] + [
        warning
        for warning in preview.warnings
        if not (preview.truncated and warning.startswith(SERVICE_COVERAGE_WARNING))
    ]
    return {
        "preview": preview,
        "preview_counts": counts,
        "preview_coverage": coverage,
        "preview_warnings": warnings,
        "preview_diffs": [diff_view(diff) for diff in preview.diffs],
        "preview_delimiter": DELIMITER_NAMES.get(preview.delimiter or "", preview.delimiter),
        "staged": staged,
        "file_format": file_format,
    }


# --------------------------------------------------------------------------- the profile list


class ProfileImportExportAdmin(ImportExportMixin, UserProfileAdmin):
    """The profile list with Import and Export buttons."""

    resource_classes = [UserProfileResource]
    import_form_class = ProfileImportForm
    confirm_form_class = ProfileConfirmImportForm
    export_form_class = ProfileExportForm
    import_export_change_list_template = "admin/imports/userprofile/change_list.html"
    import_template_name = "admin/imports/userprofile/import.html"
    export_template_name = "admin/imports/userprofile/export.html"
    skip_admin_log = True

    # django-import-export's own versions read other settings: keep the profile admin's.
    has_import_permission = UserProfileAdmin.has_import_permission
    has_export_permission = UserProfileAdmin.has_export_permission

    def get_import_formats(self):
        return list(PROFILE_FORMATS)

    def get_export_formats(self):
        return list(PROFILE_FORMATS)

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        extra_context["executions_url"] = (
            reverse("admin:imports_execution_changelist")
            if ExecutionAdmin.may_view(request)
            else None
        )
        return super().changelist_view(request, extra_context)

    # -- import: upload and preview

    def get_import_form_kwargs(self, request):
        kwargs = super().get_import_form_kwargs(request)
        kwargs["datamart_ids"] = user_datamart_ids(request)
        return kwargs

    def import_action(self, request, **kwargs):
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = self.create_import_form(request)
        context: dict[str, Any] = {}
        if request.method == "POST" and form.is_valid():
            previewed = self._stage_and_preview(request, form)
            if previewed is not None:
                context.update(previewed)
                context["confirm_form"] = ProfileConfirmImportForm(
                    initial={"token": previewed["staged"].token}
                )
        return self._import_page(request, form, context)

    def _import_page(self, request, form, context):
        context = {
            **self.admin_site.each_context(request),
            "title": "Preview the import" if context.get("preview") else "Import profiles",
            "form": form,
            "opts": self.model._meta,
            "media": self.media + form.media,
            "resource_columns": [
                field.column_name for field in UserProfileResource().get_user_visible_fields()
            ],
            "preview_lines": settings.IMPORT_PREVIEW_LINES,
            "process_url": reverse("admin:profiles_userprofile_process_import"),
            **context,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, [self.import_template_name], context)

    def _stage_and_preview(self, request, form) -> dict[str, Any] | None:
        """Stage the upload and preview it; a file that cannot be read becomes a form error."""
        data = form.cleaned_data
        file_format: FileFormat = data["file_format"]
        staged = upload_stage(upload=data["import_file"])
        mode = choose_merge_mode(
            update_strategy=data["update_strategy"], merge_objects=data["merge_objects"]
        )
        try:
            preview = import_preview(
                datamart=data["datamart"],
                path=staged.path,
                file_format=file_format,
                options=ReaderOptions(encoding=data["encoding"]),
                default_mode=mode,
                max_lines=settings.IMPORT_PREVIEW_LINES,
            )
        except Exception as problem:  # a file no reader foresaw must not answer 500
            logger.exception("preview of %s failed", staged.file_name)
            preview = ImportPreview(
                file_error_code="UNREADABLE_FILE", file_error_message=str(problem) or repr(problem)
            )
        problem = ""
        if not preview.ok:
            problem = (
                f"This file cannot be imported as {file_format.value} "
                f"({data['encoding']}): {preview.file_error_message} "
                f"[{preview.file_error_code}]. Check the format and the encoding."
            )
        elif preview.lines == 0:
            problem = "The file holds no line to import."
        if problem:
            staged_upload_delete(staged.token)
            form.add_error("import_file", problem)
            return None
        uploads = request.session.get(SESSION_KEY, {})
        # Previews never confirmed: the session remembers the last few, older ones go.
        for token in list(uploads)[: max(0, len(uploads) - SESSION_UPLOADS + 1)]:
            del uploads[token]
            staged_upload_delete(token)
        uploads[staged.token] = {
            "file_name": staged.file_name,
            "datamart_id": data["datamart"].pk,
            "document_import_id": data["document_import"].pk if data["document_import"] else None,
            "file_format": file_format.value,
            "encoding": data["encoding"],
            "update_strategy": mode.strategy.value,
            "merge_objects": mode.merge_objects,
        }
        request.session[SESSION_KEY] = uploads
        return preview_context(preview, staged, file_format)

    # -- import: confirm

    @method_decorator(require_POST)
    def process_import(self, request, **kwargs):
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = ProfileConfirmImportForm(request.POST)
        import_url = reverse("admin:profiles_userprofile_import")
        uploads = request.session.get(SESSION_KEY, {})
        token = form.cleaned_data["token"] if form.is_valid() else ""
        options = uploads.get(token)
        staged = staged_upload_get(token, options["file_name"]) if options else None
        if staged is None:
            messages.error(
                request,
                "This upload was already confirmed, or it expired: upload the file again.",
            )
            return HttpResponseRedirect(import_url)
        datamart = scope_queryset(
            Datamart.objects.filter(pk=options["datamart_id"]), user_datamart_ids(request), "id"
        ).first()
        if datamart is None:
            raise Http404("no such datamart here")
        file_format = FileFormat(options["file_format"])
        document_import = (
            DocumentImport.objects.filter(
                pk=options["document_import_id"], datamart=datamart
            ).first()
            if options["document_import_id"]
            else document_import_for_upload(datamart=datamart, file_format=file_format)
        )
        if document_import is None:
            messages.error(request, "That document import no longer exists: upload again.")
            return HttpResponseRedirect(import_url)
        with MovableFile(staged.path, name=staged.file_name) as upload:
            execution = execution_start(
                document_import=document_import,
                upload=upload,
                file_name=staged.file_name,
                created_by=request.user,
                default_update_strategy=options["update_strategy"],
                default_merge_objects=options["merge_objects"],
                file_format=file_format.value,
                encoding=options["encoding"],
            )
        staged_upload_delete(token)
        uploads.pop(token, None)
        request.session[SESSION_KEY] = uploads
        messages.success(
            request,
            f"The import of “{staged.file_name}” is queued: this page follows it as it runs.",
        )
        return HttpResponseRedirect(reverse("admin:imports_execution_change", args=[execution.pk]))

    # -- export

    def export_action(self, request):
        if not self.has_export_permission(request):
            raise PermissionDenied
        form = ProfileExportForm(
            self.get_export_formats(),
            self.get_export_resource_classes(request),
            data=request.POST or None,
            datamart_ids=user_datamart_ids(request),
            initial={"datamart": request.GET.get(DatamartListFilter.parameter_name)},
        )
        try:
            queryset = self.get_export_queryset(request)
        except IncorrectLookupParameters:
            messages.error(request, "The list's filters are not valid: set them again.")
            return HttpResponseRedirect(reverse("admin:profiles_userprofile_changelist"))
        if request.method == "POST" and form.is_valid():
            datamart = form.cleaned_data["datamart"]
            file_format = form.file_format
            queryset = queryset.filter(datamart=datamart)
            if export_needs_background(queryset):
                job = export_job_start(
                    datamart=datamart,
                    user=request.user,
                    file_format=file_format,
                    filters=request.GET.urlencode(),
                    filters_label=" · ".join(
                        f"{title}: {value}" for title, value in self.list_filter_labels(request)
                    ),
                )
                messages.success(
                    request,
                    f"More than {settings.EXPORT_BACKGROUND_ROWS:,} profiles: the file is being "
                    "written in the background. This page links to it when it is ready.",
                )
                return HttpResponseRedirect(
                    reverse("admin:imports_exportjob_change", args=[job.pk])
                )
            return self._export_response(queryset, datamart, file_format)
        threshold = settings.EXPORT_BACKGROUND_ROWS
        matching = queryset.order_by()[: threshold + 1].count()
        filters = self.list_filter_labels(request)
        context = {
            **self.admin_site.each_context(request),
            "title": "Export profiles",
            "form": form,
            "opts": self.model._meta,
            "media": self.media + form.media,
            "filters": filters,
            "matching": matching,
            "matching_over": matching > threshold,
            "threshold": threshold,
            "changelist_url": reverse("admin:profiles_userprofile_changelist")
            + (f"?{request.GET.urlencode()}" if request.GET else ""),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, [self.export_template_name], context)

    def list_filter_labels(self, request) -> list[tuple[str, str]]:
        """The list's filters and search as staff read them, e.g. ("compartment", "CRM (1606)")."""
        changelist = self.get_changelist_instance(request)
        labels = []
        for spec in changelist.filter_specs:
            if not any(name in request.GET for name in spec.expected_parameters()):
                continue
            if isinstance(spec, PropertyListFilter):
                labels.append((str(spec.title), spec.value() or ""))
                continue
            chosen = [str(c["display"]) for c in spec.choices(changelist) if c.get("selected")]
            labels.append((str(spec.title), ", ".join(chosen)))
        if changelist.query:
            labels.append(("search", changelist.query))
        return labels

    def _export_response(self, queryset, datamart, file_format: FileFormat):
        response = StreamingHttpResponse(
            UserProfileResource().stream(queryset, file_format),
            content_type=format_class_for(file_format)().get_content_type(),
        )
        response["Content-Disposition"] = (
            f'attachment; filename="{export_file_name(datamart, file_format)}"'
        )
        return response


admin.site.unregister(UserProfile)
admin.site.register(UserProfile, ProfileImportExportAdmin)


# --------------------------------------------------------------------------- executions


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

    list_display = (
        "execution",
        "file_name",
        "document_import_name",
        "uploaded_by",
        "uploaded",
        "status_code",
        "outcome_column",
    )
    list_display_links = ("execution", "file_name")
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

    @admin.display(description="Execution", ordering="id")
    def execution(self, obj):
        return f"#{obj.pk}"

    @admin.display(description="Document import")
    def document_import_name(self, obj):
        return obj.document_import.name

    @admin.display(description="Status")
    def status_code(self, obj):
        return obj.status

    @admin.display(description="Uploaded by")
    def uploaded_by(self, obj):
        return uploader(obj)

    @admin.display(description="Uploaded")
    def uploaded(self, obj):
        return f"{obj.created_ts:%Y-%m-%d %H:%M:%S}"

    @admin.display(description="Outcome")
    def outcome_column(self, obj):
        return outcome(obj)

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
        page = _page_number(request.GET.get("errors_page"))
        pages = max(1, math.ceil(execution.failed / ERRORS_PER_PAGE))
        page = min(page, pages)
        errors = list(
            execution.errors.order_by("line", "id")[
                (page - 1) * ERRORS_PER_PAGE : page * ERRORS_PER_PAGE
            ]
        )
        importer = can_import(request)
        retries = list(execution.retries.order_by("id").values_list("id", flat=True))
        file_kept = bool(execution.file.name) and execution.file.storage.exists(execution.file.name)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Import execution #{execution.pk}",
            "subtitle": execution.file_name,
            "opts": self.opts,
            "execution": execution,
            "payload": progress_payload(execution),
            "counters": [
                (name, label, execution.counters()[name]) for name, label in COUNTER_LABELS
            ],
            "uploader": uploader(execution),
            "created": moment(execution.created_ts),
            "started": moment(execution.start_ts),
            "ended": moment(execution.end_ts),
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
            "can_download": importer and execution.failed > 0,
            "retries": retries,
            "poll_milliseconds": POLL_MILLISECONDS,
            "default_mode": (
                f"{execution.default_update_strategy}"
                + (
                    ", merge_objects"
                    if execution.default_update_strategy == "PARTIAL_UPDATE"
                    and execution.default_merge_objects
                    else ""
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
            messages.info(request, f"The import had already finished: {execution.status}.")
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


def _page_number(value: str | None) -> int:
    return int(value) if value and value.isdigit() and int(value) > 0 else 1


# --------------------------------------------------------------------------- document imports


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
        return ("datamart", "created_ts") if obj else ()

    def get_fields(self, request, obj=None):
        fields = ("datamart", "name", "document_type", "mime_type", "encoding")
        return (*fields, "created_ts") if obj else fields

    @admin.display(description="Executions")
    def executions_link(self, obj):
        return format_html(
            '<a href="{}?document_import={}">executions</a>',
            reverse("admin:imports_execution_changelist"),
            obj.pk,
        )


# --------------------------------------------------------------------------- export jobs


@admin.register(ExportJob)
class ExportJobAdmin(DatamartScopedAdmin):
    """Exports written by a worker; each page links to its file once written."""

    list_display = (
        "export",
        "datamart",
        "file_format",
        "created_by",
        "requested",
        "status",
        "rows",
    )
    list_filter = (DatamartListFilter, "status")
    list_select_related = ("datamart", "created_by")
    ordering = ("-created_ts", "-id")
    sortable_by = ()
    show_facets = admin.ShowFacets.NEVER
    actions = None

    def has_module_permission(self, request):
        return can_export(request)

    def has_view_permission(self, request, obj=None):
        return can_export(request)

    def has_add_permission(self, request):
        return False  # started from the profile list's Export button

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Export", ordering="id")
    def export(self, obj):
        return f"#{obj.pk}"

    @admin.display(description="Requested")
    def requested(self, obj):
        return f"{obj.created_ts:%Y-%m-%d %H:%M:%S}"

    def get_urls(self):
        return [
            path(
                "<path:object_id>/download/",
                self.admin_site.admin_view(self.download_view),
                name="imports_exportjob_download",
            ),
            *super().get_urls(),
        ]

    def _job(self, request, object_id) -> ExportJob:
        if not can_export(request):
            raise PermissionDenied
        return self.get_object(request, unquote(object_id))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self._job(request, object_id)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Profile export #{job.pk}",
            "opts": self.opts,
            "job": job,
            "requested": moment(job.created_ts),
            "started": moment(job.start_ts),
            "ended": moment(job.end_ts),
            "filters": job.filters_label,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/imports/exportjob/change_form.html", context)

    def download_view(self, request, object_id):
        job = self._job(request, object_id)
        if job.status != ExportJob.Status.SUCCEEDED or not job.file.name:
            raise Http404("this export has no file yet")
        try:
            stream = job.file.open("rb")
        except FileNotFoundError:
            raise Http404("the file of this export was deleted") from None
        return FileResponse(
            stream,
            as_attachment=True,
            filename=job.file.name.rsplit("/", 1)[-1],
            content_type=format_class_for(job.file_format)().get_content_type(),
        )
