"""The API root, and DRF's browsable API for a staff member's browser: JSON for everyone else."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from profiles.models import DatamartMembership
from tests.profiles.api.client import BASE, data

HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"  # what Chromium sends
COMPARTMENTS = f"{BASE}/compartments"


@pytest.fixture
def staff_browser(datamart) -> Client:
    user = get_user_model().objects.create_user("staff", password="pw", is_staff=True)
    DatamartMembership.objects.create(user=user, datamart=datamart)
    client = Client(HTTP_ACCEPT=HTML)
    client.force_login(user)
    return client


def test_the_api_root_lists_every_endpoint_with_its_methods(client, datamart):
    response = client.get("/api/v1/")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    root = data(response)
    endpoints = {endpoint["path"]: endpoint["methods"] for endpoint in root["endpoints"]}
    assert endpoints["/api/v1/datamarts/{dm}/compartments"] == ["GET", "POST"]
    assert endpoints[
        "/api/v1/datamarts/{dm}/user_points/{selector}/user_profiles/compartment_id={compartment_id}"
    ] == ["DELETE", "GET", "PATCH", "PUT"]
    assert endpoints[
        "/api/v1/datamarts/{dm}/document_imports/{import_id}/executions/{execution_id}/cancel"
    ] == ["POST"]
    assert root["docs"].endswith("/api/v1/docs")
    # An unknown path is still the JSON 404.
    assert client.get("/api/v1/nothing").json()["error_code"] == "NOT_FOUND"


def test_a_staff_browser_gets_the_browsable_api_around_the_envelope(staff_browser):
    response = staff_browser.get(COMPARTMENTS)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "Django REST framework" in page and "&quot;status&quot;: &quot;ok&quot;" in page
    assert "//cdn" not in page and "https://" not in page.split("<body")[0]  # no CDN
    root = staff_browser.get("/api/v1/")
    assert root["Content-Type"].startswith("text/html") and "compartments" in root.content.decode()


def test_the_browsable_api_is_scoped_as_the_admin_is(staff_browser, other_datamart):
    response = staff_browser.get("/api/v1/datamarts/2/compartments")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert "NOT_FOUND" in response.content.decode()


def test_a_staff_session_asking_for_json_gets_the_envelope(staff_browser):
    response = staff_browser.get(COMPARTMENTS, HTTP_ACCEPT="application/json")
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["status"] == "ok"


def test_token_clients_get_json_whatever_they_accept(api):
    response = api.client.get(COMPARTMENTS, HTTP_ACCEPT=HTML)
    assert response["Content-Type"] == "application/json"
    assert data(response)[0]["compartment_id"] == 1


def test_a_non_staff_session_never_gets_the_browsable_api(datamart):
    user = get_user_model().objects.create_user("someone", password="pw")
    DatamartMembership.objects.create(user=user, datamart=datamart)
    client = Client(HTTP_ACCEPT=HTML)
    client.force_login(user)
    response = client.get(COMPARTMENTS)
    assert response.status_code == 403 and response["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "path",
    [
        "/datamarts/1/user_profiles",
        "/datamarts/1/document_imports",
        "/datamarts/1/compartments/1",
        "/datamarts/1/user_points/email_hash=nobody",
        "/datamarts/1/user_points/email_hash=nobody/user_profiles/compartment_id=1",
    ],
)
def test_every_kind_of_endpoint_renders_in_the_browsable_api(staff_browser, path):
    response = staff_browser.get(f"/api/v1{path}")
    assert response.status_code in (200, 404)
    assert response["Content-Type"].startswith("text/html")
    assert "&quot;status&quot;:" in response.content.decode()
