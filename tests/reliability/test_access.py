"""Access: datamart A's token and staff against every endpoint and admin page of datamart B,
staff without the import or export permission posting straight to those URLs, and schemathesis
with A's token looking for B's data in any answer.

Datamart B holds marked data (`SECRETB` in account ids, properties, an email hash, an import's
name and its line errors); an answer to A that carries the mark is a leak.
"""

from __future__ import annotations

import json

import hypothesis
import pytest
import schemathesis
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from schemathesis.config import SchemathesisConfig

from imports.models import DocumentImport, Execution, ExportJob
from profiles.identifiers import EmailIdentifier
from profiles.models import DatamartMembership, UserProfile
from profiles.permissions import EXPORT_PROFILES, IMPORT_PROFILES
from profiles.services import api_token_create, compartment_create, identifier_attach
from profiles_site.wsgi import application
from tests.factories import profile_make
from tests.imports.helpers import CRM, account, ndjson, run, upload
from tests.profiles.api import fuzz_stats
from tests.profiles.api.fuzzing import CHECKS
from tests.reliability.harness import profiles_checksum, report

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

MARK = "SECRETB"
MARK_A = "SECRETA"


@pytest.fixture
def tenants(datamart, crm_compartment, other_datamart):
    """A (datamart 1) and B (datamart 2), each with profiles, identifiers, an import with line
    errors, an export job and a token; B's data carries MARK."""
    compartment_create(datamart=other_datamart, compartment_id=CRM, name="CRM")
    staff = get_user_model().objects.create_user("owner", password="pw", is_superuser=True)
    objects = {}
    for dm, mark in ((datamart, MARK_A), (other_datamart, MARK)):
        profile = profile_make(dm, f"{mark}-acct", {"note": f"{mark}-note"}, compartment_id=CRM)
        identifier_attach(
            user_point=profile.user_point, identifier=EmailIdentifier(f"{mark}-email")
        )
        document_import = DocumentImport.objects.create(datamart=dm, name=f"{mark}-import")
        execution = run(
            upload(
                document_import,
                ndjson(account(f"{mark}-imported", {"x": 1}), f'{{"{mark}-broken": '),
                name=f"{mark}.ndjson",
            )
        )
        export = ExportJob.objects.create(
            datamart=dm, created_by=staff, file_format="CSV", filters_label=f"{mark}-filters"
        )
        export.file.save(f"{mark}.csv", ContentFile(f"{mark}-acct\n".encode()))
        objects[dm.pk] = {
            "datamart": dm,
            "profile": profile,
            "point": profile.user_point,
            "import": document_import,
            "execution": execution,
            "export": export,
            "token": api_token_create(datamart=dm, name=f"{mark}-token"),
        }
    return objects


def b_state(tenants) -> tuple:
    b = tenants[2]
    return (
        profiles_checksum(2),
        Execution.objects.filter(document_import__datamart_id=2).count(),
        DocumentImport.objects.filter(datamart_id=2).count(),
        b["import"].__class__.objects.get(pk=b["import"].pk).name,
    )


