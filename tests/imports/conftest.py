from __future__ import annotations

import pytest

from imports.models import DocumentImport


@pytest.fixture
def document_import(datamart, crm_compartment) -> DocumentImport:
    return DocumentImport.objects.create(
        datamart=datamart, name="CRM", mime_type=DocumentImport.MimeType.NDJSON
    )


@pytest.fixture
def csv_import(datamart, crm_compartment) -> DocumentImport:
    return DocumentImport.objects.create(
        datamart=datamart, name="CRM (CSV)", mime_type=DocumentImport.MimeType.CSV
    )
