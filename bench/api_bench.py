"""A profile read by selector against a bare DRF view, under gunicorn, with production settings.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/profiles_api_bench \
    CACHE_URL=redis://127.0.0.1:6379/1 \
        .venv/bin/python bench/api_bench.py [--profiles 100000] [--seconds 15] [--rounds 2]

Fills datamart 90 of that database with fake profiles (compartment 1606, once), makes an API
token, then starts gunicorn (sync workers, two per core as the README's production section
says, `--workers` to choose; the README's production settings:
DATABASE_CONN_MAX_AGE=60, CACHE_URL for the rate limit's counters) and runs 4 concurrent
clients for --seconds against each target in turn, --rounds times alternating:

- `GET …/user_points/compartment_id=1606,user_account_id=A/user_profiles/compartment_id=1606/
  user_account_id=A` for a random account A, with the token (authentication, rate limit, the
  profile query, serialization);
- `GET /bench/constant`, a DRF view of the same renderer returning a constant (no
  authentication, no database): what the framework and the server cost alone;
- `GET /bench/round_trips`, a plain view making the read's two round trips and nothing else
  (the rate limit's Redis count, a prepared `SELECT 1`): the most any token read can reach.

Prints req/s, p50 and p99 of each, and the profile read's share of the constant view's req/s.
Targets: p99 ≤ 20 ms, share ≥ 0.6.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "profiles_site.settings")
os.environ.setdefault("SECRET_KEY", "insecure-local-development-key-change-me")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from profiles.fake_profiles import FakeRun, fake_profiles_generate  # noqa: E402
from profiles.models import UserProfile  # noqa: E402
from profiles.services import api_token_create, datamart_create  # noqa: E402
from tests.http_load import Gunicorn, LoadResult, load_run  # noqa: E402

DATAMART = 90
COMPARTMENT = 1606
TAG = "apibench"


KINDS = ("gunicorn", "postgres", "redis", "clients")


def cpu_seconds() -> dict[tuple[str, int], float]:
    """CPU time used so far by each process of each kind on this machine, by (kind, pid), from
    /proc: the web server (gunicorn), PostgreSQL, Redis and the load clients (this process).
    Other jobs of the machine are not counted."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / tick
        if int(entry.name) == os.getpid():
            kind = "clients"
        elif "gunicorn" in command:
            kind = "gunicorn"
        elif comm == "postgres" or command.startswith("postgres"):
            kind = "postgres"
        elif comm == "redis-server":
            kind = "redis"
        else:
            continue
        used[(kind, int(entry.name))] = seconds
    return used


def cpu_used(before: dict, after: dict) -> dict[str, float]:
    """The CPU each kind used between two readings: of the processes alive at the second (one
    started in between counts whole; one that ended in between, an autovacuum worker say, is
    lost rather than counted as negative time)."""
    used = dict.fromkeys(KINDS, 0.0)
    for (kind, pid), seconds in after.items():
        used[kind] += seconds - before.get((kind, pid), 0.0)
    return used