def api_probes(a: dict, b: dict) -> list[tuple[str, str, object]]:
    """(method, path, body) of every route, naming B: in B's datamart, and B's objects and
    identifiers through A's datamart."""
    probes = []
    for dm in (2, 1):  # B's datamart; A's datamart with B's ids and identifiers
        base = f"/api/v1/datamarts/{dm}"
        # Point ids are global: B's, named anywhere, is B's. Identifiers belong to a datamart:
        # B's account or e-mail named under A's datamart is a new one of A's (a write creates
        # it there), so they are probed in B's datamart, and only read in A's.
        point_ids = [str(b["point"].pk), f"user_point_id={b['point'].pk}"]
        identifiers = [
            f"compartment_id={CRM},user_account_id={MARK}-acct",
            f"email_hash={MARK}-email",
        ]
        selectors = point_ids + identifiers if dm == 2 else point_ids
        imp, execution = b["import"].pk, b["execution"].pk
        if dm == 2:
            probes += [
                ("GET", f"{base}/compartments", None),
                ("POST", f"{base}/compartments", {"compartment_id": 9, "name": "x"}),
                ("GET", f"{base}/compartments/{CRM}", None),
                ("PUT", f"{base}/compartments/{CRM}", {"name": "x"}),
                ("DELETE", f"{base}/compartments/{CRM}", None),
                ("GET", f"{base}/user_profiles", None),
                ("GET", f"{base}/user_profiles?user_account_id={MARK}-acct", None),
                ("GET", f"{base}/document_imports", None),
                ("POST", f"{base}/document_imports", {"name": "x", "mime_type": "NDJSON"}),
            ]
        else:
            probes += [
                ("GET", f"{base}/user_profiles?user_account_id={MARK}-acct", None),
                ("GET", f"{base}/user_profiles?p.note={MARK}-note", None),
            ]
        for selector in selectors:
            point = f"{base}/user_points/{selector}"
            profile = f"{point}/user_profiles/compartment_id={CRM}/user_account_id={MARK}-acct"
            probes += [
                ("GET", point, None),
                ("GET", f"{point}/user_profiles", None),
                ("GET", f"{point}/history", None),
                ("GET", profile, None),
                ("PUT", profile, {"note": "overwritten"}),
                ("PATCH", profile, {"note": "patched"}),
                ("PATCH", f"{profile}?update_strategy=PARTIAL_DELETE", {"note": None}),
                ("DELETE", profile, None),
                ("POST", f"{point}/erase", None),
                ("DELETE", point, None),
            ]
        if dm == 1:
            for selector in identifiers:
                point = f"{base}/user_points/{selector}"
                probes += [
                    ("GET", point, None),
                    ("GET", f"{point}/user_profiles", None),
                    ("GET", f"{point}/history", None),
                    (
                        "GET",
                        f"{point}/user_profiles/compartment_id={CRM}/user_account_id={MARK}-acct",
                        None,
                    ),
                ]
        probes += [
            ("GET", f"{base}/document_imports/{imp}", None),
            ("PUT", f"{base}/document_imports/{imp}", {"name": "x"}),
            ("DELETE", f"{base}/document_imports/{imp}", None),
            ("GET", f"{base}/document_imports/{imp}/executions", None),
            ("POST", f"{base}/document_imports/{imp}/executions", "raw"),
            ("GET", f"{base}/document_imports/{imp}/executions/{execution}", None),
            ("GET", f"{base}/document_imports/{imp}/executions/{execution}/errors", None),
            ("POST", f"{base}/document_imports/{imp}/executions/{execution}/cancel", None),
        ]
    return probes


def test_a_token_of_datamart_a_gets_nothing_of_datamart_b_from_any_endpoint(tenants):
    a, b = tenants[1], tenants[2]
    client = Client(HTTP_AUTHORIZATION=a["token"][1])
    before = b_state(tenants)
    statuses, leaks, empty_lists = {}, [], 0
    for method, path, body in api_probes(a, b):
        if body == "raw":
            response = client.generic(
                method, path, ndjson(account("intruder", {"x": 1})), "application/x-ndjson"
            )
        elif body is None:
            response = client.generic(method, path)
        else:
            response = client.generic(method, path, json.dumps(body), "application/json")
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if MARK in response.content.decode(errors="replace"):
            leaks.append((method, path, response.status_code))
        if response.status_code == 200:  # only a search of A's own datamart may answer
            assert path.startswith("/api/v1/datamarts/1/user_profiles?"), (method, path)
            assert response.json()["data"] == [], (path, response.content[:300])
            empty_lists += 1
        else:
            assert response.status_code in (400, 404, 405), (method, path, response.status_code)
    assert leaks == []
    assert b_state(tenants) == before
    report(
        "Access: A's token against B through the API",
        did=f"{sum(statuses.values())} requests with datamart A's token: every route under "
        "B's datamart, and B's point ids, identifiers, import and execution ids under A's",
        measured=f"statuses {dict(sorted(statuses.items()))} ({empty_lists} searches of A "
        f"answered an empty list); no answer carries B's data; B's profiles checksum, imports "
        "and executions unchanged",
    )


