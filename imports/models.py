"""Document imports (named definitions) and their executions (one uploaded file each), SPEC §4."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from imports.formats import FileFormat, format_of_document_mime_type, format_spec
from profiles.models import ApiToken, Datamart, epoch_ms


class DocumentImport(models.Model):
    class DocumentType(models.TextChoices):
        USER_PROFILE = "USER_PROFILE"

    class MimeType(models.TextChoices):
        # Values and labels come from the one format table (imports.formats).
        NDJSON = format_spec(FileFormat.NDJSON).document_mime_choice
        CSV = format_spec(FileFormat.CSV).document_mime_choice
        JSON = format_spec(FileFormat.JSON).document_mime_choice
        XLSX = format_spec(FileFormat.XLSX).document_mime_choice

    datamart = models.ForeignKey(
        Datamart, on_delete=models.CASCADE, related_name="document_imports"
    )
    name = models.CharField(max_length=255)
    document_type = models.CharField(
        max_length=32, choices=DocumentType.choices, default=DocumentType.USER_PROFILE
    )
    mime_type = models.CharField(max_length=32, choices=MimeType.choices, default=MimeType.NDJSON)
    encoding = models.CharField(max_length=32, default="utf-8")
    column_mapping = models.JSONField(
        null=True,
        blank=True,
        help_text="CSV/XLSX: each source header → a reserved column, a property path "
        '(optionally typed, e.g. newsletter.opt_in:bool), null to ignore it, or {"to": …, '
        '"transform": "sha256_email" | "trim" | "lower"}. Empty: the files use the import headers.',
    )
    created_ts = models.DateTimeField("created", default=timezone.now, editable=False)

    class Meta:
        ordering = ["datamart_id", "id"]

    def __str__(self) -> str:
        # "Back-office uploads (CSV)" names its format already; "CRM sync" gets "(CSV)".
        file_format = format_of_document_mime_type(self.mime_type)
        label = format_spec(file_format).label if file_format else self.mime_type
        return self.name if f"({label})" in self.name else f"{self.name} ({label})"


# A revert that is pending, running or done holds the execution it reverts: no second one.
REVERT_HOLDING_STATUSES = ("PENDING", "RUNNING", "SUCCEEDED")


class Execution(models.Model):
    """One file run through a document import by Celery workers, chunk by chunk."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        RUNNING = "RUNNING"
        SUCCEEDED = "SUCCEEDED"
        FAILED = "FAILED"
        CANCELED = "CANCELED"

    # The only moves a status may make; RUNNING -> RUNNING is a worker resuming after a crash.
    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.PENDING: frozenset({Status.RUNNING, Status.FAILED, Status.CANCELED}),
        Status.RUNNING: frozenset(
            {Status.RUNNING, Status.SUCCEEDED, Status.FAILED, Status.CANCELED}
        ),
        Status.SUCCEEDED: frozenset(),
        Status.FAILED: frozenset(),
        Status.CANCELED: frozenset(),
    }
    COUNTERS = ("created", "updated", "deleted", "unchanged", "not_found", "failed")

    datamart = models.ForeignKey(Datamart, on_delete=models.CASCADE, related_name="+")
    document_import = models.ForeignKey(
        DocumentImport, on_delete=models.CASCADE, related_name="executions"
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    file = models.FileField(upload_to="imports/%Y/%m/%d/", max_length=500)
    file_name = models.CharField(
        max_length=255, blank=True, help_text="The name it was uploaded with."
    )
    file_size = models.BigIntegerField(default=0)
    file_format = models.CharField(max_length=8, blank=True, help_text="NDJSON, JSON, CSV or XLSX.")
    encoding = models.CharField(max_length=32, default="utf-8")
    delimiter = models.CharField(max_length=1, blank=True, help_text="CSV: the delimiter found.")
    default_update_strategy = models.CharField(max_length=16, default="PARTIAL_UPDATE")
    default_merge_objects = models.BooleanField(default=True)
    empty_cell_is_empty_string = models.BooleanField(
        default=False,
        help_text="CSV, XLSX: an empty cell is an empty string, not an absent key (SPEC §3).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_token = models.ForeignKey(
        ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_ts = models.DateTimeField("uploaded", default=timezone.now, editable=False)
    start_ts = models.DateTimeField("started", null=True, blank=True)
    end_ts = models.DateTimeField("ended", null=True, blank=True)

    total_lines = models.BigIntegerField(
        null=True, blank=True, help_text="Known once read to the end."
    )
    processed = models.BigIntegerField(default=0)
    created = models.BigIntegerField(default=0)
    updated = models.BigIntegerField(default=0)
    deleted = models.BigIntegerField(default=0)
    unchanged = models.BigIntegerField(default=0)
    not_found = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)

    # The checkpoint, committed with each chunk: where a resumed run starts.
    checkpoint_line = models.BigIntegerField(default=0, help_text="Last source line applied.")
    checkpoint_offset = models.BigIntegerField(
        default=0, help_text="Byte offset after it (NDJSON/CSV)."
    )
    attempts = models.PositiveIntegerField(default=0, help_text="Runs started at this checkpoint.")
    cancel_requested = models.BooleanField(default=False)
    # The run that owns the execution: a worker's node name, a token per run (a run whose token
    # was replaced stops), and the time of its last committed chunk (a stale one may be taken over).
    worker = models.CharField(max_length=255, blank=True, help_text="Node name of its worker.")
    claim = models.CharField(max_length=32, blank=True, editable=False)
    heartbeat_ts = models.DateTimeField("last heartbeat", null=True, blank=True)
    headers = models.JSONField(
        null=True, blank=True, help_text="CSV/XLSX: the header row, for the failed-lines file."
    )
    column_mapping = models.JSONField(
        null=True,
        blank=True,
        help_text="The document import's column mapping when the file was uploaded: a resumed "
        "run or a retry reads the file the same way.",
    )
    retry_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="retries",
        help_text="The execution this one runs again.",
    )
    # A revert (docs/rules.md#revert) is an execution with no file: it walks the history rows of
    # the execution it reverts; its checkpoint is the rows walked and the last row's id.
    reverts = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reverted_by",
        help_text="The execution whose changes this one undoes.",
    )
    revert_force = models.BooleanField(
        default=False, help_text="A revert: also put back profiles changed since by others."
    )
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    # [seconds since start, processed, failed] after each committed chunk, thinned to a few
    # hundred points (imports.pace.series_append): the pace chart's data.
    progress_series = models.JSONField(
        default=list, blank=True, help_text="Progress after each chunk, for the pace chart."
    )

    class Meta:
        ordering = ["-created_ts", "-id"]
        indexes = [models.Index(fields=["datamart", "-created_ts"])]
        constraints = [
            models.UniqueConstraint(
                fields=["reverts"],
                condition=models.Q(status__in=REVERT_HOLDING_STATUSES),
                name="one_live_revert_per_execution",
            )
        ]

    def __str__(self) -> str:
        return f"execution {self.pk} of {self.document_import.name}: {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED, self.Status.CANCELED}

    @property
    def progress(self) -> float:
        if self.status == self.Status.SUCCEEDED:
            return 1.0
        if not self.total_lines:
            return 0.0
        return min(1.0, self.processed / self.total_lines)

    def counters(self) -> dict[str, int | None]:
        return {
            "total": self.total_lines,
            "processed": self.processed,
            **{name: getattr(self, name) for name in self.COUNTERS},
        }

    def transition(self, to: str, *, error_code: str = "", error_message: str = "") -> bool:
        """Move to `to` if the current status allows it, stamping the times; returns whether it moved.

        The UPDATE names the statuses it may leave, so two workers (or a worker and a cancel)
        cannot both move the same execution.
        """
        allowed_from = [status for status, targets in self.TRANSITIONS.items() if to in targets]
        now = timezone.now()
        changes: dict[str, object] = {"status": to}
        if to == self.Status.RUNNING:
            changes["start_ts"] = self.start_ts or now
        if to in {self.Status.SUCCEEDED, self.Status.FAILED, self.Status.CANCELED}:
            changes["end_ts"] = now
        if error_code:
            changes["error_code"] = error_code
            changes["error_message"] = error_message
        moved = Execution.objects.filter(pk=self.pk, status__in=allowed_from).update(**changes)
        if moved:
            for field, value in changes.items():
                setattr(self, field, value)
        else:
            self.refresh_from_db(fields=["status"])
        return bool(moved)

    def as_api_object(self) -> dict:
        return (
            {
                "id": self.pk,
                "document_import_id": self.document_import_id,
                "status": self.status,
                "created_ts": epoch_ms(self.created_ts),
                "start_ts": epoch_ms(self.start_ts),
                "end_ts": epoch_ms(self.end_ts),
                "progress": self.progress,
                "counters": self.counters(),
            }
            | ({"reverts": self.reverts_id} if self.reverts_id else {})
            | (
                {"error": {"error_code": self.error_code, "message": self.error_message}}
                if self.status == self.Status.FAILED
                else {}
            )
        )


