"""Document imports, the named definitions (format, encoding) executions are recorded under:
created, changed and deleted here, for the back-office."""

from __future__ import annotations

from imports.models import DocumentImport
from profiles.models import Datamart


def document_import_create(
    *, datamart: Datamart, name: str, document_type: str, mime_type: str, encoding: str
) -> DocumentImport:
    return DocumentImport.objects.create(
        datamart=datamart,
        name=name,
        document_type=document_type,
        mime_type=mime_type,
        encoding=encoding,
    )


def document_import_update(
    *, document_import: DocumentImport, name: str, document_type: str, mime_type: str, encoding: str
) -> DocumentImport:
    """Its datamart stays: its executions keep theirs."""
    document_import.name, document_import.document_type = name, document_type
    document_import.mime_type, document_import.encoding = mime_type, encoding
    document_import.save(update_fields=["name", "document_type", "mime_type", "encoding"])
    return document_import


def document_import_delete(*, document_import: DocumentImport) -> None:
    """Deletes its executions with it (cascade); their history rows keep the execution id."""
    document_import.delete()
