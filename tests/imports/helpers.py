"""Building import files and reading back what an import did."""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.files.base import ContentFile

from imports.api.schema import CRM_COLUMN_MAPPING_EXAMPLE
from imports.models import DocumentImport, Execution
from imports.runner import execution_run
from imports.services import execution_start
from profiles.models import UserAccount, UserAgent, UserEmail, UserProfile

CRM = 1606


def account(account_id: str, properties: dict, *, strategy: str | None = None, **fields) -> dict:
    """An UPSERT of the account's own profile in the CRM compartment."""
    command = {
        "operation": "UPSERT",
        "compartment_id": CRM,
        "user_account_id": account_id,
        "user_profile": {"$compartment_id": CRM, "$user_account_id": account_id, **properties},
        **fields,
    }
    if strategy:
        command["update_strategy"] = strategy
    return command


def delete(account_id: str) -> dict:
    return {"operation": "DELETE", "compartment_id": CRM, "user_account_id": account_id}


def ndjson(*commands: dict | str) -> bytes:
    return "".join(
        (command if isinstance(command, str) else json.dumps(command)) + "\n"
        for command in commands
    ).encode()


# A CRM export's headers mapped to SPEC §3: the API schema's example, so the documented mapping
# is the one the tests upload through.
CRM_COLUMN_MAPPING = CRM_COLUMN_MAPPING_EXAMPLE


def mixed_import(lines: int, *, prefix: str = "c") -> bytes:
    """NDJSON of new accounts, later updates and deletes of accounts met chunks earlier, e-mail
    identified lines repeating, and a bad line every 500: the file the worker tests import."""
    out: list[dict | str] = []
    for i in range(lines):
        kind = i % 10
        if kind < 6:
            out.append(account(f"{prefix}{i}", {"n": i, "tags": [i % 5], "nl": {"on": i % 2 == 0}}))
        elif kind < 8 and i >= 1503:
            out.append(account(f"{prefix}{i - 1503}", {"tags": [i % 7], "nl": {"p": i}}))
        elif kind == 8 and i >= 2508:
            out.append(delete(f"{prefix}{i - 2508}"))
        elif i % 500 == 9:
            out.append('{"operation": "UPSERT", ')
        else:
            out.append(
                {"operation": "UPSERT", "email_hash": f"e{i % 3000}", "user_profile": {"i": i}}
            )
    return ndjson(*out)


def upload(
    document_import: DocumentImport, content: bytes, name: str = "profiles.ndjson", **options
) -> Execution:
    return execution_start(
        document_import=document_import,
        upload=ContentFile(content, name=name),
        file_name=name,
        enqueue=False,
        **options,
    )


def run(execution: Execution, **options) -> Execution:
    execution_run(execution_id=execution.pk, **options)
    execution.refresh_from_db()
    return execution


def import_file(document_import: DocumentImport, content: bytes, **options) -> Execution:
    return run(upload(document_import, content, **options))


def properties_of(account_id: str, compartment_id: int = CRM) -> dict | None:
    profile = UserProfile.objects.filter(
        compartment__compartment_id=compartment_id, user_account_id=account_id
    ).first()
    return None if profile is None else profile.properties


def errors_of(execution: Execution) -> list[tuple[int, str]]:
    return list(execution.errors.order_by("line", "id").values_list("line", "error_code"))


def counters(execution: Execution) -> dict[str, Any]:
    return {name: value for name, value in execution.counters().items() if value}


def point_labels(datamart_id: int) -> dict[Any, frozenset[str]]:
    """Each user point of the datamart named by its identifiers (ids differ between runs)."""
    labels: dict[Any, set[str]] = {}
    for point, compartment, account_id in UserAccount.objects.filter(
        datamart_id=datamart_id
    ).values_list("user_point_id", "compartment__compartment_id", "user_account_id"):
        labels.setdefault(point, set()).add(f"account:{compartment}/{account_id}")
    for point, email_hash in UserEmail.objects.filter(datamart_id=datamart_id).values_list(
        "user_point_id", "email_hash"
    ):
        labels.setdefault(point, set()).add(f"email:{email_hash}")
    for point, agent in UserAgent.objects.filter(datamart_id=datamart_id).values_list(
        "user_point_id", "user_agent_id"
    ):
        labels.setdefault(point, set()).add(f"agent:{agent}")
    return {point: frozenset(names) for point, names in labels.items()}


def snapshot(datamart_id: int) -> dict:
    """The datamart's profiles keyed by (point's identifiers, compartment, account)."""
    labels = point_labels(datamart_id)
    profiles = {}
    for point, compartment, account_id, properties in UserProfile.objects.filter(
        datamart_id=datamart_id
    ).values_list("user_point_id", "compartment__compartment_id", "user_account_id", "properties"):
        profiles[(labels.get(point, frozenset()), compartment, account_id)] = properties
    return {"points": sorted(sorted(names) for names in labels.values()), "profiles": profiles}


def wait_for(predicate, *, timeout: float = 60, interval: float = 0.1, message: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message or predicate}")


def wait_finished(execution: Execution, timeout: float = 120) -> Execution:
    def finished():
        execution.refresh_from_db()
        return execution.is_finished

    wait_for(finished, timeout=timeout, message=f"execution {execution.pk} to finish")
    return execution