def staff_of_a(tenants, *, permissions: str = "all"):
    user = get_user_model().objects.create_user("alice", password="pw", is_staff=True)
    perms = Permission.objects.filter(content_type__app_label__in=("profiles", "imports"))
    if permissions == "no import or export":
        codenames = {name.split(".")[1] for name in (IMPORT_PROFILES, EXPORT_PROFILES)}
        perms = perms.exclude(codename__in=codenames)
    user.user_permissions.set(perms)
    DatamartMembership.objects.create(user=user, datamart=tenants[1]["datamart"])
    client = Client()
    client.force_login(get_user_model().objects.get(pk=user.pk))
    return client


def admin_object_urls(b: dict) -> list[str]:
    """Every admin page of each of B's objects: change, delete, history and the extra views."""
    objects = [
        b["datamart"],
        b["datamart"].compartments.get(compartment_id=CRM),
        b["point"],
        b["profile"],
        b["import"],
        b["execution"],
        b["export"],
        b["token"][0],
    ]
    urls = []
    for obj in objects:
        info = (obj._meta.app_label, obj._meta.model_name)
        for view in ("change", "delete", "history"):
            urls.append(reverse(f"admin:{info[0]}_{info[1]}_{view}", args=[obj.pk]))
    execution, export = b["execution"].pk, b["export"].pk
    for name in ("progress", "cancel", "retry", "failed_lines"):
        urls.append(reverse(f"admin:imports_execution_{name}", args=[execution]))
    urls.append(reverse("admin:imports_exportjob_download", args=[export]))
    return urls


def test_staff_of_datamart_a_get_nothing_of_datamart_b_in_any_admin_page(tenants):
    b = tenants[2]
    client = staff_of_a(tenants)
    before = b_state(tenants)
    statuses, leaks, pages = {}, [], 0
    for url in admin_object_urls(b):
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            pages += 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            body = b"" if response.streaming else response.content
            if MARK.encode() in body:
                leaks.append((method, url, response.status_code))
            assert response.status_code in (302, 403, 404, 405), (method, url, response.status_code)
            if response.status_code == 302:  # Django's "doesn't exist" redirect to the index
                assert response["Location"].startswith("/admin/"), url
    # Lists, counts, searches and exports: every changelist, searched for B's mark.
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        for query in ("", f"?q={MARK}", f"?q={MARK}-acct", "?datamart=2", "?datamart__id__exact=2"):
            response = client.get(reverse(f"admin:{info[0]}_{info[1]}_changelist") + query)
            pages += 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            term = query.partition("q=")[2].encode()
            page = response.content.replace(term, b"") if term else response.content
            if MARK.encode() in page:  # B's data, beyond the search box echoing the term
                leaks.append(("get", f"{info[1]} list{query}", response.status_code))
    export = client.post(
        reverse("admin:profiles_userprofile_export") + "?datamart=2",
        {"format": "0", "export_format": "CSV"},
    )
    pages += 1
    body = b"".join(export.streaming_content) if export.streaming else export.content
    if MARK.encode() in body:
        leaks.append(("post", "export ?datamart=2", export.status_code))
    assert leaks == []
    assert b_state(tenants) == before
    report(
        "Access: A's staff against B in the admin",
        did=f"{pages} admin requests by a staff member of A holding every permission: GET and "
        "POST of the change, delete, history, progress, cancel, retry, failed-lines and download "
        "pages of each of B's objects; every list searched and filtered for B; an export "
        "filtered on B",
        measured=f"statuses {dict(sorted(statuses.items()))}; object pages answer 302 (not "
        "found), 403 or 404; no page, list, count, search or export carries B's data; B "
        "unchanged",
    )


