"""Revert benchmark: an import of N lines, its revert, and the revert of the revert, timed.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/profiles_revert \
        .venv/bin/python bench/revert_bench.py --lines 100000

Uses bench/import_bench.py's seeded lines (new and existing accounts, repeats, deletes, bad
lines) on a fresh database (migrated, flushed: use a database of its own), runs the code a
worker runs, in this process (`imports.runner.execution_run`, `imports.revert.revert_run`),
and checks the profiles table's checksum (md5 of its rows in address order: point,
compartment, account, properties) after each step: the revert gives the one of before the
import, the revert of the revert the one after it. Prints lines/s: an import's lines are the
file's, a revert's the history rows it walks; both are also given as the import's lines per
second, the figure to compare.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import import_bench  # noqa: E402  (sets sys.path and DJANGO_SETTINGS_MODULE)


def profiles_checksum(datamart_id: int) -> str:
    from django.db import connection

    from profiles.models import UserProfile

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT md5(string_agg(concat_ws('|', user_point_id, compartment_id, "
                "coalesce(user_account_id, '-'), properties::text), E'\\n' "
                "ORDER BY user_point_id, compartment_id, user_account_id)) "
                "FROM profiles_userprofile WHERE datamart_id = %s",
                [datamart_id],
            )
            return cursor.fetchone()[0]
    import hashlib
    import json

    digest = hashlib.md5()
    rows = UserProfile.objects.filter(datamart_id=datamart_id).order_by(
        "user_point_id", "compartment_id", "user_account_id"
    )
    for row in rows.values_list("user_point_id", "compartment_id", "user_account_id", "properties"):
        digest.update(json.dumps([str(row[0]), *row[1:]], sort_keys=True).encode() + b"\n")
    return digest.hexdigest()


def timed(label: str, action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    print(f"  {label}: {seconds:.1f} s", flush=True)
    return seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--existing", type=int, default=None, help="seeded profiles (N/4)")
    args = parser.parse_args()
    existing = args.existing or max(1, min(args.lines // 4, 100_000))

    work = Path(tempfile.mkdtemp(prefix="revert-bench-"))
    try:
        import_bench.write_ndjson(import_bench.seed_commands(existing), work / "seed.ndjson")
        commands = import_bench.generate_commands(args.lines, args.seed, existing)
        import_bench.write_ndjson(commands, work / "bench.ndjson")
        del commands
        import_bench.prepare_database([1], work / "seed.ndjson")

        from django.core.files import File
        from django.db import connection

        from imports.models import DocumentImport, Execution
        from imports.revert import execution_revert, revert_run
        from imports.runner import execution_run
        from imports.services import execution_start

        print(f"{args.lines} lines, {existing} existing profiles, on {connection.vendor}")
        before = profiles_checksum(1)
        document_import = DocumentImport.objects.create(datamart_id=1, name="bench")
        with (work / "bench.ndjson").open("rb") as upload:
            execution = execution_start(
                document_import=document_import,
                upload=File(upload, name="bench.ndjson"),
                file_name="bench.ndjson",
                enqueue=False,
            )
        import_seconds, _ = timed("import", lambda: execution_run(execution_id=execution.pk))
        execution.refresh_from_db()
        imported = profiles_checksum(1)

        def revert_of(target: Execution) -> Execution:
            revert = execution_revert(execution=target, enqueue=False)
            revert_run(execution_id=revert.pk)
            revert.refresh_from_db()
            return revert

        revert_seconds, revert = timed("revert", lambda: revert_of(execution))
        after_revert = profiles_checksum(1)
        again_seconds, again = timed("revert of the revert", lambda: revert_of(revert))
        after_again = profiles_checksum(1)

        def rate(count: int, seconds: float) -> str:
            return f"{count / seconds:>9,.0f}/s"

        print()
        print(f"{'run':<22}{'status':<11}{'lines':>9}{'lines/s':>12}{'import lines/s':>16}")
        for label, run, seconds in (
            ("import", execution, import_seconds),
            ("revert", revert, revert_seconds),
            ("revert of the revert", again, again_seconds),
        ):
            print(
                f"{label:<22}{run.status:<11}{run.processed:>9,}{rate(run.processed, seconds):>12}"
                f"{rate(execution.processed, seconds):>16}"
            )
        print()
        print(f"import counters: {execution.counters()}")
        print(f"revert counters: {revert.counters()}")
        print(f"revert of the revert counters: {again.counters()}")
        print(f"revert / import time: {revert_seconds / import_seconds:.2f}")
        print(f"checksum before the import == after its revert: {before == after_revert}")
        print(
            f"checksum after the import == after the revert of the revert: {imported == after_again}"
        )
        if before != after_revert or imported != after_again:
            raise SystemExit("checksums differ")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
