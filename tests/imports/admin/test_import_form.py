"""The import form: its sample files (CSV, NDJSON) and its NDJSON example; the empty profile
list's hint."""

from __future__ import annotations

from imports.formats import FileFormat
from imports.samples import sample_file
from tests.imports.admin.conftest import IMPORT_URL, PROFILES


def test_the_import_page_offers_the_samples_and_shows_an_ndjson_example(importer_client):
    page = importer_client.get(IMPORT_URL).content.decode()
    assert f'href="{IMPORT_URL}sample.csv"' in page and f'href="{IMPORT_URL}sample.ndjson"' in page
    assert 'id="ndjson-example">{&quot;operation&quot;: &quot;UPSERT&quot;' in page
    download = importer_client.get(f"{IMPORT_URL}sample.ndjson")
    assert download["Content-Disposition"] == 'attachment; filename="profiles-sample.ndjson"'
    assert download.content == sample_file(FileFormat.NDJSON)[1]
    assert importer_client.get(f"{IMPORT_URL}sample.exe").status_code == 404


def test_samples_need_the_import_permission(make_staff, login, datamart):
    viewer = login(make_staff("vera", [datamart]))
    assert viewer.get(f"{IMPORT_URL}sample.csv").status_code == 403


def test_an_empty_profile_list_says_how_to_fill_it(importer_client, make_profile, datamart):
    page = importer_client.get(PROFILES).content.decode()
    assert 'id="profiles-empty"' in page and "Import a file" in page and "/api/v1/docs" in page
    make_profile(datamart, "c-1", {"a": 1}, compartment_id=1606)
    assert 'id="profiles-empty"' not in importer_client.get(PROFILES).content.decode()
    # A search that finds nothing is not an empty datamart.
    assert 'id="profiles-empty"' not in importer_client.get(PROFILES, {"q": "zz"}).content.decode()