def test_staff_without_the_import_or_export_permission_get_403_posting_to_those_urls(tenants):
    a = tenants[1]
    client = staff_of_a(tenants, permissions="no import or export")
    execution = a["execution"].pk
    urls = {
        "import form": reverse("admin:profiles_userprofile_import"),
        "import confirm": reverse("admin:profiles_userprofile_process_import"),
        "export": reverse("admin:profiles_userprofile_export"),
        "execution retry": reverse("admin:imports_execution_retry", args=[execution]),
        "execution cancel": reverse("admin:imports_execution_cancel", args=[execution]),
        "export download": reverse("admin:imports_exportjob_download", args=[a["export"].pk]),
    }
    before = (
        Execution.objects.count(),
        ExportJob.objects.count(),
        UserProfile.objects.filter(datamart_id=1).count(),
    )
    statuses = {}
    for name, url in urls.items():
        response = client.post(
            url,
            {
                "format": "0",
                "import_file": ContentFile(b'{"a": 1}\n', name="x.ndjson"),
                "export_format": "CSV",
            },
        )
        statuses[name] = response.status_code
    assert set(statuses.values()) == {403}, statuses
    assert before == (
        Execution.objects.count(),
        ExportJob.objects.count(),
        UserProfile.objects.filter(datamart_id=1).count(),
    )
    report(
        "Access: staff without import/export permission",
        did="a staff member of A holding every permission but import and export POSTed "
        f"straight to {', '.join(urls)}",
        measured=f"all {len(urls)} answered 403; no execution, export job or profile created",
    )


# --- schemathesis with two tokens --------------------------------------------------------------

TWO_TENANTS = SchemathesisConfig.from_dict(
    {
        "parameters": {
            "path.dm": {"dictionary": "datamarts", "probability": 1.0},
            "path.selector": {"dictionary": "selectors", "probability": 0.8},
            "path.compartment_id": {"dictionary": "compartments", "probability": 0.8},
        },
        "dictionaries": {
            "datamarts": {"values": [1, 2]},
            "selectors": {
                "values": [
                    f"compartment_id={CRM},user_account_id={MARK}-acct",
                    f"email_hash={MARK}-email",
                    f"compartment_id={CRM},user_account_id={MARK_A}-acct",
                    f"email_hash={MARK_A}-email",
                ]
            },
            "compartments": {"values": [CRM]},
        },
        "generation": {"max-examples": 5, "deterministic": True, "database": "none"},
        "phases": {"stateful": {"enabled": False}},
    }
)
TWO_TENANT_SCHEMA = schemathesis.openapi.from_dict(
    SchemaGenerator().get_schema(request=None, public=True), config=TWO_TENANTS
)
TWO_TENANT_SCHEMA.app = application


@pytest.fixture
def two_tokens(tenants, settings):
    """A's raw token, with B's data in place; no rate limit while fuzzing."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_token": "1000000/minute"},
    }
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield tenants
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@TWO_TENANT_SCHEMA.parametrize()
@hypothesis.settings(suppress_health_check=list(hypothesis.HealthCheck), deadline=None)
@pytest.mark.parametrize("caller", [1, 2])
def test_schemathesis_with_two_tokens_finds_no_answer_carrying_the_other_datamarts_data(
    case, two_tokens, caller
):
    other_mark = {1: MARK, 2: MARK_A}[caller]
    fuzz_stats.record(f"two tenants: {case.operation.label}")
    response = case.call(headers={"Authorization": two_tokens[caller]["token"][1]})
    case.validate_response(response, checks=CHECKS)
    assert other_mark not in response.text, (case.method, case.formatted_path, response.text[:300])
