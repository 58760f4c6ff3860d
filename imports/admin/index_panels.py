"""The admin index's panels: the latest imports and exports of the user's datamarts with their
outcome, and how many profiles each datamart holds. A handful of small queries: the index is
the page staff open most (the counts stop at a cap, as the lists do)."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse

from imports.admin.execution_pace import pace_facts, status_label
from imports.admin.executions import ExecutionAdmin, outcome
from imports.admin.permissions import can_export
from imports.models import Execution, ExportJob
from profiles.admin.display import moment
from profiles.admin.scoping import scope_queryset, user_datamart_ids
from profiles.models import Datamart, UserProfile
from profiles.paginators import EstimatedCountPaginator

RECENT = 5
DATAMARTS_COUNTED = 20


@dataclass(frozen=True)
class RecentRow:
    url: str
    title: str
    status: str
    status_label: str
    detail: str
    when: str


@dataclass(frozen=True)
class DatamartCount:
    name: str
    url: str
    profiles: str


def recent_imports(request: HttpRequest) -> list[RecentRow] | None:
    """The latest executions, or None when the user may not see executions."""
    if not ExecutionAdmin.may_view(request):
        return None
    executions = scope_queryset(
        Execution.objects.select_related("document_import"),
        user_datamart_ids(request),
        "datamart_id",
    ).order_by("-created_ts", "-id")[:RECENT]
    return [
        RecentRow(
            url=reverse("admin:imports_execution_change", args=[execution.pk]),
            title=f"#{execution.pk} {execution.file_name or execution.document_import.name}",
            status=execution.status,
            status_label=status_label(execution),
            detail=" · ".join(
                part for part in (outcome(execution), pace_facts(execution)["duration"]) if part
            ),
            when=moment(execution.created_ts),
        )
        for execution in executions
    ]


def recent_exports(request: HttpRequest) -> list[RecentRow] | None:
    """The latest worker-written exports, or None when the user may not export."""
    if not can_export(request):
        return None
    exports = scope_queryset(
        ExportJob.objects.select_related("datamart"), user_datamart_ids(request), "datamart_id"
    ).order_by("-created_ts", "-id")[:RECENT]
    return [
        RecentRow(
            url=reverse("admin:imports_exportjob_change", args=[job.pk]),
            title=f"#{job.pk} {job.file_format} · {job.datamart.name}",
            status=job.status,
            status_label=job.status,
            detail=(
                f"{job.rows:,} profile{'s' if job.rows != 1 else ''}"
                if job.rows is not None
                else job.error_message[:80]
            ),
            when=moment(job.created_ts),
        )
        for job in exports
    ]


def datamart_profile_counts(request: HttpRequest) -> list[DatamartCount] | None:
    """Profiles per datamart, counted as the profile list counts (exact up to its cap)."""
    if not request.user.has_perm("profiles.view_userprofile"):
        return None
    ids = user_datamart_ids(request)
    datamarts = scope_queryset(Datamart.objects.order_by("id"), ids, "id")[:DATAMARTS_COUNTED]
    rows = []
    for datamart in datamarts:
        paginator = EstimatedCountPaginator(UserProfile.objects.filter(datamart=datamart), 1)
        count = paginator.count
        rows.append(
            DatamartCount(
                name=str(datamart),
                url=f"{reverse('admin:profiles_userprofile_changelist')}?datamart={datamart.pk}",
                profiles=f"about {count:,}" if paginator.is_estimate else f"{count:,}",
            )
        )
    return rows
