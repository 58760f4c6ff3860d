"""The profile list's import and export screens (issue 3, point 4), with django-import-export.

- `ProfileImportExportAdmin` is `UserProfileAdmin` (profiles/admin/user_profiles.py) with
  django-import-export's `ImportExportMixin`, and the one admin registered for UserProfile. It
  keeps UserProfileAdmin's two permission methods (import and export are separate
  permissions) and its datamart scoping.
- Import: upload → preview (`imports.preview.import_preview`: a dry run, nothing written) → confirm →
  an execution (`services.execution_start`) that a worker runs; the upload is staged once
  (`imports.uploads`) and moved into the execution when confirmed.
- Export: the list's own rows (`listed_profiles`: its filters and search), written by
  `imports.export_files` in the SPEC §3 layout and streamed; above `EXPORT_BACKGROUND_ROWS`
  profiles a worker writes it (`imports.exports`) and the export's page links to the file.
  The file holds one datamart: the user's only one, or the one the list's filters name
  (`list_datamart_id`), else the one chosen in the form (`ProfileExportForm`).

Views here parse, call a service and render; the work is in services, pipeline and writers.
"""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpResponse,
    HttpResponseRedirect,
    QueryDict,
    StreamingHttpResponse,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST
from import_export.admin import ImportExportMixin

from imports.admin.executions import ExecutionAdmin
from imports.admin.forms import (
    ColumnMappingForm,
    ProfileConfirmImportForm,
    ProfileExportForm,
    ProfileImportForm,
)
from imports.admin.import_preview import preview_context, upload_options_view, upload_preview
from imports.admin.mapping_step import (
    mapping_form_for_upload,
    mapping_step_context,
    mapping_step_for_upload,
)
from imports.export_files import export_stream
from imports.exports import export_file_name, export_job_start, export_needs_background
from imports.formats import FileFormat, format_spec
from imports.models import DocumentImport
from imports.resources import PROFILE_FORMATS, UserProfileResource
from imports.samples import SAMPLE_NDJSON, SAMPLES, sample_file
from imports.services import ImportRefused, document_import_column_mapping_save, execution_start
from imports.uploads import (
    MovableFile,
    back_office_document_import,
    document_import_for_upload,
    staged_upload_delete,
    staged_upload_get,
    upload_stage,
)
from profiles.admin.scoping import (
    DatamartListFilter,
    scope_queryset,
    selected_compartment,
    user_datamart_ids,
)
from profiles.admin.user_profiles import PropertyListFilter, UserProfileAdmin
from profiles.merge import choose_merge_mode, merge_mode_label
from profiles.models import Datamart, UserProfile
from profiles.selectors import ORDERING_PARAMETER, PROFILE_LIST_ORDERING

logger = logging.getLogger(__name__)

