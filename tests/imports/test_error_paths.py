"""A bad profile gets the same code, field and message on every path: an NDJSON or JSON
import line (its message prefixed with `line N: `) and the API's PUT and PATCH."""

from __future__ import annotations

import json

import pytest

from imports.models import DocumentImport
from profiles.services import api_token_create
from tests.imports.helpers import account, import_file
from tests.profiles.api.client import ApiClient, profile_path

ACCOUNT = "c1"


def _deep(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels):
        value = {"a": value}
    return value


BAD_PROFILES = [
    {"$x": 1},
    {"\uff04x": 1},  # a full-width dollar: "$x" after NFKC
    {"k" * 300: 1},
    {"": 1},
    {"a": 2**70},
    {"a": "nul\x00here"},
    _deep(40),
]


@pytest.mark.parametrize("properties", BAD_PROFILES, ids=lambda p: json.dumps(p)[:20])
def test_a_bad_profile_has_one_code_field_and_message_on_every_path(
    datamart, crm_compartment, properties
):
    api = ApiClient(api_token_create(datamart=datamart, name="paths")[1])
    path = profile_path(f"compartment_id=1606,user_account_id={ACCOUNT}", 1606, ACCOUNT)
    answers = []
    for method in ("put", "patch"):
        body = getattr(api, method)(path, properties).json()
        assert body["status"] == "error", body
        answers.append((body["error_code"], body.get("field", ""), body["error"]))
    assert answers[0] == answers[1]

    ndjson_import = DocumentImport.objects.create(datamart=datamart, name="n")
    json_import = DocumentImport.objects.create(
        datamart=datamart, name="j", mime_type="APPLICATION_JSON"
    )
    command = account(ACCOUNT, properties)
    for document_import, content, name in (
        (ndjson_import, json.dumps(command).encode() + b"\n", "p.ndjson"),
        (json_import, b"[" + json.dumps(command).encode() + b"]", "p.json"),
    ):
        execution = import_file(document_import, content, name=name)
        error = execution.errors.get()
        line = f"line {error.line}: "
        assert error.message.startswith(line), error.message
        found = (error.error_code, error.field, error.message.removeprefix(line))
        assert found == answers[0], name