class ExecutionErrorQuerySet(models.QuerySet):
    def without_raw(self) -> ExecutionErrorQuerySet:
        """For the pages that list errors (API, admin): they never show the source record,
        which may weigh up to IMPORT_ERROR_RAW_MAX_BYTES each."""
        return self.defer("raw")


class ExecutionPartition(models.Model):
    """One part of an execution split between several workers (imports.partitions): the
    file's lines whose identifier hashes to `number` out of `count`, with its own checkpoint
    and run ownership, as an unsplit execution keeps them on its own row."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="partitions")
    number = models.PositiveSmallIntegerField()
    count = models.PositiveSmallIntegerField()
    finished = models.BooleanField(default=False)
    processed = models.BigIntegerField(default=0)
    checkpoint_line = models.BigIntegerField(default=0)
    checkpoint_offset = models.BigIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=255, blank=True)
    claim = models.CharField(max_length=32, blank=True, editable=False)
    heartbeat_ts = models.DateTimeField(null=True, blank=True)
    # A file-level error met by this part: the execution fails with it once every part ends.
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)

    class Meta:
        ordering = ["execution_id", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["execution", "number"], name="execution_partition_unique_number"
            )
        ]

    def __str__(self) -> str:
        return f"part {self.number + 1}/{self.count} of execution {self.execution_id}"


class ExecutionError(models.Model):
    """One line that was not applied: kept with its source record for the failed-lines file."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="errors")
    line = models.BigIntegerField()
    identifier = models.CharField(max_length=600, blank=True)
    error_code = models.CharField(max_length=64)
    message = models.TextField()
    field = models.CharField(max_length=300, blank=True)
    raw = models.JSONField(null=True, blank=True, help_text="The source record, as read.")
    raw_size = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Set when the record was too large to keep (IMPORT_ERROR_RAW_MAX_BYTES): its "
        "size in bytes as JSON text; raw then holds the first bytes of that text.",
    )

    objects = ExecutionErrorQuerySet.as_manager()

    class Meta:
        ordering = ["execution_id", "line", "id"]
        indexes = [models.Index(fields=["execution", "line"])]

    def __str__(self) -> str:
        return f"line {self.line}: {self.error_code}"

    def as_api_object(self) -> dict:
        return {
            "line": self.line,
            "identifier": self.identifier,
            "error_code": self.error_code,
            "message": self.message,
        }