SESSION_KEY = "imports_staged_uploads"
SESSION_UPLOADS = 10


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

    def get_urls(self):
        sample = path(
            "import/sample.<str:extension>",
            self.admin_site.admin_view(self.sample_view),
            name="profiles_userprofile_import_sample",
        )
        mapping = path(
            "import/mapping/",
            self.admin_site.admin_view(self.import_mapping_view),
            name="profiles_userprofile_import_mapping",
        )
        return [sample, mapping, *super().get_urls()]

    def sample_view(self, request, extension: str):
        """A sample file to start an import from (imports.samples)."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        file_format = next((fmt for fmt in SAMPLES if fmt.value.lower() == extension), None)
        if file_format is None:
            raise Http404("no sample in that format")
        name, content = sample_file(file_format)
        response = HttpResponse(content, content_type=format_spec(file_format).content_type)
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def import_action(self, request, **kwargs):
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = self.create_import_form(request)
        context: dict[str, Any] = {}
        if request.method == "POST" and form.is_valid():
            context = self._stage_and_step(request, form)
        return self._import_page(request, form, context)

    def _import_page(self, request, form, context):
        title = "Import profiles"
        if context.get("preview"):
            title = "Preview the import"
        elif context.get("mapping_form"):
            title = "Map the file's columns"
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "form": form,
            "opts": self.model._meta,
            "media": self.media + (form.media if form is not None else forms.Media()),
            "resource_columns": [
                field.column_name for field in UserProfileResource().get_user_visible_fields()
            ],
            "preview_lines": settings.IMPORT_PREVIEW_LINES,
            "sample_ndjson": SAMPLE_NDJSON,
            "sample_formats": [fmt.value.lower() for fmt in SAMPLES],
            "process_url": reverse("admin:profiles_userprofile_process_import"),
            "mapping_url": reverse("admin:profiles_userprofile_import_mapping"),
            **context,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, [self.import_template_name], context)

    def _stage_and_step(self, request, form) -> dict[str, Any]:
        """Stage the upload, then its next step: the column mapping when its headers are not
        all known, else the preview. A file that cannot be read becomes a form error."""
        data = form.cleaned_data
        file_format: FileFormat = data["file_format"]
        staged = upload_stage(upload=data["import_file"])
        mode = choose_merge_mode(
            update_strategy=data["update_strategy"], merge_objects=data["merge_objects"]
        )
        options = {
            "file_name": staged.file_name,
            "datamart_id": data["datamart"].pk,
            "document_import_id": data["document_import"].pk if data["document_import"] else None,
            "file_format": file_format.value,
            "encoding": data["encoding"],
            "update_strategy": mode.strategy.value,
            "merge_objects": mode.merge_objects,
            "empty_cell_is_empty_string": data["empty_cell_is_empty_string"],
            "column_mapping": None,
        }
        step = mapping_step_for_upload(
            staged=staged,
            file_format=file_format,
            encoding=data["encoding"],
            document_import=data["document_import"]
            or back_office_document_import(datamart=data["datamart"], file_format=file_format),
        )
        if step.problem:
            staged_upload_delete(staged.token)
            form.add_error("import_file", step.problem)
            return {}
        self._remember_upload(request, staged.token, options)
        if step.form is not None:
            return mapping_step_context(step.form, staged, options)
        options["column_mapping"] = step.saved_mapping
        return self._preview_or_error(request, staged, options, form=form)

    def _remember_upload(self, request, token: str, options: dict[str, Any]) -> None:
        uploads = request.session.get(SESSION_KEY, {})
        if token not in uploads:
            # Previews never confirmed: the session remembers the last few, older ones go.
            for old in list(uploads)[: max(0, len(uploads) - SESSION_UPLOADS + 1)]:
                del uploads[old]
                staged_upload_delete(old)
        uploads[token] = options
        request.session[SESSION_KEY] = uploads

    def _preview_or_error(self, request, staged, options, *, form) -> dict[str, Any]:
        """The preview's context; a file that cannot be imported is an error of `form`."""
        preview, problem = upload_preview(staged=staged, options=options)
        if problem:
            form.add_error(None if isinstance(form, ColumnMappingForm) else "import_file", problem)
            if isinstance(form, ColumnMappingForm):
                return mapping_step_context(form, staged, options)
            staged_upload_delete(staged.token)
            return {}
        self._remember_upload(request, staged.token, options)
        context = preview_context(
            preview, staged, FileFormat(options["file_format"]), datamart_id=options["datamart_id"]
        )
        context["confirm_form"] = ProfileConfirmImportForm(initial={"token": staged.token})
        context["upload_options"] = upload_options_view(options)
        context["default_mode"] = merge_mode_label(
            choose_merge_mode(
                update_strategy=options["update_strategy"], merge_objects=options["merge_objects"]
            )
        )
        return context

    def import_mapping_view(self, request):
        """The mapping step's answer (POST), or the step again from the preview (GET ?token=)."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        token = request.POST.get("token") or request.GET.get("token") or ""
        options = request.session.get(SESSION_KEY, {}).get(token)
        staged = staged_upload_get(token, options["file_name"]) if options else None
        if staged is None:
            messages.error(request, "This upload was confirmed, or it expired: upload it again.")
            return HttpResponseRedirect(reverse("admin:profiles_userprofile_import"))
        form = mapping_form_for_upload(
            staged=staged, options=options, data=request.POST if request.method == "POST" else None
        )
        if form is None:
            messages.error(request, "This file can no longer be read: upload it again.")
            return HttpResponseRedirect(reverse("admin:profiles_userprofile_import"))
        if request.method == "POST" and form.is_valid():
            options = {**options, "column_mapping": form.mapping.as_json()}
            context = self._preview_or_error(request, staged, options, form=form)
        else:
            context = mapping_step_context(form, staged, options)
        return self._import_page(request, None, context)

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
        mapping = options.get("column_mapping")
        if mapping is not None and mapping != document_import.column_mapping:
            try:  # kept on the definition: proposed again for its next file
                document_import_column_mapping_save(
                    document_import=document_import, column_mapping=mapping
                )
            except ImportRefused as problem:
                messages.error(request, f"{document_import.name}: {problem.message}")
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
                column_mapping=mapping,  # what the preview read it through, none for SPEC §3
                empty_cell_is_empty_string=options.get("empty_cell_is_empty_string", False),
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
            list_datamart_id=list_datamart_id(request),
        )
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            messages.error(request, "The list's filters are not valid: set them again.")
            return HttpResponseRedirect(reverse("admin:profiles_userprofile_changelist"))
        ordering = self.list_ordering(request, changelist)
        queryset = self.listed_profiles(request, ordering=ordering)
        if request.method == "POST" and form.is_valid():
            datamart = form.cleaned_data["datamart"]
            file_format = form.file_format
            queryset = queryset.filter(datamart=datamart)
            if export_needs_background(queryset):
                job = export_job_start(
                    datamart=datamart,
                    user=request.user,
                    file_format=file_format,
                    filters=export_query_string(request.GET, ordering),
                    filters_label=" · ".join(
                        f"{title}: {value}"
                        for title, value in self.list_filter_labels(request, changelist)
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
        filters = self.list_filter_labels(request, changelist)
        context = {
            **self.admin_site.each_context(request),
            "title": "Export profiles",
            "datamart": form.datamart,
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

    def list_filter_labels(self, request, changelist) -> list[tuple[str, str]]:
        """The list's filters and search as staff read them, e.g. ("compartment", "CRM (1606)")."""
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
            export_stream(queryset, file_format),
            content_type=format_spec(file_format).content_type,
        )
        response["Content-Disposition"] = (
            f'attachment; filename="{export_file_name(datamart, file_format)}"'
        )
        return response


def list_datamart_id(request) -> int | None:
    """The datamart the list's filters name: its datamart filter, else the datamart of its
    compartment filter; None when they name none (the export form then asks, if need be)."""
    value = request.GET.get(DatamartListFilter.parameter_name, "")
    if value.isdigit():
        return int(value)
    compartment = selected_compartment(request)
    return compartment.datamart_id if compartment is not None else None


def export_query_string(query: QueryDict, ordering: tuple[str, ...]) -> str:
    """What an export job keeps: the list's query string, and its order as field names when
    it is not the default one (the worker does not read the list's column positions)."""
    if ordering == PROFILE_LIST_ORDERING:
        return query.urlencode()
    query = query.copy()
    query[ORDERING_PARAMETER] = ",".join(ordering)
    return query.urlencode()


admin.site.register(UserProfile, ProfileImportExportAdmin)
