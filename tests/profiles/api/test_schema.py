"""The OpenAPI schema, its documentation page, and schemathesis fuzzing every operation of the
profiles app (the import endpoints' are fuzzed in tests/imports/api/test_schema.py)."""

from __future__ import annotations

import re

import hypothesis
import pytest

from profiles.identifiers import AccountIdentifier, EmailIdentifier, UserAgentIdentifier
from profiles.models import UserPoint
from profiles.services import compartment_create, identifier_attach
from tests.profiles.api.fuzzing import IMPORT_PATHS, POINT_ID, SCHEMA, call_and_validate


def test_the_schema_is_served_as_yaml_and_json(client):
    yaml = client.get("/api/v1/schema")
    assert yaml.status_code == 200 and yaml.content.startswith(b"openapi: 3.")
    schema = client.get("/api/v1/schema/?format=json").json()
    paths = schema["paths"]
    assert "/api/v1/datamarts/{dm}/user_points/{selector}" in paths
    assert (
        "/api/v1/datamarts/{dm}/user_points/{selector}/user_profiles/compartment_id="
        "{compartment_id}/user_account_id={user_account_id}" in paths
    )
    operations = [op for ops in paths.values() for op in ops if op != "parameters"]
    assert len(operations) == 31  # with the failed-lines download
    revert = paths[
        "/api/v1/datamarts/{dm}/document_imports/{import_id}/executions/{execution_id}/revert"
    ]
    assert set(revert) >= {"get", "post"} and "409" in revert["post"]["responses"]
    assert not [path for path in paths if path.endswith("/")]


def test_the_schema_carries_the_spec_examples(client):
    schema = client.get("/api/v1/schema?format=json").json()
    paths = schema["paths"]
    profile = paths[
        "/api/v1/datamarts/{dm}/user_points/{selector}/user_profiles/compartment_id="
        "{compartment_id}/user_account_id={user_account_id}"
    ]["get"]["responses"]["200"]["content"]["application/json"]
    example = next(iter(profile["examples"].values()))["value"]
    assert example["status"] == "ok" and example["data"]["firstname"] == "David"
    assert schema["components"]["securitySchemes"]["ApiToken"]["name"] == "Authorization"


def test_the_docs_page_needs_no_cdn(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html and "/static/drf_spectacular_sidecar/" in html
    # Every script and style comes from this server: no absolute URL to another host (a CDN).
    assert re.findall(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", html) == []


# --- schemathesis -----------------------------------------------------------------------------


@pytest.fixture
def seeded(datamart, fuzz_token):
    """Datamart 1 with the objects the schema's examples name, and a token without a limit."""
    compartment_create(datamart=datamart, compartment_id=1606, name="CRM")
    point = UserPoint.objects.create(id=POINT_ID, datamart=datamart)
    identifier_attach(
        user_point=point, identifier=AccountIdentifier("c9879698769OIUYOIY9879879", 1606)
    )
    identifier_attach(user_point=point, identifier=EmailIdentifier("9d8ef3b2a1c0"))
    identifier_attach(user_point=point, identifier=UserAgentIdentifier("vec:89998434"))
    return fuzz_token


@SCHEMA.exclude(path_regex=IMPORT_PATHS).parametrize()
@hypothesis.settings(suppress_health_check=list(hypothesis.HealthCheck))
def test_every_operation_answers_as_its_schema_says(case, seeded):
    call_and_validate(case, seeded)
