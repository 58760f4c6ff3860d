"""Erasing a person (SPEC §7) reaches the stored line errors of the datamart's executions and
the failed-lines files written from them; other people's errors, and other datamarts', stay."""

from __future__ import annotations

import csv
import io
import json

import pytest

from imports.models import DocumentImport, ExecutionError
from imports.services import execution_failed_lines_write
from profiles.identifiers import EmailIdentifier, UserAgentIdentifier
from profiles.models import ProfileChange, UserAccount
from profiles.services import compartment_create, identifier_attach
from tests.imports.helpers import account, import_file, ndjson
from tests.profiles.api.client import BASE, data

SECRET = "alice-secret-account"
EMAIL_HASH = "alice-secret-hash"
AGENT = "vec:alice-secret-agent"


def failed_lines(execution) -> str:
    out = io.BytesIO()
    execution_failed_lines_write(execution=execution, out=out)
    return out.getvalue().decode()


@pytest.fixture
def alice_imports(document_import, csv_import):
    """Alice created by an import, given an email and a user agent, then bad lines naming each
    of her identifiers (and one naming Bob), in NDJSON and CSV."""
    good = import_file(document_import, ndjson(account(SECRET, {"name": "Alice"})))
    assert good.created == 1
    alice = UserAccount.objects.get(user_account_id=SECRET).user_point
    identifier_attach(user_point=alice, identifier=EmailIdentifier(EMAIL_HASH))
    identifier_attach(user_point=alice, identifier=UserAgentIdentifier(AGENT))
    bad = import_file(
        document_import,
        ndjson(
            account(SECRET, {"$bad": f"{SECRET} again"}),
            {"operation": "UPSERT", "email_hash": EMAIL_HASH, "user_profile": {"$x": 1}},
            {"operation": "UPSERT", "user_agent_id": AGENT, "user_profile": []},
            {"operation": "UPSERT", "user_account_id": SECRET, "user_profile": {"$y": 1}},
            account("bob", {"$bad": 1}),
        ),
    )
    bad_csv = import_file(
        csv_import,
        (
            "operation;compartment_id;user_account_id;$compartment_id;$user_account_id;age:int\n"
            f"UPSERT;1606;{SECRET};1606;{SECRET};forty\n"
            "UPSERT;1606;bob;1606;bob;fifty\n"
        ).encode(),
        name="crm.csv",
    )
    assert bad.failed == 5 and bad_csv.failed == 2
    return bad, bad_csv


def test_erasing_scrubs_the_line_errors_and_failed_lines_that_named_the_person(
    api, datamart, alice_imports
):
    bad, bad_csv = alice_imports
    erased = data(api.post(f"{BASE}/user_points/email_hash={EMAIL_HASH}/erase"))
    assert (erased["identifiers"], erased["profiles"], erased["line_errors"]) == (3, 1, 5)

    rows = ExecutionError.objects.filter(execution__datamart=datamart).values()
    stored = json.dumps(list(rows), default=str)
    history = json.dumps(list(ProfileChange.objects.values()), default=str)
    for value in (SECRET, EMAIL_HASH, AGENT):
        assert value not in stored
        assert value not in history
        assert value not in failed_lines(bad)
        assert value not in failed_lines(bad_csv)
    assert "bob" in failed_lines(bad) and "bob" in failed_lines(bad_csv)

    scrubbed = ExecutionError.objects.get(execution=bad, line=1)
    assert (scrubbed.identifier, scrubbed.raw, scrubbed.error_code) == ("", None, "RESERVED_KEY")
    assert scrubbed.message.startswith("line 1: ") and "erased" in scrubbed.message
    listed = data(
        api.get(f"{BASE}/document_imports/{bad.document_import_id}/executions/{bad.pk}/errors")
    )
    assert [error["identifier"] for error in listed] == [
        "",
        "",
        "",
        "",
        "compartment_id=1606,user_account_id=bob",
    ]
    assert json.loads(failed_lines(bad).splitlines()[0]) == {
        "_line": 1,
        "_error": scrubbed.message,
    }
    csv_rows = list(csv.reader(io.StringIO(failed_lines(bad_csv)), delimiter=";"))
    assert csv_rows[1] == ["", "", "", "", "", "", "2", csv_rows[1][-1]]
    assert csv_rows[2][:3] == ["UPSERT", "1606", "bob"]


def test_another_datamarts_line_errors_are_left_alone(api, alice_imports, other_datamart):
    compartment_create(datamart=other_datamart, compartment_id=1606, name="CRM")
    elsewhere = DocumentImport.objects.create(
        datamart=other_datamart, name="CRM", mime_type=DocumentImport.MimeType.NDJSON
    )
    theirs = import_file(elsewhere, ndjson(account(SECRET, {"$bad": 1})))
    api.post(f"{BASE}/user_points/compartment_id=1606,user_account_id={SECRET}/erase")
    kept = ExecutionError.objects.get(execution=theirs)
    assert kept.identifier == f"compartment_id=1606,user_account_id={SECRET}"
    assert SECRET in failed_lines(theirs)
