"""Request and response shapes of the import endpoints (SPEC §5), for validation and the schema."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from imports.models import DocumentImport, Execution, ExecutionError
from imports.readers import FileError
from imports.readers.text import resolve_encoding
from profiles.api.serializers import StrictCharField, StrictSerializer
from profiles.models import epoch_ms

_TARGET_SCHEMA = {
    "type": "string",
    "nullable": True,
    "description": "A reserved column (user_account_id, email_hash, user_agent_id, "
    "compartment_id, operation, update_strategy, $compartment_id, $user_account_id…), a "
    "property path with an optional type suffix (first_name, newsletter.opt_in:bool, "
    "birth_date:str), or null to ignore the column.",
}
COLUMN_MAPPING_SCHEMA = {
    "type": "object",
    "nullable": True,
    "additionalProperties": {
        "oneOf": [
            _TARGET_SCHEMA,
            {
                "type": "object",
                "required": ["to"],
                "additionalProperties": False,
                "properties": {
                    "to": _TARGET_SCHEMA,
                    "transform": {
                        "type": "string",
                        "enum": ["sha256_email", "trim", "lower"],
                        "description": "sha256_email: trim, lower-case, SHA-256 hex.",
                    },
                },
            },
        ]
    },
}


@extend_schema_field(COLUMN_MAPPING_SCHEMA)
class ColumnMappingField(serializers.JSONField):
    """Checked by the service (imports.services.column_mapping_checked), which names the header."""


class DocumentImportSerializer(StrictSerializer):
    id = serializers.IntegerField(read_only=True, help_text="Set by the system.")
    datamart_id = serializers.IntegerField(read_only=True, help_text="The datamart of the path.")
    name = StrictCharField(max_length=255, help_text="A name for this import definition.")
    document_type = serializers.ChoiceField(
        choices=DocumentImport.DocumentType.choices,
        default=DocumentImport.DocumentType.USER_PROFILE,
        help_text="What the documents hold; only USER_PROFILE.",
    )
    mime_type = serializers.ChoiceField(
        choices=DocumentImport.MimeType.choices,
        default=DocumentImport.MimeType.NDJSON,
        help_text="The format of the uploaded files; an execution's Content-Type must match it: "
        "APPLICATION_X_NDJSON (application/x-ndjson), TEXT_CSV (text/csv), APPLICATION_JSON "
        "(application/json, an array of commands), APPLICATION_XLSX "
        "(application/vnd.openxmlformats-officedocument.spreadsheetml.sheet).",
    )
    encoding = StrictCharField(
        max_length=32,
        default="utf-8",
        help_text="The text encoding of the files (NDJSON, CSV, JSON), e.g. utf-8 or latin-1.",
    )
    column_mapping = ColumnMappingField(
        required=False,
        allow_null=True,
        default=None,
        help_text="CSV/XLSX only: each source header → a reserved column, a property path with "
        'an optional type, null to ignore it, or {"to": target, "transform": "sha256_email" | '
        '"trim" | "lower"}. A file header it does not name fails the execution before anything '
        "is written. null: the files use the import headers (reserved columns, property paths).",
    )
    created_ts = serializers.SerializerMethodField(help_text="Creation time, epoch milliseconds.")

    def get_created_ts(self, instance: DocumentImport) -> int | None:
        return epoch_ms(instance.created_ts)

    def validate_encoding(self, value: str) -> str:
        """An encoding the readers can read files in, refused here rather than at each upload."""
        try:
            return resolve_encoding(value)
        except FileError as problem:
            if problem.code == "UNKNOWN_ENCODING":
                raise ValidationError(
                    f"unknown encoding {value!r}", code="INVALID_ENCODING"
                ) from None
            raise ValidationError(problem.message, code=problem.code) from None


class ExecutionCountersSerializer(serializers.Serializer):
    total = serializers.IntegerField(
        allow_null=True, help_text="Lines in the file, once read to the end; null before."
    )
    processed = serializers.IntegerField(help_text="Lines handled so far.")
    created = serializers.IntegerField(help_text="Profiles created.")
    updated = serializers.IntegerField(help_text="Profiles changed.")
    deleted = serializers.IntegerField(help_text="Profiles deleted.")
    unchanged = serializers.IntegerField(help_text="Lines that changed nothing.")
    not_found = serializers.IntegerField(help_text="DELETE lines naming nothing that exists.")
    failed = serializers.IntegerField(help_text="Lines in error (see the errors endpoint).")


class ExecutionFailureSerializer(serializers.Serializer):
    error_code = serializers.CharField(help_text="Why it failed, e.g. UNREADABLE_FILE.")
    message = serializers.CharField(help_text="What went wrong, for a person.")


class ExecutionSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The execution's id.")
    document_import_id = serializers.IntegerField(help_text="Its document import.")
    status = serializers.ChoiceField(
        choices=Execution.Status.choices,
        help_text="PENDING → RUNNING → SUCCEEDED | FAILED | CANCELED.",
    )
    created_ts = serializers.IntegerField(help_text="Upload time, epoch milliseconds.")
    start_ts = serializers.IntegerField(allow_null=True, help_text="Start of the run, or null.")
    end_ts = serializers.IntegerField(allow_null=True, help_text="End of the run, or null.")
    progress = serializers.FloatField(min_value=0, max_value=1, help_text="0 to 1.")
    counters = ExecutionCountersSerializer(help_text="Line counts, readable while it runs.")
    error = ExecutionFailureSerializer(
        required=False, help_text="Only on a FAILED execution: why it failed."
    )
    reverts = serializers.IntegerField(
        required=False,
        help_text="Only on a revert: the execution whose changes it undoes. Its counters count "
        "profiles (created: brought back, updated: restored, deleted: removed, failed: "
        "conflicts); its lines are the reverted execution's history rows.",
    )

    def to_representation(self, instance: Execution) -> dict:
        return instance.as_api_object()


class ExecutionErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField(
        help_text="The line, from 1 (CSV/XLSX: the header is line 1, the first row line 2)."
    )
    identifier = serializers.CharField(help_text="The line's identifier, in the selector form.")
    error_code = serializers.CharField(help_text="A machine code, e.g. RESERVED_KEY.")
    message = serializers.CharField(help_text="What is wrong, for a person.")

    def to_representation(self, instance: ExecutionError) -> dict:
        return instance.as_api_object()


class RevertPreviewSerializer(serializers.Serializer):
    """What reverting an execution would do now, by profile."""

    execution_id = serializers.IntegerField(help_text="The execution to revert.")
    revertible = serializers.BooleanField(
        help_text="Whether it can be reverted now (finished, not reverted already)."
    )
    reason = serializers.CharField(
        allow_blank=True, help_text="Why not, when it cannot: the code POST would answer."
    )
    history_rows = serializers.IntegerField(help_text="Changes it recorded: the revert's lines.")
    delete = serializers.IntegerField(help_text="Profiles it created: deleted by the revert.")
    restore = serializers.IntegerField(help_text="Profiles it updated: their properties restored.")
    recreate = serializers.IntegerField(help_text="Profiles it deleted: brought back.")
    unchanged = serializers.IntegerField(
        help_text="Profiles it created and deleted: nothing to do."
    )
    conflicts = serializers.IntegerField(
        help_text="Profiles changed since by something else: left alone unless force=true."
    )