class ExportJob(models.Model):
    """A profile export too large for one request, written to a file by a Celery worker.

    It keeps the profile list's filters (its query string), its datamart and who asked: the
    worker rebuilds the same list, scoped to that user's datamarts at the time it runs.
    """

    class Status(models.TextChoices):
        PENDING = "PENDING"
        RUNNING = "RUNNING"
        SUCCEEDED = "SUCCEEDED"
        FAILED = "FAILED"

    datamart = models.ForeignKey(Datamart, on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    file_format = models.CharField(max_length=8, help_text="CSV, XLSX, JSON or NDJSON.")
    filters = models.TextField(blank=True, help_text="The profile list's query string.")
    filters_label = models.TextField(blank=True, help_text="The same filters, as staff read them.")
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    rows = models.BigIntegerField(null=True, blank=True, help_text="Profiles written.")
    file = models.FileField(upload_to="exports/%Y/%m/%d/", max_length=500, blank=True)
    created_ts = models.DateTimeField("requested", default=timezone.now, editable=False)
    start_ts = models.DateTimeField("started", null=True, blank=True)
    end_ts = models.DateTimeField("ended", null=True, blank=True)
    error_message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_ts", "-id"]
        verbose_name = "profile export"

    def __str__(self) -> str:
        return f"export {self.pk} ({self.file_format}): {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}
