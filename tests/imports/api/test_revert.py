"""POST/GET …/executions/{eid}/revert: start a revert, preview it, refusals, scoping."""

from __future__ import annotations

import pytest

from imports.models import DocumentImport, Execution
from imports.revert import revert_run
from profiles.models import ProfileChange
from tests.imports.helpers import account, delete, import_file, ndjson, properties_of
from tests.profiles.api.client import BASE, data, error

IMPORTS = f"{BASE}/document_imports"


@pytest.fixture
def imported(datamart, crm_compartment) -> Execution:
    document_import = DocumentImport.objects.create(datamart=datamart, name="CRM")
    import_file(document_import, ndjson(account("a", {"x": 1}), account("b", {"y": 1})))
    return import_file(
        document_import,
        ndjson(account("a", {"x": 2}), delete("b"), account("c", {"z": 1})),
    )


def revert_path(execution: Execution) -> str:
    return f"{IMPORTS}/{execution.document_import_id}/executions/{execution.pk}/revert"


def test_post_starts_a_revert_execution_that_puts_the_profiles_back(api, token, imported):
    response = api.post(revert_path(imported))
    assert response.status_code == 201, response.content
    started = data(response)
    assert started["status"] == "PENDING" and started["reverts"] == imported.pk
    assert started["counters"]["total"] == 3  # the execution's history rows
    revert_run(
        execution_id=started["id"]
    )  # what the worker runs (tests/imports/test_revert_worker.py)
    path = f"{IMPORTS}/{imported.document_import_id}/executions/{started['id']}"
    finished = data(api.get(path))
    assert finished["status"] == "SUCCEEDED" and finished["progress"] == 1
    assert finished["counters"] | {"total": 3} == {
        "total": 3,
        "processed": 3,
        "created": 1,
        "updated": 1,
        "deleted": 1,
        "unchanged": 0,
        "not_found": 0,
        "failed": 0,
    }
    assert (properties_of("a"), properties_of("b"), properties_of("c")) == (
        {"x": 1},
        {"y": 1},
        None,
    )
    # Its history rows: an import's, naming the revert and the token that asked for it.
    rows = ProfileChange.objects.filter(execution_id=started["id"])
    assert set(rows.values_list("source", "api_token_id")) == {("import", token[0].pk)}


def test_a_conflict_is_a_line_error_and_force_applies(api, imported):
    import_file(imported.document_import, ndjson(account("a", {"later": 1})))
    preview = data(api.get(revert_path(imported)))
    assert preview == {
        "execution_id": imported.pk,
        "revertible": True,
        "reason": "",
        "history_rows": 3,
        "delete": 1,
        "restore": 1,
        "recreate": 1,
        "unchanged": 0,
        "conflicts": 1,
    }
    started = data(api.post(revert_path(imported)))
    revert_run(execution_id=started["id"])
    errors = data(
        api.get(f"{IMPORTS}/{imported.document_import_id}/executions/{started['id']}/errors")
    )
    assert [(e["line"], e["error_code"]) for e in errors] == [(1, "REVERT_CONFLICT")]
    assert "user_account_id=a" in errors[0]["identifier"]
    assert properties_of("a") == {"x": 2, "later": 1}

    # The revert of the revert, forced, runs over the one that was partly applied.
    revert_execution = Execution.objects.get(pk=started["id"])
    assert data(api.get(revert_path(imported)))["reason"] == "ALREADY_REVERTED"
    again = data(api.post(revert_path(revert_execution) + "?force=true"))
    revert_run(execution_id=again["id"])
    assert (properties_of("b"), properties_of("c")) == (None, {"z": 1})


def test_a_second_revert_or_an_unfinished_execution_answers_409(api, imported):
    assert api.post(revert_path(imported)).status_code == 201
    body = error(api.post(revert_path(imported)), 409)
    assert body["error_code"] == "ALREADY_REVERTED"
    running = Execution.objects.create(
        datamart_id=imported.datamart_id,
        document_import=imported.document_import,
        status=Execution.Status.RUNNING,
    )
    assert error(api.post(revert_path(running)), 409)["error_code"] == "EXECUTION_NOT_FINISHED"


def test_force_must_be_a_boolean(api, imported):
    body = error(api.post(revert_path(imported) + "?force=maybe"), 400)
    assert body["error_code"] == "INVALID_PARAMETER" and body["field"] == "force"
    assert not Execution.objects.filter(reverts=imported).exists()


def test_another_datamarts_execution_answers_404(api, other_api, imported):
    assert error(other_api.post(revert_path(imported)), 404)
    assert error(other_api.get(revert_path(imported)), 404)
    theirs = revert_path(imported).replace("/datamarts/1/", "/datamarts/2/")
    assert error(other_api.post(theirs), 404)
    wrong_import = f"{IMPORTS}/{imported.document_import_id + 99}/executions/{imported.pk}/revert"
    assert error(api.post(wrong_import), 404)
    assert not Execution.objects.filter(reverts=imported).exists()
