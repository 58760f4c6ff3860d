"""Profile exports: the profiles the list shows, written in the layout of SPEC §3.

Small exports stream from the request; above `EXPORT_BACKGROUND_ROWS` profiles an `ExportJob`
is queued on commit and a worker writes the file (`export_job_run`, idempotent: running it
again writes the same file). The job keeps the list's query string; the worker reads the
profiles through the list's own selector (`profiles.selectors.user_profiles_for_list`) for the
user who asked, so the file holds what the list showed that user, and nothing of a datamart
they no longer see.
"""

from __future__ import annotations

import logging
import os
import tempfile

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import QuerySet
from django.http import QueryDict
from django.utils import timezone

from imports.export_files import export_write
from imports.formats import FileFormat, format_spec
from imports.models import ExportJob
from imports.tasks import run_export_job
from imports.uploads import MovableFile
from profiles.errors import ProfileError
from profiles.models import Datamart, UserProfile
from profiles.permissions import EXPORT_PROFILES
from profiles.selectors import ProfileListFilters, datamart_ids_visible_to, user_profiles_for_list

logger = logging.getLogger(__name__)


class ExportRefused(ProfileError):
    """An export that may not run (no permission any more, a datamart out of sight)."""


def export_file_name(datamart: Datamart, file_format: FileFormat | str) -> str:
    extension = format_spec(file_format).extension
    return f"profiles-datamart-{datamart.pk}-{timezone.now():%Y%m%d-%H%M%S}.{extension}"


def export_needs_background(queryset: QuerySet) -> bool:
    """More profiles than one request should write? Counts at most the threshold plus one."""
    threshold = settings.EXPORT_BACKGROUND_ROWS
    return queryset.order_by()[: threshold + 1].count() > threshold


def export_job_start(
    *,
    datamart: Datamart,
    user,
    file_format: FileFormat | str,
    filters: str,
    filters_label: str = "",
) -> ExportJob:
    """A PENDING export job, queued for a worker once the transaction commits."""
    with transaction.atomic():
        job = ExportJob.objects.create(
            datamart=datamart,
            created_by=user,
            file_format=FileFormat(file_format).value,
            filters=filters,
            filters_label=filters_label,
        )
        run_export_job.delay_on_commit(job.pk)
    return job


def export_profiles_for(*, user, datamart: Datamart, filters: str) -> QuerySet[UserProfile]:
    """The profiles the list shows `user` with `filters` (its query string), in `datamart`;
    refused when that user may no longer export or see the datamart."""
    if not user.is_active or not user.has_perm(EXPORT_PROFILES):
        raise ExportRefused("EXPORT_REFUSED", f"{user} may not export profiles any more")
    visible = datamart_ids_visible_to(user=user)
    if visible is not None and datamart.pk not in visible:
        raise ExportRefused("EXPORT_REFUSED", f"{user} does not see datamart {datamart} any more")
    return user_profiles_for_list(
        user=user, datamart=datamart, filters=ProfileListFilters.from_query(QueryDict(filters))
    )


def export_job_run(*, export_job_id: int) -> None:
    """Write the job's file. A finished job is left alone; a RUNNING one (its worker died) is
    written again from the start."""
    claimed = ExportJob.objects.filter(
        pk=export_job_id, status__in=[ExportJob.Status.PENDING, ExportJob.Status.RUNNING]
    ).update(status=ExportJob.Status.RUNNING, start_ts=timezone.now())
    if not claimed:
        return
    job = ExportJob.objects.select_related("created_by", "datamart").get(pk=export_job_id)
    directory = default_storage.path("exports/tmp")
    os.makedirs(directory, exist_ok=True)
    handle, path = tempfile.mkstemp(dir=directory, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            queryset = export_profiles_for(
                user=job.created_by, datamart=job.datamart, filters=job.filters
            )
            rows = export_write(queryset, job.file_format, out)
        with MovableFile(path) as written:
            job.file.save(export_file_name(job.datamart, job.file_format), written, save=False)
    except Exception as problem:
        if isinstance(problem, ProfileError):
            message = problem.message
        else:
            logger.exception("export job %s failed", export_job_id)
            message = f"the export stopped on an unexpected error: {problem!r}"[:2000]
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJob.Status.FAILED, end_ts=timezone.now(), error_message=message
        )
        return
    finally:
        if os.path.exists(path):
            os.unlink(path)
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportJob.Status.SUCCEEDED, end_ts=timezone.now(), rows=rows, file=job.file.name
    )
