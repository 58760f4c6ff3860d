"""Profile exports written by a worker: each page refreshes until its file is there, then
links to it."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from imports.admin.permissions import can_export
from imports.formats import format_spec
from imports.models import ExportJob
from profiles.admin.display import moment
from profiles.admin.scoping import DatamartListFilter, DatamartScopedAdmin


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
        "download",
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
        return moment(obj.created_ts)

    @admin.display(description="File")
    def download(self, obj):
        if obj.status != ExportJob.Status.SUCCEEDED or not obj.file.name:
            return "—"
        return format_html(
            '<a href="{}" class="export-download">Download ({})</a>',
            reverse("admin:imports_exportjob_download", args=[obj.pk]),
            obj.file_format,
        )

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
            content_type=format_spec(job.file_format).content_type,
        )
