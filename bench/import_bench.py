"""Import benchmark: the real pipeline next to django-import-export and PostgreSQL COPY.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/profiles_imports_bench \
        .venv/bin/python bench/import_bench.py --lines 100000

Generates N seeded import lines (NDJSON and CSV: new and existing accounts, nested
properties, repeated profiles, deletes, a few bad lines), migrates the database, and times,
each in a fresh child process (so its peak memory is its own):

- the pipeline (`imports.runner.execution_run`, in-process, the code a worker runs) on the
  NDJSON file and on the CSV file, with and without the history rows (ProfileChange);
- the same with tracemalloc, for the pipeline's peak of Python allocations;
- django-import-export's `import_data` of the same rows (ModelResource of UserProfile,
  default and `use_bulk`), on the first `--die-lines` rows only: it is slow;
- PostgreSQL `COPY` of the same rows (read, JSON-parsed, copied) into a plain table;
- optionally (`--worker`) the NDJSON file through a real Celery worker.

Every measured run imports into its own datamart, seeded alike with the existing profiles the
file updates. Prints lines/s, peak memory (ru_maxrss; tracemalloc) and the ratios.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "profiles_site.settings")
# A benchmark is a development tool: the development key unless one is set.
os.environ.setdefault("SECRET_KEY", "insecure-local-development-key-change-me")

CRM = 1606
FIRST_NAMES = ["David", "Alice", "Nora", "Jean", "Ines", "Omar", "Lea", "Hugo", "Zoe", "Paul"]
PERIODS = ["DAILY", "WEEKLY", "MONTHLY"]
TAGS = ["vip", "newsletter", "promo", "b2b", "store", "web", "app", "churn-risk"]
CSV_HEADER = [
    "operation",
    "compartment_id",
    "user_account_id",
    "email_hash",
    "update_strategy",
    "$compartment_id",
    "$user_account_id",
    "firstname",
    "age:int",
    "score:float",
    "newsletter.subscribed:bool",
    "newsletter.period",
    "tags:json",
    "contracts:json",
]


# --------------------------------------------------------------------------- generation


def _properties(rng: random.Random, full: bool) -> dict:
    properties = {
        "firstname": rng.choice(FIRST_NAMES),
        "newsletter": {"subscribed": rng.random() < 0.5, "period": rng.choice(PERIODS)},
        "tags": rng.sample(TAGS, rng.randint(1, 3)),
    }
    if full:
        properties["age"] = rng.randint(18, 90)
        properties["score"] = round(rng.random() * 100, 2)
        properties["contracts"] = [
            {"id": f"c{rng.randint(1, 9)}", "s": rng.choice(["on", "off"])}
            for _ in range(rng.randint(0, 2))
        ]
    elif rng.random() < 0.5:
        del properties["tags"]
    return properties


def _account_command(account: str, properties: dict, strategy: str | None = None) -> dict:
    command = {
        "operation": "UPSERT",
        "compartment_id": CRM,
        "user_account_id": account,
        "user_profile": {"$compartment_id": CRM, "$user_account_id": account, **properties},
    }
    if strategy:
        command["update_strategy"] = strategy
    return command


def changed_commands(count: int, seed: int) -> list[dict]:
    """The nightly re-import: every seeded profile once, in a shuffled order, each changed by
    a deep PARTIAL_UPDATE (the import's default) of all its properties."""
    rng = random.Random(seed + 1)
    order = list(range(count))
    rng.shuffle(order)
    return [_account_command(f"old-{i}", _properties(rng, True)) for i in order]


def seed_commands(count: int) -> list[dict]:
    rng = random.Random(7)
    return [
        _account_command(f"old-{i}", _properties(rng, True), "FORCE_REPLACE") for i in range(count)
    ]


def generate_commands(lines: int, seed: int, existing: int) -> Iterator[dict | str]:
    """The benchmark's lines: about 55 % new accounts, 25 % updates of existing ones, 8 %
    repeats of a profile met earlier in the file, 5 % e-mail identified (anonymous profiles),
    5 % deletes, 2 % bad lines (bad JSON, unknown compartment, reserved key, no identifier).

    Yielded one by one (10 million lines would not fit in memory as a list); the same seed
    yields the same lines."""
    rng = random.Random(seed)
    seen: list[str] = []
    for i in range(lines):
        draw = rng.random()
        if draw < 0.55 or (draw < 0.63 and not seen):
            account = f"new-{seed}-{i}"
            seen.append(account)
            yield _account_command(account, _properties(rng, True))
        elif draw < 0.63:
            yield _account_command(rng.choice(seen), _properties(rng, False))
        elif draw < 0.88:
            account = f"old-{rng.randrange(existing)}"
            strategy = rng.choice([None, None, None, "PARTIAL_DELETE", "FORCE_REPLACE"])
            properties = _properties(rng, strategy == "FORCE_REPLACE")
            if strategy == "PARTIAL_DELETE":
                properties = {"tags": properties.get("tags", ["vip"])}
            yield _account_command(account, properties, strategy)
        elif draw < 0.93:
            yield {
                "operation": "UPSERT",
                "email_hash": f"h{rng.randrange(lines)}",
                "user_profile": _properties(rng, True),
            }
        elif draw < 0.98:
            account = f"old-{rng.randrange(existing)}"
            yield {"operation": "DELETE", "compartment_id": CRM, "user_account_id": account}
        else:
            kind = rng.randrange(4)
            if kind == 0:
                yield '{"operation": "UPSERT", "email_hash": '
            elif kind == 1:
                yield _account_command(f"bad-{i}", {"firstname": "X"}) | {"compartment_id": 99999}
            elif kind == 2:
                yield _account_command(f"bad-{i}", {"$secret": 1})
            else:
                yield {"operation": "UPSERT", "user_profile": {"firstname": "X"}}


def write_ndjson(commands: Iterable, path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for command in commands:
            out.write((command if isinstance(command, str) else json.dumps(command)) + "\n")


def _csv_row(command: dict | str) -> list[str]:
    if isinstance(command, str):
        return ["UPSERT", str(CRM), "x", "", "", "", "", "", "not-a-number", "", "", "", "", ""]
    profile = command.get("user_profile") or {}
    newsletter = profile.get("newsletter") or {}

    def cell(value) -> str:
        return "" if value is None else str(value)

    return [
        command["operation"],
        cell(command.get("compartment_id")),
        cell(command.get("user_account_id")),
        cell(command.get("email_hash")),
        cell(command.get("update_strategy")),
        cell(profile.get("$compartment_id")),
        cell(profile.get("$user_account_id")),
        cell(profile.get("firstname")),
        cell(profile.get("age")),
        cell(profile.get("score")),
        "" if "subscribed" not in newsletter else str(newsletter["subscribed"]).lower(),
        cell(newsletter.get("period")),
        json.dumps(profile["tags"]) if "tags" in profile else "",
        json.dumps(profile["contracts"]) if "contracts" in profile else "",
    ]


def write_csv(commands: Iterable, path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_HEADER)
        for command in commands:
            if isinstance(command, dict) and "$secret" in (command.get("user_profile") or {}):
                command = {**command, "user_profile": {"firstname": "X"}, "compartment_id": 99999}
            writer.writerow(_csv_row(command))


# --------------------------------------------------------------------------- children


def _setup_django() -> None:
    import django

    django.setup()


def _peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM (ru_maxrss survives execve on Linux, so a
    child would report its parent's peak; the driver stays small anyway)."""
    hwm = _proc_hwm_mb(os.getpid())
    return hwm or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _backend_cpu():
    """A function reading the CPU seconds this process's PostgreSQL backend has used so far
    (from /proc: a server on this machine), or None (SQLite, a remote server)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        stat = Path(f"/proc/{cursor.fetchone()[0]}/stat")
    if not stat.exists():
        return None

    def used() -> float:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    return used


def child_pipeline(args: argparse.Namespace) -> dict:
    import tracemalloc

    _setup_django()
    from django.core.files import File

    from imports.models import DocumentImport, Execution
    from imports.runner import execution_run
    from imports.services import execution_start
    from profiles.models import Datamart

    datamart = Datamart.objects.get(pk=args.datamart)
    fmt = args.format.upper()
    document_import = DocumentImport.objects.create(
        datamart=datamart,
        name=f"bench {fmt}",
        mime_type={"NDJSON": "APPLICATION_X_NDJSON", "CSV": "TEXT_CSV"}[fmt],
    )
    with open(args.file, "rb") as upload:
        execution = execution_start(
            document_import=document_import,
            upload=File(upload, name=os.path.basename(args.file)),
            file_name=os.path.basename(args.file),
            enqueue=False,
        )
    rss_before = _peak_rss_mb()
    backend_cpu = _backend_cpu()
    backend_before = backend_cpu() if backend_cpu else 0.0
    if args.trace:
        tracemalloc.start()
    started = time.perf_counter()
    execution_run(execution_id=execution.pk, record_history=not args.no_history)
    seconds = time.perf_counter() - started
    backend_seconds = backend_cpu() - backend_before if backend_cpu else None
    trace_peak = tracemalloc.get_traced_memory()[1] / 2**20 if args.trace else None
    execution = Execution.objects.get(pk=execution.pk)
    return {
        "seconds": seconds,
        "lines": execution.processed,
        "status": execution.status,
        "counters": execution.counters(),
        "rss_before_mb": rss_before,
        "peak_rss_mb": _peak_rss_mb(),
        "tracemalloc_peak_mb": trace_peak,
        "postgres_cpu_seconds": backend_seconds,
    }


def child_die(args: argparse.Namespace) -> dict:
    _setup_django()
    import tablib
    from import_export import fields, resources, widgets

    from profiles.models import Compartment, UserPoint, UserProfile

    class UserProfileResource(resources.ModelResource):
        properties = fields.Field(
            attribute="properties", column_name="properties", widget=widgets.JSONWidget()
        )

        class Meta:
            model = UserProfile
            fields = ("datamart", "user_point", "compartment", "user_account_id", "properties")
            import_id_fields = ("compartment", "user_account_id")
            use_bulk = args.die_bulk
            batch_size = 1000

    compartment = Compartment.objects.get(datamart_id=args.datamart, compartment_id=CRM)
    points = dict(
        UserProfile.objects.filter(datamart_id=args.datamart, compartment=compartment).values_list(
            "user_account_id", "user_point_id"
        )
    )
    rows = []
    with open(args.file, encoding="utf-8") as source:
        for text in source:
            try:
                command = json.loads(text)
            except ValueError:
                continue
            account = command.get("user_account_id")
            if (
                command.get("operation") != "UPSERT"
                or account is None
                or command.get("compartment_id") != CRM
            ):
                continue
            properties = {k: v for k, v in command["user_profile"].items() if not k.startswith("$")}
            rows.append((account, properties))
            if len(rows) == args.die_lines:
                break
    if args.die_bulk:
        # use_bulk does not see a row created earlier in the same batch: one row per account.
        rows = list({account: (account, properties) for account, properties in rows}.values())
    # django-import-export cannot create user points: give it one per new account (untimed).
    missing = [account for account, _ in rows if account not in points]
    new_points = [UserPoint(datamart_id=args.datamart) for _ in missing]
    UserPoint.objects.bulk_create(new_points)
    points.update(zip(missing, (point.id for point in new_points), strict=True))
    dataset = tablib.Dataset(
        headers=["datamart", "user_point", "compartment", "user_account_id", "properties"]
    )
    for account, properties in rows:
        dataset.append(
            [args.datamart, str(points[account]), compartment.pk, account, json.dumps(properties)]
        )
    resource_ = UserProfileResource()
    started = time.perf_counter()
    result = resource_.import_data(dataset, dry_run=False, raise_errors=True)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "lines": len(rows),
        "status": "errors" if result.has_errors() else "ok",
        "peak_rss_mb": _peak_rss_mb(),
    }


def child_copy(args: argparse.Namespace) -> dict:
    _setup_django()
    from django.db import connection

    connection.ensure_connection()
    raw = connection.connection  # psycopg 3
    with raw.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_copy")
        cursor.execute(
            "CREATE TABLE bench_copy (id bigserial PRIMARY KEY, compartment_id integer, "
            "user_account_id text, email_hash text, properties jsonb)"
        )
    raw.commit()
    started = time.perf_counter()
    lines = 0
    with (
        raw.cursor() as cursor,
        cursor.copy(
            "COPY bench_copy (compartment_id, user_account_id, email_hash, properties) FROM STDIN"
        ) as copy,
        open(args.file, encoding="utf-8") as source,
    ):
        for text in source:
            lines += 1
            try:
                command = json.loads(text)
            except ValueError:
                continue
            profile = command.get("user_profile") or {}
            copy.write_row(
                (
                    command.get("compartment_id"),
                    command.get("user_account_id"),
                    command.get("email_hash"),
                    json.dumps({k: v for k, v in profile.items() if not k.startswith("$")}),
                )
            )
    raw.commit()
    seconds = time.perf_counter() - started
    with raw.cursor() as cursor:
        cursor.execute("DROP TABLE bench_copy")
    raw.commit()
    return {"seconds": seconds, "lines": lines, "status": "ok", "peak_rss_mb": _peak_rss_mb()}


def _copy_rows(copy, path: str) -> int:
    """Read and JSON-parse an NDJSON file, as the pipeline does, and COPY its rows; returns
    the lines read."""
    lines = 0
    with open(path, encoding="utf-8") as source:
        for text in source:
            lines += 1
            try:
                command = json.loads(text)
            except ValueError:
                continue
            profile = command.get("user_profile") or {}
            copy.write_row(
                (
                    lines,
                    command.get("compartment_id"),
                    command.get("user_account_id"),
                    json.dumps({k: v for k, v in profile.items() if not k.startswith("$")}),
                )
            )
    return lines


def child_copy_merge(args: argparse.Namespace) -> dict:
    """What PostgreSQL does alone: the file COPYed into a staging table and merged into a
    table of profiles holding the seeded ones, with one INSERT … ON CONFLICT DO UPDATE SET
    properties = properties || EXCLUDED.properties (the last line of an account wins)."""
    _setup_django()
    from django.db import connection

    connection.ensure_connection()
    raw = connection.connection
    staging = "CREATE TEMPORARY TABLE {} (line bigint, compartment_id integer, "
    staging += "user_account_id text, properties jsonb)"
    with raw.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_merge")
        cursor.execute(
            "CREATE TABLE bench_merge (id bigserial PRIMARY KEY, compartment_id integer, "
            "user_account_id text, properties jsonb, UNIQUE (compartment_id, user_account_id))"
        )
        cursor.execute(staging.format("bench_seed"))
        with cursor.copy("COPY bench_seed FROM STDIN") as copy:
            _copy_rows(copy, args.seed_file)
        cursor.execute(
            "INSERT INTO bench_merge (compartment_id, user_account_id, properties) "
            "SELECT compartment_id, user_account_id, properties FROM bench_seed"
        )
        cursor.execute("CREATE INDEX ON bench_merge USING gin (properties jsonb_path_ops)")
        cursor.execute("ANALYZE bench_merge")
    raw.commit()
    backend_cpu = _backend_cpu()
    backend_before = backend_cpu() if backend_cpu else 0.0
    started = time.perf_counter()
    with raw.cursor() as cursor:
        cursor.execute(staging.format("bench_staging"))
        with cursor.copy("COPY bench_staging FROM STDIN") as copy:
            lines = _copy_rows(copy, args.file)
        cursor.execute(
            "INSERT INTO bench_merge AS p (compartment_id, user_account_id, properties) "
            "SELECT DISTINCT ON (compartment_id, user_account_id) compartment_id, "
            "user_account_id, properties FROM bench_staging WHERE user_account_id IS NOT NULL "
            "ORDER BY compartment_id, user_account_id, line DESC "
            "ON CONFLICT (compartment_id, user_account_id) DO UPDATE "
            "SET properties = p.properties || EXCLUDED.properties"
        )
    raw.commit()
    seconds = time.perf_counter() - started
    backend_seconds = backend_cpu() - backend_before if backend_cpu else None
    with raw.cursor() as cursor:
        cursor.execute("DROP TABLE bench_merge")
    raw.commit()
    return {
        "seconds": seconds,
        "lines": lines,
        "status": "ok",
        "peak_rss_mb": _peak_rss_mb(),
        "postgres_cpu_seconds": backend_seconds,
    }


def _proc_hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _children_of(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def child_worker(args: argparse.Namespace) -> dict:
    """The NDJSON file queued for a real Celery worker (filesystem broker in a temp folder)."""
    _setup_django()
    from django.conf import settings
    from django.core.files import File

    from imports.models import DocumentImport
    from imports.services import execution_start
    from profiles_site.celery import app

    var = Path(tempfile.mkdtemp(prefix="import-bench-"))
    env = dict(
        os.environ,
        PROFILES_VAR_DIR=str(var),
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        IMPORT_PARALLELISM=str(args.parts),
    )
    if not env.get("CELERY_BROKER_URL", "").startswith(("redis", "amqp")):
        env["CELERY_BROKER_URL"] = "filesystem://"
        broker = var / "broker"
        for sub in ("queue", "processed", "control"):
            (broker / sub).mkdir(parents=True, exist_ok=True)
        app.conf.broker_transport_options = {
            "data_folder_in": str(broker / "queue"),
            "data_folder_out": str(broker / "queue"),
            "processed_folder": str(broker / "processed"),
            "control_folder": str(broker / "control"),
            "store_processed": False,
        }
    log_path = var / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "profiles_site",
                "worker",
                f"--concurrency={args.parts}",
                "--loglevel=INFO",
                "-n",
                "bench@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while b" ready." not in log_path.read_bytes():  # time the import, not the start-up
            if worker.poll() is not None:
                raise RuntimeError(log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.1)
        document_import = DocumentImport.objects.create(
            datamart_id=args.datamart, name="bench worker"
        )
        with open(args.file, "rb") as upload:
            started = time.perf_counter()
            execution = execution_start(
                document_import=document_import,
                upload=File(upload, name=os.path.basename(args.file)),
                file_name=os.path.basename(args.file),
            )
        peak = _watch_until_finished(worker.pid, execution)
        seconds = time.perf_counter() - started
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:  # a loaded machine: do not lose the measurement
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(30)
        shutil.rmtree(var, ignore_errors=True)
    return {
        "seconds": seconds,
        "lines": execution.processed,
        "status": execution.status,
        "peak_rss_mb": peak,
    }


def _watch_until_finished(pid: int, execution) -> float:
    """Wait for the execution to finish; returns the largest peak RSS of `pid` and of its
    children (a worker's pool, import_profiles' part processes), each process on its own."""
    peak = 0.0
    while True:
        execution.refresh_from_db()
        for process in [pid, *_children_of(pid)]:
            peak = max(peak, _proc_hwm_mb(process))
        if execution.is_finished:
            return peak
        time.sleep(0.2)


def child_command(args: argparse.Namespace) -> dict:
    """`manage.py import_profiles --parallel N` as a user runs it, timed from the stored file
    (the execution's creation) to its end: Django's start-up is left out."""
    _setup_django()
    from imports.models import Execution

    seeded = Execution.objects.filter(datamart_id=args.datamart).values_list("pk", flat=True)
    after = max(seeded, default=0)
    command = subprocess.Popen(
        [sys.executable, "manage.py", "import_profiles", "--datamart", str(args.datamart)]
        + [str(args.file), "--no-progress", "--parallel", str(args.parts)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    ours = Execution.objects.filter(datamart_id=args.datamart, pk__gt=after)
    while not ours.exists():
        if command.poll() is not None:
            raise RuntimeError(command.stderr.read().decode(errors="replace")[-3000:])
        time.sleep(0.05)
    execution = ours.get()
    peak = _watch_until_finished(command.pid, execution)
    command.wait(60)
    seconds = (execution.end_ts - execution.created_ts).total_seconds()
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu.ru_utime + cpu.ru_stime,
        "lines": execution.processed,
        "status": execution.status,
        "counters": execution.counters(),
        "peak_rss_mb": peak,
    }


def child_generate(args: argparse.Namespace) -> dict:
    """Write the files from a child, so the driver's memory stays small."""
    work = Path(args.file)
    started = time.perf_counter()
    write_ndjson(seed_commands(args.existing), work / "seed.ndjson")
    write_ndjson(generate_commands(args.lines, args.seed, args.existing), work / "bench.ndjson")
    write_ndjson(changed_commands(args.existing, args.seed), work / "changed.ndjson")
    if not args.no_csv:
        write_csv(generate_commands(args.lines, args.seed, args.existing), work / "bench.csv")
    return {"seconds": time.perf_counter() - started}


CHILDREN = {
    "generate": child_generate,
    "pipeline": child_pipeline,
    "die": child_die,
    "copy": child_copy,
    "worker": child_worker,
    "command": child_command,
    "copy_merge": child_copy_merge,
}


# --------------------------------------------------------------------------- driver


def run_child(kind: str, **options) -> dict:
    command = [sys.executable, __file__, "--child", kind]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            command.append(flag)
        elif value not in (None, False):
            command += [flag, str(value)]
    output = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if output.returncode:
        sys.stderr.write(output.stderr[-3000:])
        raise SystemExit(f"{kind} run failed")
    return json.loads(output.stdout.strip().splitlines()[-1])


def prepare_database(datamarts: list[int], seed_file: Path) -> None:
    _setup_django()
    from django.core.files import File
    from django.core.management import call_command

    from imports.models import DocumentImport
    from imports.runner import execution_run
    from imports.services import execution_start
    from profiles.services import compartment_create, datamart_create

    call_command("migrate", verbosity=0)
    # The benchmark database is the benchmark's own: start from empty tables.
    call_command("flush", interactive=False, verbosity=0)
    for datamart_id in datamarts:
        datamart = datamart_create(
            datamart_id=datamart_id, name=f"bench {datamart_id}", default_compartment_id=1
        )
        compartment_create(datamart=datamart, compartment_id=CRM, name="CRM")
        document_import = DocumentImport.objects.create(datamart=datamart, name="seed")
        with seed_file.open("rb") as upload:
            execution = execution_start(
                document_import=document_import,
                upload=File(upload, name="seed.ndjson"),
                file_name="seed.ndjson",
                enqueue=False,
            )
        execution_run(execution_id=execution.pk)
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def _rate(result: dict) -> float:
    return result["lines"] / result["seconds"] if result["seconds"] else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--existing", type=int, default=None, help="seeded profiles (default N/4, at most 100k)"
    )
    parser.add_argument("--die-lines", type=int, default=10_000)
    parser.add_argument("--no-die", action="store_true")
    parser.add_argument("--no-copy", action="store_true")
    parser.add_argument("--no-csv", action="store_true")
    parser.add_argument("--no-trace", action="store_true", help="skip the tracemalloc run")
    parser.add_argument(
        "--worker", action="store_true", help="also run through a real Celery worker"
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of the NDJSON pipeline with/without history"
    )
    # child processes
    parser.add_argument("--child", choices=sorted(CHILDREN))
    parser.add_argument("--datamart", type=int)
    parser.add_argument("--file")
    parser.add_argument("--format", default="ndjson")
    parser.add_argument("--no-history", action="store_true")
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--die-bulk", action="store_true")
    parser.add_argument("--seed-file")
    parser.add_argument("--parts", type=int, default=1, help="workers / processes on one file")
    parser.add_argument(
        "--no-parallel", action="store_true", help="skip import_profiles --parallel 1 vs 2"
    )
    parser.add_argument(
        "--parallel-only",
        action="store_true",
        help="only the 1 vs 2 processes (and workers with --worker) pairs, repeated",
    )
    parser.add_argument(
        "--pipeline-only",
        action="store_true",
        help="one NDJSON pipeline run, for its time and peak memory (1M, 10M lines)",
    )
    args = parser.parse_args()

    if args.child:
        print(json.dumps(CHILDREN[args.child](args)))
        return

    existing = args.existing or max(1, min(args.lines // 4, 100_000))
    work = Path(tempfile.mkdtemp(prefix="import-bench-"))
    seed_file, ndjson_file, csv_file = (
        work / "seed.ndjson",
        work / "bench.ndjson",
        work / "bench.csv",
    )
    generated = run_child(
        "generate",
        file=work,
        lines=args.lines,
        seed=args.seed,
        existing=existing,
        no_csv=args.no_csv,
    )
    print(
        f"generated {args.lines} lines ({ndjson_file.stat().st_size / 2**20:.1f} MB NDJSON) "
        f"and {existing} existing profiles in {generated['seconds']:.1f} s"
    )

    # With and without history, alternated and repeated: on a shared machine one pair of runs
    # can differ by more than the history costs. Each pair swaps which goes first (the tables
    # grow run after run); medians are reported.
    plan: list[tuple[str, str, dict]] = []
    for repeat in range(1, args.repeat + 1):
        suffix = f" #{repeat}" if args.repeat > 1 else ""
        pair = [
            (f"pipeline NDJSON{suffix}", "pipeline", {"file": ndjson_file, "format": "ndjson"}),
            (
                f"pipeline NDJSON, no history{suffix}",
                "pipeline",
                {"file": ndjson_file, "format": "ndjson", "no_history": True},
            ),
        ]
        plan.extend(pair if repeat % 2 else reversed(pair))
    if not args.no_csv:
        plan.append(("pipeline CSV", "pipeline", {"file": csv_file, "format": "csv"}))
    changed_file = work / "changed.ndjson"
    for repeat in range(1, args.repeat + 1):
        suffix = f" #{repeat}" if args.repeat > 1 else ""
        plan.append(
            (
                f"pipeline changed re-import{suffix}",
                "pipeline",
                {"file": changed_file, "format": "ndjson"},
            )
        )
    if not args.no_trace:
        plan.append(
            (
                "pipeline NDJSON + tracemalloc",
                "pipeline",
                {"file": ndjson_file, "format": "ndjson", "trace": True},
            )
        )
    # One process against two on the same file, alternated and repeated like the pairs above.
    for repeat in range(1, (0 if args.no_parallel else args.repeat) + 1):
        suffix = f" #{repeat}" if args.repeat > 1 else ""
        pair = [
            (
                f"import_profiles --parallel {parts}{suffix}",
                "command",
                {"file": ndjson_file, "parts": parts},
            )
            for parts in (1, 2)
        ]
        plan.extend(pair if repeat % 2 else reversed(pair))
    if args.parallel_only:
        plan = [entry for entry in plan if entry[1] == "command"]
    if args.pipeline_only:
        plan = [entry for entry in plan if entry[0].startswith("pipeline NDJSON")][:1]
    if args.worker:
        order = (1, 2) if args.repeat == 1 or not args.parallel_only else (1, 2, 2, 1)
        for run_number, parts in enumerate(order):
            suffix = f" #{run_number // 2 + 1}" if len(order) > 2 else ""
            plan.append(
                (
                    f"Celery worker NDJSON, IMPORT_PARALLELISM={parts}{suffix}",
                    "worker",
                    {"file": ndjson_file, "parts": parts},
                )
            )
    if not args.no_die and not args.parallel_only and not args.pipeline_only:
        plan.append(
            (
                f"django-import-export ({args.die_lines} rows)",
                "die",
                {"file": ndjson_file, "die_lines": args.die_lines},
            )
        )
        plan.append(
            (
                f"django-import-export use_bulk ({args.die_lines} rows)",
                "die",
                {"file": ndjson_file, "die_lines": args.die_lines, "die_bulk": True},
            )
        )
    datamarts = list(range(101, 101 + len(plan)))
    started = time.perf_counter()
    prepare_database(datamarts, seed_file)
    print(f"seeded {len(datamarts)} datamarts in {time.perf_counter() - started:.1f} s\n")

    results: dict[str, dict] = {}
    for (label, kind, options), datamart in zip(plan, datamarts, strict=True):
        result = run_child(kind, datamart=datamart, **options)
        results[label] = result
        trace = result.get("tracemalloc_peak_mb")
        print(
            f"{label:48} {result['lines']:>9} lines {result['seconds']:8.1f} s "
            f"{_rate(result):>9.0f} lines/s  peak RSS {result['peak_rss_mb']:6.0f} MB"
            + (f"  tracemalloc peak {trace:.1f} MB" if trace is not None else "")
            + (f"  CPU {result['cpu_seconds']:.1f} s" if "cpu_seconds" in result else "")
            + (
                f"  PostgreSQL CPU {result['postgres_cpu_seconds']:.1f} s"
                if result.get("postgres_cpu_seconds") is not None
                else ""
            )
            + (f"  [{result['status']}]" if result["status"] not in ("ok", "SUCCEEDED") else "")
        )
        if "counters" in result:
            print(f"{'':48} {result['counters']}")
    from django.db import connection

    copy_wanted = not (args.no_copy or args.parallel_only or args.pipeline_only)
    if copy_wanted and connection.vendor == "postgresql":
        result = run_child("copy", file=ndjson_file)
        results["COPY"] = result
        print(
            f"{'PostgreSQL COPY (parse + copy)':48} {result['lines']:>9} lines {result['seconds']:8.1f} s "
            f"{_rate(result):>9.0f} lines/s  peak RSS {result['peak_rss_mb']:6.0f} MB"
        )
        for name, path in (("mixed", ndjson_file), ("changed", changed_file)):
            result = run_child("copy_merge", file=path, seed_file=seed_file)
            results[f"COPY + merge {name}"] = result
            print(
                f"{'PostgreSQL COPY + merge, ' + name:48} {result['lines']:>9} lines "
                f"{result['seconds']:8.1f} s {_rate(result):>9.0f} lines/s  "
                f"peak RSS {result['peak_rss_mb']:6.0f} MB"
                + (
                    f"  PostgreSQL CPU {result['postgres_cpu_seconds']:.1f} s"
                    if result.get("postgres_cpu_seconds") is not None
                    else ""
                )
            )

    with_history = [
        r
        for label, r in results.items()
        if label.startswith("pipeline NDJSON") and "history" not in label and "trace" not in label
    ]
    without_history = [r for label, r in results.items() if "no history" in label]
    pipeline = statistics.median(
        _rate(result) for result in with_history or [{"lines": 0, "seconds": 1}]
    )
    print()
    if with_history and without_history:
        bare = statistics.median(_rate(result) for result in without_history)
        print(
            f"pipeline NDJSON (median of {len(with_history)}): {pipeline:.0f} lines/s; "
            f"without history: {bare:.0f} lines/s"
        )
        print(f"history recording costs {1 - pipeline / bare:.1%} of the no-history throughput")
    if "COPY" in results:
        print(f"pipeline / COPY: {pipeline / _rate(results['COPY']):.2f}")
    changed = [_rate(r) for label, r in results.items() if label.startswith("pipeline changed")]
    if "COPY + merge mixed" in results:
        merged = _rate(results["COPY + merge mixed"])
        print(f"pipeline NDJSON / COPY + merge of the same lines: {pipeline / merged:.2f}")
    if changed and "COPY + merge changed" in results:
        median = statistics.median(changed)
        merged = _rate(results["COPY + merge changed"])
        print(
            f"changed re-import (median of {len(changed)}): {median:.0f} lines/s; "
            f"/ COPY + merge of the same lines: {median / merged:.2f}"
        )
    # What the database alone does for the pipeline bounds the ratio, however fast the worker:
    # points, identifiers, history rows, their indexes and foreign keys, which the COPY + merge
    # table has none of.
    for label, baseline in (
        ("pipeline NDJSON", "COPY + merge mixed"),
        ("pipeline changed re-import", "COPY + merge changed"),
    ):
        database = [
            r["postgres_cpu_seconds"] / r["lines"]
            for name, r in results.items()
            if name.startswith(label)
            and "history" not in name
            and "trace" not in name
            and r.get("postgres_cpu_seconds")
        ]
        if database and baseline in results:
            per_line = statistics.median(database)
            whole = results[baseline]["seconds"] / results[baseline]["lines"]
            print(
                f"{label}: PostgreSQL CPU {per_line * 1e6:.0f} µs a line, "
                f"{baseline} {whole * 1e6:.0f} µs a line in all: with no time in the worker "
                f"the ratio would be at most {whole / per_line:.2f}"
            )
    for name in ("import_profiles --parallel", "Celery worker NDJSON, IMPORT_PARALLELISM="):
        by_parts = {
            parts: [
                _rate(result)
                for label, result in results.items()
                if label.startswith(name) and label.removeprefix(name).split()[0] == str(parts)
            ]
            for parts in (1, 2)
        }
        if by_parts[1] and by_parts[2]:
            one, two = statistics.median(by_parts[1]), statistics.median(by_parts[2])
            print(
                f"{name.rstrip('=')}: 1 -> {one:.0f} lines/s, 2 -> {two:.0f} lines/s "
                f"(medians of {len(by_parts[1])}): 2 / 1 = {two / one:.2f}x"
                + ("  [target >= 1.2x met]" if two / one >= 1.2 else "  [target >= 1.2x NOT met]")
            )
    for label, result in results.items():
        if label.startswith("django-import-export"):
            print(f"pipeline / {label}: {pipeline / _rate(result):.1f}x")
    if args.keep:
        print(f"files kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
