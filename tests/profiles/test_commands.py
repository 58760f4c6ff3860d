"""The set-up commands of SPEC §6."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from profiles.models import ApiToken, Compartment, Datamart
from profiles.services import api_token_authenticate, api_token_digest


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_datamart_is_idempotent(db):
    for _ in range(2):
        run("create_datamart", "--id", "1", "--name", "Demo", "--default-compartment", "1")
    assert Datamart.objects.get().name == "Demo"
    assert list(Compartment.objects.values_list("compartment_id", "is_default")) == [(1, True)]


def test_create_api_token_prints_the_raw_token_last_and_stores_only_its_digest(datamart):
    raw_token = run("create_api_token", "--datamart", "1", "--name", "crm").strip().splitlines()[-1]
    token = ApiToken.objects.get()
    assert raw_token not in (token.digest, token.prefix)
    assert token.digest == api_token_digest(raw_token)
    assert api_token_authenticate(digest=api_token_digest(raw_token)) == token


def test_revoked_token_no_longer_authenticates(datamart):
    raw_token = run("create_api_token", "--datamart", "1", "--name", "crm").strip().splitlines()[-1]
    run("revoke_api_token", "--datamart", "1", "--name", "crm")
    assert api_token_authenticate(digest=api_token_digest(raw_token)) is None


def test_create_api_token_for_a_missing_datamart_fails_clearly(db):
    with pytest.raises(CommandError, match="datamart 9 does not exist"):
        run("create_api_token", "--datamart", "9", "--name", "crm")


def test_bootstrap_demo_prints_the_login_and_is_idempotent(db):
    first = run("bootstrap_demo")
    second = run("bootstrap_demo")
    assert "admin / admin" in first and "admin / admin" in second
    assert Datamart.objects.filter(id=1).exists()
