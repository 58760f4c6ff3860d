"""Document imports: made, changed and deleted in the user's datamarts, through services."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from imports.models import DocumentImport, Execution

DOCUMENT_IMPORTS = "/admin/imports/documentimport/"


def test_document_imports_are_listed_and_made_in_the_users_datamarts(
    importer_client, datamart, other_datamart
):
    DocumentImport.objects.create(datamart=other_datamart, name="Their CRM")
    response = importer_client.post(
        "/admin/imports/documentimport/add/",
        {
            "datamart": "1",
            "name": "CRM daily",
            "document_type": "USER_PROFILE",
            "mime_type": "TEXT_CSV",
            "encoding": "LATIN-1",
        },
    )
    assert response.status_code == 302
    created = DocumentImport.objects.get(name="CRM daily")
    assert (created.datamart, created.encoding) == (datamart, "iso8859-1")
    listing = importer_client.get("/admin/imports/documentimport/").content.decode()
    assert "CRM daily" in listing and "Their CRM" not in listing
    refused = importer_client.post(
        "/admin/imports/documentimport/add/",
        {"datamart": "2", "name": "x", "document_type": "USER_PROFILE", "mime_type": "TEXT_CSV"},
    )
    assert "Select a valid choice" in refused.content.decode()
    bad_encoding = importer_client.post(
        "/admin/imports/documentimport/add/",
        {
            "datamart": "1",
            "name": "y",
            "document_type": "USER_PROFILE",
            "mime_type": "TEXT_CSV",
            "encoding": "klingon",
        },
    )
    assert "not an encoding Python knows" in bad_encoding.content.decode()


def test_changing_a_document_import_keeps_its_datamart(importer_client, datamart, other_datamart):
    definition = DocumentImport.objects.create(datamart=datamart, name="CRM")
    response = importer_client.post(
        f"{DOCUMENT_IMPORTS}{definition.pk}/change/",
        {
            "datamart": other_datamart.pk,
            "name": "CRM weekly",
            "document_type": "USER_PROFILE",
            "mime_type": "APPLICATION_JSON",
            "encoding": "utf-8",
        },
    )
    assert response.status_code == 302
    definition.refresh_from_db()
    assert (definition.name, definition.mime_type, definition.datamart) == (
        "CRM weekly",
        "APPLICATION_JSON",
        datamart,
    )


def test_deleting_a_document_import_needs_the_model_permission(
    make_staff, login, datamart, importer_client
):
    definition = DocumentImport.objects.create(datamart=datamart, name="Old")
    url = f"{DOCUMENT_IMPORTS}{definition.pk}/delete/"
    assert importer_client.post(url, {"post": "yes"}).status_code == 403
    deleter = make_staff("dan", [datamart], ("profiles.import_profiles",))
    deleter.user_permissions.add(Permission.objects.get(codename="delete_documentimport"))
    client = login(get_user_model().objects.get(pk=deleter.pk))
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not DocumentImport.objects.filter(pk=definition.pk).exists()


def test_a_document_import_with_executions_is_kept(make_staff, login, datamart):
    """The history names executions: they are never deleted from the admin, nor with their
    definition."""
    definition = DocumentImport.objects.create(datamart=datamart, name="Used")
    Execution.objects.create(datamart=datamart, document_import=definition, file_name="a.csv")
    deleter = make_staff("dan", [datamart], ("profiles.import_profiles",))
    deleter.user_permissions.add(Permission.objects.get(codename="delete_documentimport"))
    client = login(get_user_model().objects.get(pk=deleter.pk))
    url = f"{DOCUMENT_IMPORTS}{definition.pk}/delete/"
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert Execution.objects.filter(document_import=definition).exists()
