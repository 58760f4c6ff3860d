"""Starting and cancelling executions: the contract the API and the admin call.

Minimal version for the API branch: it stores the file and creates the PENDING execution.
The import pipeline's version (branch `imports`) replaces this module; it keeps these two
signatures and also enqueues the Celery task on commit.
"""

from __future__ import annotations

from django.core.files import File
from django.db import transaction

from imports.models import DocumentImport, Execution

_FORMATS = {
    DocumentImport.MimeType.NDJSON: "NDJSON",
    DocumentImport.MimeType.CSV: "CSV",
    DocumentImport.MimeType.JSON: "JSON",
    DocumentImport.MimeType.XLSX: "XLSX",
}


def execution_start(
    *,
    document_import: DocumentImport,
    upload: File,
    file_name: str,
    created_by=None,
    api_token=None,
    default_update_strategy: str = "PARTIAL_UPDATE",
    default_merge_objects: bool = True,
) -> Execution:
    with transaction.atomic():
        execution = Execution(
            datamart_id=document_import.datamart_id,
            document_import=document_import,
            file_name=file_name[:255],
            file_size=upload.size or 0,
            file_format=_FORMATS.get(document_import.mime_type, ""),
            encoding=document_import.encoding,
            default_update_strategy=default_update_strategy,
            default_merge_objects=default_merge_objects,
            created_by=created_by,
            api_token=api_token,
        )
        execution.file.save(file_name, upload, save=False)
        execution.save()
    return execution


def execution_cancel(*, execution: Execution) -> Execution:
    if execution.status == Execution.Status.PENDING and execution.transition(
        Execution.Status.CANCELED
    ):
        return execution
    if not execution.is_finished:
        execution.cancel_requested = True
        Execution.objects.filter(pk=execution.pk).update(cancel_requested=True)
    return execution
