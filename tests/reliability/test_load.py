"""Load: concurrent imports over the same profiles, concurrent API writers during an import, and
an HTTP load run against gunicorn (the production server), with the rate limit shared by its
processes."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest
from django.db import connection

from imports.models import DocumentImport, Execution
from profiles.services import api_token_create
from tests.http_load import Gunicorn, load_run, request
from tests.imports.helpers import CRM, account, ndjson, properties_of, upload
from tests.reliability.harness import (
    needs_postgres_and_redis,
    report,
    setting,
    wait_for,
)
from tests.workers import database_url

pytestmark = needs_postgres_and_redis


def deadlocks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def finished(execution: Execution) -> bool:
    execution.refresh_from_db()
    return execution.is_finished


def test_two_imports_over_the_same_profiles_in_opposite_orders_both_succeed_in_file_order(
    datamart, crm_compartment, workers, settings
):
    """File A walks the accounts up, file B down, both PARTIAL_UPDATE (their keys merge); every
    10th account is named again later in each file with its final value."""
    count = setting("OPPOSITE_ORDER_PROFILES", 50_000)
    settings.IMPORT_CHUNK_SIZE = 1000
    ids = [f"p{i}" for i in range(count)]

    def file_of(name: str, order: list[str]) -> bytes:
        lines = [
            account(a, {name: position}, strategy="PARTIAL_UPDATE")
            for position, a in enumerate(order)
        ]
        lines += [account(a, {name: "final"}, strategy="PARTIAL_UPDATE") for a in order[::10]]
        return ndjson(*lines)

    files = {"a": file_of("a", ids), "b": file_of("b", ids[::-1])}
    for name in files:
        workers.start(f"order-{name}", IMPORT_CHUNK_SIZE="1000")
    deadlocks_before = deadlocks()
    started = time.monotonic()
    executions = {
        name: upload(DocumentImport.objects.create(datamart=datamart, name=name), content)
        for name, content in files.items()
    }
    from imports.tasks import run_execution

    for execution in executions.values():  # queued together: each worker takes one
        run_execution.delay(execution.pk)
    for execution in executions.values():
        wait_for(lambda e=execution: finished(e), timeout=300, interval=0.2, message="imports")
    elapsed = time.monotonic() - started
    for execution in executions.values():
        assert execution.status == Execution.Status.SUCCEEDED, execution.error_message
        assert execution.failed == 0 and execution.processed == count + len(ids[::10])
    assert {e.worker for e in executions.values()} == {w.node_name for w in workers.started}
    from profiles.models import UserProfile

    wrong = []
    for account_id, properties in UserProfile.objects.filter(datamart=datamart).values_list(
        "user_account_id", "properties"
    ):
        i = int(account_id[1:])
        expected_a = "final" if i % 10 == 0 else i
        expected_b = "final" if (count - 1 - i) % 10 == 0 else count - 1 - i
        if properties != {"a": expected_a, "b": expected_b}:
            wrong.append((account_id, properties))
    assert UserProfile.objects.filter(datamart=datamart).count() == count
    assert wrong == []
    seen = deadlocks() - deadlocks_before
    retried = sum(worker.log().count("applying it again") for worker in workers.started)
    report(
        "Load: two imports, opposite orders",
        did=f"two NDJSON files over the same {count:,} profiles, one ascending and one "
        f"descending (+{len(ids[::10]):,} later lines each), run at once by two workers",
        measured=f"both SUCCEEDED in {elapsed:.1f} s, 0 failed lines; {seen} deadlocks seen by "
        f"PostgreSQL, {retried} chunk retries, none reached the user; all {count:,} profiles "
        "hold both files' values in each file's order",
    )


# --- HTTP against gunicorn ---------------------------------------------------------------------


@pytest.fixture
def gunicorn(django_db_setup, django_db_blocker, tmp_path):
    """gunicorn with the README's production settings on the test database."""
    import os

    with django_db_blocker.unblock():
        url = database_url(connection.settings_dict)

    def start(workers: int = 2, **settings: str) -> Gunicorn:
        server = Gunicorn(
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "profiles_site.settings",
                "DATABASE_URL": url,
                "DATABASE_CONN_MAX_AGE": "60",
                "LOG_LEVEL": "WARNING",
                **settings,
            },
            log_path=tmp_path / f"gunicorn-{len(started)}.log",
            workers=workers,
        )
        server.start()
        started.append(server)
        return server

    started: list[Gunicorn] = []
    yield start
    for server in started:
        server.stop()


