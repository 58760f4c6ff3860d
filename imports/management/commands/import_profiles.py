"""`python manage.py import_profiles --datamart 1 FILE`: the real pipeline, in this process."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TextIO

from django.conf import settings
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from imports.formats import FileFormat, detect_format, format_spec
from imports.models import DocumentImport, Execution
from imports.pace import duration_text, execution_pace, failures_text, rate_text
from imports.partitions import execution_split
from imports.partitions_local import local_worker_name, partitions_run_locally
from imports.runner import execution_run
from imports.services import (
    document_import_column_mapping_save,
    execution_failed_lines,
    execution_failed_lines_write,
    execution_start,
)
from profiles.errors import ProfileError
from profiles.merge import parse_bool_word
from profiles.models import Datamart

SHOWN_ERRORS = 10
# Without a terminal (a log file, CI, cron), a progress line this often instead of a bar.
PROGRESS_LINE_SECONDS = 5.0


class ProgressLines:
    """Progress for logs: one plain line every PROGRESS_LINE_SECONDS, and one at the end."""

    def __init__(self, out: TextIO, *, every: float) -> None:
        self.out, self.every = out, every
        self.started = self.last = time.monotonic()
        self.processed, self.total = 0, None

    def __call__(self, processed: int, total: int | None) -> None:
        self.processed, self.total = processed, total
        if time.monotonic() - self.last >= self.every:
            self.write()

    def write(self) -> None:
        now = time.monotonic()
        self.last = now
        rate = self.processed / (now - self.started) if now > self.started else None
        of = f"/{self.total:,}" if self.total is not None else ""
        percent = f" ({self.processed / self.total:.0%})" if self.total else ""
        eta = ""
        if rate and self.total is not None and self.processed < self.total:
            eta = f", about {duration_text((self.total - self.processed) / rate)} left"
        self.out.write(
            f"progress: {self.processed:,}{of} lines{percent}, {rate_text(rate)}, "
            f"{duration_text(now - self.started)} elapsed{eta}\n"
        )
        self.out.flush()


def _mapping_read(path: str) -> object:
    try:
        with open(path, encoding="utf-8") as source:
            return json.load(source)
    except OSError as problem:
        raise CommandError(f"cannot read the mapping {path}: {problem.strerror}") from None
    except ValueError as problem:
        raise CommandError(f"the mapping {path} is not JSON: {problem}") from None


class Command(BaseCommand):
    help = (
        "Import a file of profile commands (NDJSON, JSON, CSV or XLSX) into a datamart, in this "
        "process, with a progress bar (a progress line every few seconds when stderr is not a "
        "terminal). The file is stored like an upload and recorded as an execution, so it can be "
        "followed in the back-office, resumed by a worker if this process dies, and retried."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="path of the file to import")
        parser.add_argument(
            "--datamart",
            type=int,
            required=True,
            help="id of the datamart to import into (it must exist: see create_datamart)",
        )
        parser.add_argument(
            "--format",
            choices=[fmt.value.lower() for fmt in FileFormat],
            help="default: from the file's extension",
        )
        parser.add_argument(
            "--encoding",
            default="utf-8",
            help="text encoding of a CSV, NDJSON or JSON file, e.g. latin-1 or cp1252 "
            "(default: utf-8, with or without BOM); ignored for XLSX",
        )
        parser.add_argument(
            "--update-strategy",
            default="PARTIAL_UPDATE",
            help="for lines that name none: PARTIAL_UPDATE, PARTIAL_DELETE or FORCE_REPLACE",
        )
        parser.add_argument(
            "--merge-objects",
            default="true",
            help="PARTIAL_UPDATE default: deep merge (true) or top-level keys only (false)",
        )
        parser.add_argument(
            "--failed-lines",
            metavar="PATH",
            help="where to write the failed lines when some fail (default: next to FILE, "
            "named FILE.failed-lines.<ext>)",
        )
        parser.add_argument(
            "--mapping",
            metavar="JSON_FILE",
            help="CSV/XLSX: a file holding the column mapping of the file's own headers, as the "
            'API\'s column_mapping: {"Customer ID": "user_account_id", "E-mail": {"to": '
            '"email_hash", "transform": "sha256_email"}, "Notes": null}',
        )
        parser.add_argument(
            "--empty-cells-are-empty-strings",
            action="store_true",
            help="CSV/XLSX: an empty cell is an empty string, not an absent key (SPEC §3)",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress output")
        parser.add_argument(
            "--parallel",
            type=int,
            default=1,
            metavar="N",
            help="apply the file in N local processes, its lines split by identifier",
        )

    def handle(self, *args, **options):
        path = options["file"]
        if not os.path.isfile(path):
            raise CommandError(f"no such file: {path}")
        datamart = Datamart.objects.filter(pk=options["datamart"]).first()
        if datamart is None:
            raise CommandError(f"datamart {options['datamart']} does not exist")
        fmt = FileFormat(options["format"].upper()) if options["format"] else detect_format(path)
        if fmt is None:
            raise CommandError("cannot tell the file's format from its name: give --format")
        document_import, _ = DocumentImport.objects.get_or_create(
            datamart=datamart,
            name=f"import_profiles command ({fmt.value})",
            defaults={
                "mime_type": format_spec(fmt).document_mime_type,
                "encoding": options["encoding"],
            },
        )
        merge_objects = parse_bool_word(options["merge_objects"])
        if merge_objects is None:  # as the API's ?merge_objects=: never read as false
            raise CommandError(
                f"--merge-objects takes true or false, not {options['merge_objects']!r}"
            )
        try:
            # The command's document import carries the mapping of its latest run (or none);
            # each execution keeps its own copy, so a resume reads its file the same way.
            document_import_column_mapping_save(
                document_import=document_import,
                column_mapping=_mapping_read(options["mapping"]) if options["mapping"] else None,
            )
            with open(path, "rb") as source:
                execution = execution_start(
                    document_import=document_import,
                    upload=File(source, name=os.path.basename(path)),
                    file_name=os.path.basename(path),
                    default_update_strategy=options["update_strategy"],
                    default_merge_objects=merge_objects,
                    file_format=fmt.value,
                    encoding=options["encoding"],
                    empty_cell_is_empty_string=options["empty_cells_are_empty_strings"],
                    enqueue=False,
                )
        except ProfileError as problem:
            raise CommandError(f"{problem.code}: {problem.message}") from None
        self.stdout.write(f"execution {execution.pk}: {path} ({fmt.value})")
        if options["parallel"] < 1:
            raise CommandError("--parallel takes a number of processes, 1 or more")
        if not execution.is_finished:
            self._run(
                execution, show_progress=not options["no_progress"], parallel=options["parallel"]
            )
        execution.refresh_from_db()
        self._report(execution, failed_lines_path=options["failed_lines"], source_path=path)
        if execution.status != Execution.Status.SUCCEEDED:
            raise CommandError(
                f"execution {execution.pk} {execution.status}: "
                f"{execution.error_code} {execution.error_message}".strip()
            )

    def _run(self, execution: Execution, *, show_progress: bool, parallel: int) -> None:
        parts = None
        if parallel > 1:
            parts = execution_split(
                execution_id=execution.pk, worker=local_worker_name(), count=parallel
            )

        def apply(progress) -> None:
            if parts is None:
                execution_run(execution_id=execution.pk, progress=progress)
            else:
                partitions_run_locally(execution_id=execution.pk, parts=parts, progress=progress)

        if show_progress and not sys.stderr.isatty():
            lines = ProgressLines(sys.stderr, every=PROGRESS_LINE_SECONDS)
            apply(lines)
            lines.write()
            return
        from tqdm import tqdm

        with tqdm(
            total=None, unit=" lines", disable=not show_progress, file=sys.stderr, leave=True
        ) as bar:

            def progress(processed: int, total: int | None) -> None:
                if total is not None and bar.total != total:
                    bar.total = total
                bar.update(processed - bar.n)

            apply(progress)

    def _report(self, execution: Execution, *, failed_lines_path: str | None, source_path: str):
        counters = execution.counters()
        failures = failures_text(
            failed=execution.failed, processed=execution.processed, total=execution.total_lines
        )
        pace = execution_pace(
            start=execution.start_ts,
            end=execution.end_ts,
            now=execution.end_ts or execution.created_ts,
            processed=execution.processed,
            total=execution.total_lines,
            running=False,
        )
        self.stdout.write(
            f"{execution.status}{' · ' + failures if failures else ''}: "
            + ", ".join(f"{name} {value}" for name, value in counters.items() if value is not None)
            + f" in {duration_text(pace.seconds)} ({rate_text(pace.lines_per_second)})"
        )
        errors = list(execution.errors.without_raw().order_by("line", "id")[:SHOWN_ERRORS])
        for error in errors:
            self.stdout.write(f"  line {error.line} {error.error_code}: {error.message}")
        if execution.failed > len(errors):
            self.stdout.write(f"  … and {execution.failed - len(errors)} more line errors")
        page = reverse("admin:imports_execution_change", args=[execution.pk])
        self.stdout.write(f"execution page: {settings.BACK_OFFICE_URL}{page}")
        if execution.failed:
            self._write_failed_lines(execution, failed_lines_path, source_path)

    def _write_failed_lines(self, execution: Execution, path: str | None, source_path: str):
        if path is None:
            name = execution_failed_lines(execution=execution).file_name
            path = os.path.join(os.path.dirname(os.path.abspath(source_path)), name)
        try:
            with open(path, "wb") as out:
                count = execution_failed_lines_write(execution=execution, out=out)
        except OSError as problem:
            download = reverse("admin:imports_execution_failed_lines", args=[execution.pk])
            self.stdout.write(
                f"failed lines: not written to {path} ({problem.strerror}); download them from "
                f"{settings.BACK_OFFICE_URL}{download}"
            )
            return
        self.stdout.write(
            f"failed lines: {path} ({count} line{'s' if count != 1 else ''}, with _line and "
            "_error: fix them and import that file again)"
        )