def set_up(profiles: int) -> tuple[FakeRun, str]:
    call_command("migrate", verbosity=0)
    datamart = datamart_create(
        datamart_id=DATAMART, name="API bench", default_compartment_id=COMPARTMENT
    )
    have = UserProfile.objects.filter(datamart=datamart).count()
    if have == 0:
        print(f"generating {profiles} fake profiles in datamart {DATAMART}…", flush=True)
        fake_profiles_generate(datamart=datamart, count=profiles, tag=TAG)
        have = profiles
    _, raw_token = api_token_create(datamart=datamart, name="api-bench")
    return FakeRun(tag=TAG, created=min(have, profiles)), raw_token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    # The README's production section: about two gunicorn workers per core.
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1))
    options = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("bench/api_bench.py measures on PostgreSQL: set DATABASE_URL=postgresql://…")
    cache_url = os.environ.get("CACHE_URL", "")
    if not cache_url:
        print("CACHE_URL is not set: the rate limit is counted in the database cache")
    run, raw_token = set_up(options.profiles)
    accounts = [run.account_id(number) for number in range(run.created)]
    headers = {"Authorization": raw_token}

    def profile_read(client: int):
        account = random.choice(accounts)
        selector = f"compartment_id={COMPARTMENT},user_account_id={account}"
        return (
            "GET",
            f"/api/v1/datamarts/{DATAMART}/user_points/{selector}/user_profiles/"
            f"compartment_id={COMPARTMENT}/user_account_id={account}",
            None,
            headers,
        )

    def constant(client: int):
        return ("GET", "/bench/constant", None, {})

    def round_trips(client: int):
        return ("GET", "/bench/round_trips", None, {})

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "api_bench_settings",
        "PYTHONPATH": f"{ROOT}:{ROOT / 'bench'}",
        "DATABASE_CONN_MAX_AGE": os.environ.get("DATABASE_CONN_MAX_AGE", "60"),
        "API_RATE_LIMIT": "100000000/minute",  # measured, never reached
        "LOG_LEVEL": "WARNING",
    }
    targets = {
        "profile read by selector": profile_read,
        "bare DRF view (constant)": constant,
        "the read's two round trips alone": round_trips,
    }
    totals = {name: LoadResult() for name in targets}
    cpu = {name: dict.fromkeys(KINDS, 0.0) for name in targets}
    with tempfile.TemporaryDirectory() as folder:
        server = Gunicorn(env=env, log_path=Path(folder) / "gunicorn.log", workers=options.workers)
        with server:
            for target in targets.values():  # warm-up: connections, caches, imports
                load_run(server.host, target, clients=options.clients, seconds=2)
            for number in range(options.rounds):
                for name, target in targets.items():
                    before = cpu_seconds()
                    result = load_run(
                        server.host, target, clients=options.clients, seconds=options.seconds
                    )
                    after = cpu_seconds()
                    print(f"round {number + 1}, {name}: {result.summary()}", flush=True)
                    for kind, seconds in cpu_used(before, after).items():
                        cpu[name][kind] += seconds
                    totals[name].seconds += result.seconds
                    totals[name].latencies += result.latencies
                    totals[name].statuses.update(result.statuses)
                    for failure in result.failures[:3]:
                        print(f"  {failure}")
    print(
        f"\ngunicorn {options.workers} workers, {options.clients} clients, "
        f"DATABASE_CONN_MAX_AGE={env['DATABASE_CONN_MAX_AGE']}, "
        f"CACHE_URL={'set' if cache_url else 'unset (database cache)'}, "
        f"{len(accounts)} profiles\n"
    )
    print("| target | req/s | p50 ms | p99 ms | statuses |")
    print("|---|---:|---:|---:|---|")
    for name, result in totals.items():
        statuses = ", ".join(f"{s}: {c}" for s, c in sorted(result.statuses.items()))
        print(
            f"| {name} | {result.per_second:.0f} | {result.percentile(0.5):.1f} | "
            f"{result.percentile(0.99):.1f} | {statuses} |"
        )
    print("\nCPU per request, ms (from /proc; the machine's other jobs not counted):\n")
    print("| target | " + " | ".join(next(iter(cpu.values()))) + " | all |")
    print("|---|" + "---:|" * (len(next(iter(cpu.values()))) + 1))
    for name, used in cpu.items():
        requests = max(1, totals[name].requests)
        cells = [f"{seconds / requests * 1000:.2f}" for seconds in used.values()]
        print(
            f"| {name} | " + " | ".join(cells) + f" | {sum(used.values()) / requests * 1000:.2f} |"
        )
    read, bare, round_trips_only = totals.values()

    def share(result: LoadResult) -> float:
        return result.per_second / bare.per_second if bare.per_second else 0.0

    print(
        f"\nprofile read / bare view: {share(read):.2f}× "
        f"(target ≥ 0.6×); profile read p99 {read.percentile(0.99):.1f} ms (target ≤ 20 ms); "
        f"the two round trips alone / bare view: {share(round_trips_only):.2f}×"
    )


if __name__ == "__main__":
    main()