def profile_path(dm: int, account_id: str) -> str:
    selector = f"compartment_id={CRM},user_account_id={account_id}"
    return (
        f"/api/v1/datamarts/{dm}/user_points/{selector}/user_profiles/"
        f"compartment_id={CRM}/user_account_id={account_id}"
    )


def test_fifty_concurrent_patches_during_an_import_of_the_same_profile_keep_every_key(
    datamart, crm_compartment, workers, gunicorn, settings
):
    writers = setting("CONCURRENT_PATCHES", 50)
    settings.IMPORT_CHUNK_SIZE = 500
    _, token = api_token_create(datamart=datamart, name="patches")
    server = gunicorn(workers=4, API_RATE_LIMIT="100000/minute")
    lines = [
        account("hot" if i % 5 == 0 else f"o{i}", {"imp": i}, strategy="PARTIAL_UPDATE")
        for i in range(20_000)
    ]
    workers.start("patches", IMPORT_CHUNK_SIZE="500")
    execution = upload(DocumentImport.objects.create(datamart=datamart, name="hot"), ndjson(*lines))
    from imports.tasks import run_execution

    run_execution.delay(execution.pk)
    wait_for(
        lambda: execution.refresh_from_db() or execution.checkpoint_line >= 1000,
        timeout=60,
        message="the import to update the profile",
    )
    barrier = threading.Barrier(writers)
    statuses: list[int] = []

    def patch(n: int) -> None:
        barrier.wait()
        status, _ = request(
            server.host,
            "PATCH",
            profile_path(datamart.pk, "hot"),
            body=json.dumps({f"k{n}": n}).encode(),
            headers={"Authorization": token, "Content-Type": "application/json"},
        )
        statuses.append(status)

    started = time.monotonic()
    threads = [threading.Thread(target=patch, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    patch_seconds = time.monotonic() - started
    import_during = not finished(execution)
    wait_for(lambda: finished(execution), timeout=120, interval=0.2, message="the import")
    assert execution.status == Execution.Status.SUCCEEDED
    final = properties_of("hot")
    assert Counter(statuses) == Counter({200: writers})
    missing = [n for n in range(writers) if final.get(f"k{n}") != n]
    assert missing == []
    assert final["imp"] == 19_995  # the import's last line for it
    report(
        "Load: 50 concurrent PATCHes during an import",
        did=f"{writers} PATCHes of different keys on one profile, released at once against "
        "gunicorn (4 workers), while a worker imported 20,000 lines updating the same profile "
        "every 5th line",
        measured=f"all {writers} answered 200 in {patch_seconds:.2f} s (import still running: "
        f"{import_during}); every key present afterwards, and the import's last value",
    )


def test_an_http_load_run_on_profile_reads_and_writes_has_no_server_error(
    datamart, crm_compartment, gunicorn
):
    seconds = setting("HTTP_LOAD_SECONDS", 10)
    clients = 4
    _, token = api_token_create(datamart=datamart, name="load")
    server = gunicorn(workers=2, API_RATE_LIMIT="100000/minute")
    headers = {"Authorization": token, "Content-Type": "application/json"}
    for i in range(200):
        request(
            server.host,
            "PUT",
            profile_path(datamart.pk, f"u{i}"),
            body=b'{"n": 0}',
            headers=headers,
        )
    counter = iter(range(10**9))

    def next_call(client: int):
        n = next(counter)
        path = profile_path(datamart.pk, f"u{n % 200}")
        if n % 4 == 0:
            return ("PATCH", path, json.dumps({"n": n, f"c{client}": n}).encode(), headers)
        return ("GET", path, None, headers)

    result = load_run(server.host, next_call, clients=clients, seconds=seconds)
    assert result.server_errors == 0, result.failures
    assert not result.failures, result.failures
    assert set(result.statuses) == {200}, result.statuses
    report(
        "Load: HTTP reads and writes behind gunicorn",
        did=f"{clients} clients for {seconds} s against gunicorn (2 workers, "
        "DATABASE_CONN_MAX_AGE=60): 3 GETs for 1 PATCH of 200 profiles by account selector",
        measured=f"{result.summary()}; zero 5xx",
    )


def test_the_rate_limit_holds_across_the_servers_processes(datamart, gunicorn):
    import os

    limit, clients = 20, 4
    broker = os.environ["CELERY_BROKER_URL"]
    _, token = api_token_create(datamart=datamart, name="limited")
    outcomes = {}
    for cache, settings in (
        ("Redis (CACHE_URL)", {"CACHE_URL": broker}),
        ("database cache", {"CACHE_URL": ""}),
    ):
        server = gunicorn(workers=2, API_RATE_LIMIT=f"{limit}/minute", **settings)
        statuses: Counter = Counter()
        lock = threading.Lock()

        def send(count: int, server=server, statuses=statuses, lock=lock) -> None:
            for _ in range(count):
                status, _ = request(
                    server.host,
                    "GET",
                    f"/api/v1/datamarts/{datamart.pk}/compartments",
                    headers={"Authorization": token},
                )
                with lock:
                    statuses[status] += 1

        threads = [threading.Thread(target=send, args=(limit // 2,)) for _ in range(clients)]
        window = int(time.time() // 60)
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        server.stop()
        outcomes[cache] = dict(statuses)
        if int(time.time() // 60) != window:  # a new minute began mid-run: counts restarted
            continue
        assert statuses[200] + statuses[429] == limit * 2
        if cache.startswith("Redis"):
            assert statuses[200] == limit  # one atomic count for both processes
        else:
            assert limit <= statuses[200] <= limit + clients  # get-then-set: a few may slip
    report(
        "Load: the API rate limit across processes",
        did=f"API_RATE_LIMIT={limit}/minute; {clients} clients sent {limit * 2} requests with "
        "one token to gunicorn with 2 workers, counted in Redis, then in the database cache "
        "(200: allowed, 429: refused)",
        measured="; ".join(f"{cache}: {statuses}" for cache, statuses in outcomes.items()),
    )


def test_behind_gunicorn_an_encoded_trailing_slash_stays_the_ids(
    datamart, crm_compartment, gunicorn
):
    """`email_hash=del%2F` names `del/`, never `del`: gunicorn decodes the path but hands the app
    the path as sent (RAW_URI), and profiles_site.wsgi keeps the slash the id's."""
    server = gunicorn(workers=1)
    _, token = api_token_create(datamart=datamart, name="slash")
    base = f"/api/v1/datamarts/{datamart.pk}/user_points"

    def call(method: str, path: str, body: dict | None = None) -> tuple[int, dict | None]:
        headers = {"Authorization": token, "Content-Type": "application/json"}
        payload = None if body is None else json.dumps(body).encode()
        status, answer = request(server.host, method, path, body=payload, headers=headers)
        return status, json.loads(answer)["data"] if status < 300 else None

    # The selector in the middle of a path is unambiguous: one point each.
    assert (
        call("PUT", f"{base}/email_hash=del%2F/user_profiles/compartment_id=1", {"w": 1})[0] == 201
    )
    assert call("PUT", f"{base}/email_hash=del/user_profiles/compartment_id=1", {"w": 2})[0] == 201
    slash = f"compartment_id={CRM},user_account_id=acc%2F"
    status, created = call(
        "PUT", f"{base}/{slash}/user_profiles/compartment_id={CRM}/user_account_id=acc%2F", {"w": 3}
    )
    assert (status, created["$user_account_id"]) == (201, "acc/")

    def profiles_of(point: dict) -> list:
        return [profile["w"] for profile in point["profiles"]]

    assert profiles_of(call("GET", f"{base}/email_hash=del%2F")[1]) == [1]
    assert profiles_of(call("GET", f"{base}/email_hash=del%2f")[1]) == [1]
    assert profiles_of(call("GET", f"{base}/email_hash=del/")[1]) == [2]  # the route's slash
    assert profiles_of(call("GET", f"{base}/email_hash=del%2F/")[1]) == [1]
    read = call("GET", f"{base}/{slash}/user_profiles/compartment_id={CRM}/user_account_id=acc%2F")
    assert read[1]["w"] == 3
    assert (
        call("GET", f"{base}/{slash}/user_profiles/compartment_id={CRM}/user_account_id=acc")[0]
        == 404
    )
    assert call("DELETE", f"{base}/email_hash=del%2F")[0] == 200
    assert call("GET", f"{base}/email_hash=del%2F/user_profiles")[0] == 404
    assert profiles_of(call("GET", f"{base}/email_hash=del")[1]) == [2]  # the other one stays
