"""The import endpoints in the OpenAPI schema: the upload's example, and schemathesis fuzzing
each of their operations (the other operations: tests/profiles/api/test_schema.py)."""

from __future__ import annotations

import hypothesis
import pytest

from imports.models import DocumentImport, Execution, ExecutionError
from tests.profiles.api.fuzzing import (
    EXECUTION_ID,
    IMPORT_ID,
    IMPORT_PATHS,
    SCHEMA,
    call_and_validate,
)


def test_the_schema_carries_the_upload_example(client):
    paths = client.get("/api/v1/schema?format=json").json()["paths"]
    upload = paths["/api/v1/datamarts/{dm}/document_imports/{import_id}/executions"]["post"]
    ndjson = upload["requestBody"]["content"]["application/x-ndjson"]
    assert '"operation":"UPSERT"' in next(iter(ndjson["examples"].values()))["value"]


def test_the_schema_describes_the_column_mapping_with_an_example(client):
    schema = client.get("/api/v1/schema?format=json").json()
    imports = schema["paths"]["/api/v1/datamarts/{dm}/document_imports"]["post"]
    body = imports["requestBody"]["content"]["application/json"]
    examples = [example["value"] for example in body["examples"].values()]
    mapped = next(example for example in examples if "column_mapping" in example)
    assert mapped["column_mapping"]["E-mail"] == {"to": "email_hash", "transform": "sha256_email"}
    detail = schema["paths"]["/api/v1/datamarts/{dm}/document_imports/{import_id}"]
    assert "patch" in detail
    fields = schema["components"]["schemas"]["DocumentImport"]["properties"]
    target = fields["column_mapping"]["additionalProperties"]["oneOf"][1]
    assert target["properties"]["transform"]["enum"] == ["sha256_email", "trim", "lower"]


# --- schemathesis -----------------------------------------------------------------------------


@pytest.fixture
def seeded(datamart, fuzz_token):
    """Datamart 1 with the import, execution and line error the fuzzed paths name, and a token
    without a limit."""
    document_import = DocumentImport.objects.create(id=IMPORT_ID, datamart=datamart, name="CRM")
    execution = Execution.objects.create(
        id=EXECUTION_ID, datamart=datamart, document_import=document_import, file="x.ndjson"
    )
    ExecutionError.objects.create(
        execution=execution, line=2, identifier="email_hash=h", error_code="X", message="m"
    )
    return fuzz_token


@SCHEMA.include(path_regex=IMPORT_PATHS).parametrize()
@hypothesis.settings(suppress_health_check=list(hypothesis.HealthCheck))
def test_every_operation_answers_as_its_schema_says(case, seeded):
    call_and_validate(case, seeded)
