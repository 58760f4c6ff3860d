"""The datamart of the export form, as the page renders it and as the browser posts it back:
chosen for the user when only one can be meant (one datamart, or the list's filters name one),
chosen by the user in a select otherwise; an error on it is always shown. The import form's
datamart: preselected when the user sees one, else chosen."""

from __future__ import annotations

import re

import pytest

from tests.imports.admin.conftest import EXPORT_URL, IMPORT_URL

HIDDEN = re.compile(r'<input type="hidden" name="datamart"( value="(\d*)")?[^>]*>')


def datamart_input(page: str) -> str | None:
    """The value of the form's hidden datamart input, "" for none; None when it is no input."""
    found = HIDDEN.search(page)
    return None if found is None else (found.group(2) or "")


def browser_post(client, query: str = "", **fields):
    """The form as a browser sends it back: its hidden inputs as rendered, the format chosen."""
    page = client.get(f"{EXPORT_URL}{query}").content.decode()
    data = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))
    data.pop("csrfmiddlewaretoken", None)
    return client.post(f"{EXPORT_URL}{query}", {"format": "3", **data, **fields})


@pytest.fixture
def root_client(login, django_user_model, datamart, other_datamart, crm_compartment):
    return login(django_user_model.objects.create_superuser("root", "root@example.com", "pw"))


def test_a_one_datamart_staff_member_gets_it_chosen_in_the_form(importer_client):
    page = importer_client.get(EXPORT_URL).content.decode()
    assert datamart_input(page) == "1"
    assert 'id="export-datamart"' in page and "<strong>Demo (1)</strong>" in page
    response = browser_post(importer_client)
    assert response.status_code == 200 and response["Content-Type"] == "application/x-ndjson"


def test_a_superuser_who_sees_several_datamarts_chooses_one_from_an_empty_select(root_client):
    page = root_client.get(EXPORT_URL).content.decode()
    assert datamart_input(page) is None
    assert re.search(r'<select name="datamart" required[^>]* id="id_datamart">', page)
    assert re.search(r'<option value="" selected>Choose the datamart to export</option>', page)
    assert "Demo (1)</option>" in page and "Other (2)</option>" in page
    assert "in the datamarts you see" in page
    answered = browser_post(root_client).content.decode()
    assert "This field is required" in answered
    assert browser_post(root_client, datamart="2").status_code == 200


def test_the_lists_datamart_or_compartment_filter_decides(root_client, crm_compartment):
    assert datamart_input(root_client.get(f"{EXPORT_URL}?datamart=2").content.decode()) == "2"
    by_compartment = root_client.get(f"{EXPORT_URL}?compartment={crm_compartment.pk}")
    assert datamart_input(by_compartment.content.decode()) == "1"
    assert browser_post(root_client, "?datamart=2").status_code == 200
    # Another datamart than the list's is not a choice.
    refused = browser_post(root_client, "?datamart=2", datamart="1").content.decode()
    assert "Select a valid choice" in refused


def test_an_error_on_the_hidden_datamart_is_shown(importer_client):
    page = importer_client.post(EXPORT_URL, {"format": "0", "resource": "0"}).content.decode()
    assert "Please correct the errors below." in page
    assert '<p class="errornote">Datamart: This field is required.</p>' in page


def test_the_import_form_preselects_an_only_datamart_and_asks_among_several(
    importer_client, root_client
):
    own = importer_client.get(IMPORT_URL).content.decode()
    assert re.search(r'<option value="1" selected>Demo \(1\)</option>', own)
    assert "Choose the datamart to import into" not in own
    several = root_client.get(IMPORT_URL).content.decode()
    assert re.search(
        r'<option value="" selected>Choose the datamart to import into</option>', several
    )
    assert "Demo (1)</option>" in several and "Other (2)</option>" in several
