"""`python manage.py import_profiles --datamart 1 FILE`: the real pipeline, in this process."""

from __future__ import annotations

import os
import sys

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from imports.formats import FileFormat, detect_format, format_spec
from imports.models import DocumentImport, Execution
from imports.partitions import execution_split
from imports.partitions_local import local_worker_name, partitions_run_locally
from imports.runner import execution_run
from imports.services import execution_start
from profiles.errors import ProfileError
from profiles.merge import parse_bool_word
from profiles.models import Datamart

SHOWN_ERRORS = 10


class Command(BaseCommand):
    help = (
        "Import a file of profile commands (NDJSON, JSON, CSV or XLSX) into a datamart, in this "
        "process, with a progress bar. The file is stored like an upload and recorded as an "
        "execution, so it can be followed, resumed by a worker if this process dies, and retried."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="path of the file to import")
        parser.add_argument("--datamart", type=int, required=True)
        parser.add_argument(
            "--format",
            choices=[fmt.value.lower() for fmt in FileFormat],
            help="default: from the file's extension",
        )
        parser.add_argument("--encoding", default="utf-8")
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
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
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
        merge_objects = parse_bool_word(options["merge_objects"]) is True
        try:
            with open(path, "rb") as source:
                execution = execution_start(
                    document_import=document_import,
                    upload=File(source, name=os.path.basename(path)),
                    file_name=os.path.basename(path),
                    default_update_strategy=options["update_strategy"],
                    default_merge_objects=merge_objects,
                    file_format=fmt.value,
                    encoding=options["encoding"],
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
        self._report(execution)
        if execution.status != Execution.Status.SUCCEEDED:
            raise CommandError(
                f"execution {execution.pk} {execution.status}: "
                f"{execution.error_code} {execution.error_message}".strip()
            )

    def _run(self, execution: Execution, *, show_progress: bool, parallel: int) -> None:
        from tqdm import tqdm

        parts = None
        if parallel > 1:
            parts = execution_split(
                execution_id=execution.pk, worker=local_worker_name(), count=parallel
            )
        with tqdm(
            total=None, unit=" lines", disable=not show_progress, file=sys.stderr, leave=True
        ) as bar:

            def progress(processed: int, total: int | None) -> None:
                if total is not None and bar.total != total:
                    bar.total = total
                bar.update(processed - bar.n)

            if parts is None:
                execution_run(execution_id=execution.pk, progress=progress)
            else:
                partitions_run_locally(execution_id=execution.pk, parts=parts, progress=progress)

    def _report(self, execution: Execution) -> None:
        counters = execution.counters()
        self.stdout.write(
            f"{execution.status}: "
            + ", ".join(f"{name} {value}" for name, value in counters.items() if value is not None)
        )
        errors = list(execution.errors.order_by("line", "id")[:SHOWN_ERRORS])
        for error in errors:
            self.stdout.write(f"  line {error.line} {error.error_code}: {error.message}")
        if execution.failed > len(errors):
            self.stdout.write(f"  … and {execution.failed - len(errors)} more line errors")
