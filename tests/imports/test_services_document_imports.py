"""Document import definitions, as the back-office writes them."""

from __future__ import annotations

from imports.models import DocumentImport
from imports.services import (
    document_import_create,
    document_import_delete,
    document_import_update,
)


def test_a_definition_is_made_changed_and_deleted(datamart):
    made = document_import_create(
        datamart=datamart,
        name="CRM",
        document_type="USER_PROFILE",
        mime_type="TEXT_CSV",
        encoding="utf-8",
    )
    document_import_update(
        document_import=made,
        name="CRM daily",
        document_type="USER_PROFILE",
        mime_type="APPLICATION_JSON",
        encoding="latin-1",
    )
    stored = DocumentImport.objects.get(pk=made.pk)
    assert (stored.datamart, stored.name, stored.mime_type, stored.encoding) == (
        datamart,
        "CRM daily",
        "APPLICATION_JSON",
        "latin-1",
    )
    document_import_delete(document_import=stored)
    assert not DocumentImport.objects.exists()
