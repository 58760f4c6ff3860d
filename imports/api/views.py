"""The import endpoints of SPEC §5: document imports and their executions (raw file uploads,
status and counters, line errors, cancel).

The views derive from profiles.api's DatamartView, which authenticates, throttles and scopes to
the caller's datamart; the imports app only adds what is its own.
"""

from __future__ import annotations

import io

from django.conf import settings
from django.core.files import File
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import parse_header_parameters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from imports.api import schema as import_docs
from imports.api.parsers import RawUploadParser
from imports.api.serializers import (
    DocumentImportSerializer,
    ExecutionErrorSerializer,
    ExecutionSerializer,
    RevertPreviewSerializer,
)
from imports.formats import FORMATS, format_of_document_mime_type, format_spec
from imports.models import DocumentImport, Execution
from imports.readers import FileError
from imports.readers.text import resolve_encoding
from imports.revert import execution_revert, execution_revert_check, execution_revert_preview
from imports.services import (
    ImportRefused,
    document_import_create,
    document_import_update,
    empty_file_refused,
    execution_cancel,
    execution_failed_lines,
    execution_start,
)
from profiles.api import schema as docs
from profiles.api.authentication import TokenUser
from profiles.api.exceptions import ApiError
from profiles.api.pagination import PAGE_QUERY_PARAMETERS, keyset_page
from profiles.api.paths import bad_request
from profiles.api.views import DatamartView, page_response
from profiles.merge import choose_merge_mode, parse_bool_word


class DocumentImportListView(DatamartView):
    query_parameters = {"get": PAGE_QUERY_PARAMETERS}

    @extend_schema(
        operation_id="document_imports_list",
        summary="The datamart's document imports",
        parameters=docs.PAGE_PARAMETERS,
        responses={200: DocumentImportSerializer(many=True)},
        tags=["document imports"],
    )
    def get(self, request, dm):
        rows, next_cursor = keyset_page(
            self.scoped(DocumentImport.objects.all()),
            keys=("id",),
            query_params=request.query_params,
        )
        return page_response(DocumentImportSerializer(rows, many=True).data, next_cursor)

    @extend_schema(
        operation_id="document_imports_create",
        summary="Create a document import",
        request=DocumentImportSerializer,
        responses={201: DocumentImportSerializer},
        examples=[import_docs.DOCUMENT_IMPORT_EXAMPLE, import_docs.CSV_DOCUMENT_IMPORT_EXAMPLE],
        tags=["document imports"],
    )
    def post(self, request, dm):
        serializer = DocumentImportSerializer(data=self.json_body())
        serializer.is_valid(raise_exception=True)
        document_import = document_import_create(
            datamart=self.datamart, **serializer.validated_data
        )
        return Response(
            DocumentImportSerializer(document_import).data, status=status.HTTP_201_CREATED
        )


class DocumentImportScopedView(DatamartView):
    def get_document_import(self, import_id: str) -> DocumentImport:
        return get_object_or_404(self.scoped(DocumentImport.objects.all()), pk=int(import_id))

    def get_execution(self, import_id: str, execution_id: str) -> Execution:
        return get_object_or_404(
            self.scoped(Execution.objects.all()),
            document_import_id=int(import_id),
            pk=int(execution_id),
        )


class DocumentImportDetailView(DocumentImportScopedView):
    @extend_schema(
        operation_id="document_imports_retrieve",
        summary="One document import",
        responses={200: DocumentImportSerializer},
        tags=["document imports"],
    )
    def get(self, request, dm, import_id):
        return Response(DocumentImportSerializer(self.get_document_import(import_id)).data)

    @extend_schema(
        operation_id="document_imports_partial_update",
        summary="Change a document import (its column mapping, name, format, encoding)",
        description="Fields left out keep their value; `column_mapping: null` removes the "
        "mapping. Executions already uploaded keep the mapping they started with.",
        request=DocumentImportSerializer(partial=True),
        responses={200: DocumentImportSerializer},
        examples=[import_docs.COLUMN_MAPPING_PATCH_EXAMPLE],
        tags=["document imports"],
    )
    def patch(self, request, dm, import_id):
        document_import = self.get_document_import(import_id)
        serializer = DocumentImportSerializer(data=self.json_body(), partial=True)
        serializer.is_valid(raise_exception=True)
        current = {
            field: getattr(document_import, field)
            for field in ("name", "document_type", "mime_type", "encoding", "column_mapping")
        }
        document_import = document_import_update(
            document_import=document_import, **(current | serializer.validated_data)
        )
        return Response(DocumentImportSerializer(document_import).data)


class ExecutionListView(DocumentImportScopedView):
    parser_classes = [RawUploadParser]
    query_parameters = {
        "get": PAGE_QUERY_PARAMETERS,
        "post": frozenset({"update_strategy", "merge_objects", "empty_cells"}),
    }

    @extend_schema(
        operation_id="executions_list",
        summary="The executions of a document import, newest first",
        parameters=docs.PAGE_PARAMETERS,
        responses={200: ExecutionSerializer(many=True)},
        tags=["document imports"],
    )
    def get(self, request, dm, import_id):
        document_import = self.get_document_import(import_id)
        rows, next_cursor = keyset_page(
            document_import.executions.all(),
            keys=("id",),
            descending=True,
            query_params=request.query_params,
        )
        return page_response(ExecutionSerializer(rows, many=True).data, next_cursor)

    @extend_schema(
        operation_id="executions_create",
        summary="Upload a file: it runs asynchronously",
        description="The body is the raw file; its Content-Type must be the document import's "
        "(application/x-ndjson, text/csv, application/json or the XLSX type), else 415. "
        "Answers at once with the PENDING execution; poll it for status and counters. "
        "`update_strategy` and `merge_objects` set the default of lines that name none. "
        "A `charset` parameter of the Content-Type names the file's encoding (else the "
        "document import's applies).",
        parameters=[
            OpenApiParameter(
                "update_strategy",
                str,
                enum=["PARTIAL_UPDATE", "PARTIAL_DELETE", "FORCE_REPLACE"],
                description="Default strategy of lines without one; PARTIAL_UPDATE if absent.",
            ),
            OpenApiParameter(
                "merge_objects", bool, description="Default merge_objects; true if absent."
            ),
            OpenApiParameter(
                "empty_cells",
                str,
                enum=["absent", "empty_string"],
                description="CSV/XLSX: what an empty cell means. `absent` (the default): the "
                "key is not in the line; `empty_string`: an untyped or `:str` property "
                'column\'s key holds "" (typed and command columns still read it as absent).',
            ),
        ],
        request=import_docs.UPLOAD_REQUEST,
        responses={201: ExecutionSerializer},
        examples=[import_docs.NDJSON_UPLOAD_EXAMPLE],
        tags=["document imports"],
    )
    def post(self, request, dm, import_id):
        document_import = self.get_document_import(import_id)
        spec = format_spec(format_of_document_mime_type(document_import.mime_type))
        accepted = spec.upload_content_types
        media_type, content_parameters = parse_header_parameters(request.content_type)
        given = media_type.strip().lower()
        if given not in accepted:
            raise UnsupportedMediaType(
                given, detail=f"this document import takes Content-Type: {accepted[0]}"
            )
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        mode = choose_merge_mode(
            update_strategy=request.query_params.get("update_strategy"),
            merge_objects=request.query_params.get("merge_objects"),
        )
        empty_cells = request.query_params.get("empty_cells", "absent")
        if empty_cells not in ("absent", "empty_string"):
            raise bad_request(
                "INVALID_PARAMETER",
                f"empty_cells is absent or empty_string, got {empty_cells[:64]!r}",
                field="empty_cells",
            )
        # SPEC §3: an encoding other than the definition's applies when the upload says which.
        encoding = None
        if "charset" in content_parameters:
            try:
                encoding = resolve_encoding(content_parameters["charset"].strip())
            except FileError as problem:
                raise bad_request(
                    "INVALID_ENCODING", f"Content-Type charset: {problem.message}", field="charset"
                ) from None
        if declared > settings.IMPORT_MAX_FILE_BYTES:
            # SPEC §4: over the size cap the execution fails (FILE_TOO_LARGE, by execution_start),
            # from the declared length: the body is not read.
            name = RawUploadParser().get_filename(None, None, {"request": request})
            upload = File(io.BytesIO(), name=name)
            upload.size = declared
        else:
            upload = request.FILES.get("file")
            if upload is None:
                raise empty_file_refused()
        file_name = upload.name
        if file_name == RawUploadParser.UNNAMED:
            file_name = f"upload.{spec.extension}"
        user = request.user
        try:
            execution = execution_start(
                document_import=document_import,
                upload=upload,
                file_name=file_name,
                created_by=None if isinstance(user, TokenUser) else user,
                api_token=user.token if isinstance(user, TokenUser) else None,
                default_update_strategy=str(mode.strategy),
                default_merge_objects=mode.merge_objects,
                encoding=encoding,
                empty_cell_is_empty_string=empty_cells == "empty_string",
            )
        finally:
            upload.close()  # storage may have moved the temporary file: close() allows that
        return Response(ExecutionSerializer(execution).data, status=status.HTTP_201_CREATED)


class ExecutionDetailView(DocumentImportScopedView):
    @extend_schema(
        operation_id="executions_retrieve",
        summary="An execution's status and counters",
        responses={200: ExecutionSerializer},
        tags=["document imports"],
    )
    def get(self, request, dm, import_id, execution_id):
        return Response(ExecutionSerializer(self.get_execution(import_id, execution_id)).data)


class ExecutionErrorsView(DocumentImportScopedView):
    query_parameters = {"get": PAGE_QUERY_PARAMETERS}

    @extend_schema(
        operation_id="execution_errors_list",
        summary="The line errors of an execution, in line order",
        parameters=docs.PAGE_PARAMETERS,
        responses={200: ExecutionErrorSerializer(many=True)},
        tags=["document imports"],
    )
    def get(self, request, dm, import_id, execution_id):
        execution = self.get_execution(import_id, execution_id)
        rows, next_cursor = keyset_page(
            execution.errors.without_raw(), keys=("line", "id"), query_params=request.query_params
        )
        return page_response(ExecutionErrorSerializer(rows, many=True).data, next_cursor)


class _AnyAccept(DefaultContentNegotiation):
    """The failed-lines file is in the execution's format whatever the client accepts: an
    `Accept: text/csv` must not be 406 for want of a renderer (errors still render as JSON)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ExecutionFailedLinesView(DocumentImportScopedView):
    content_negotiation_class = _AnyAccept

    @extend_schema(
        operation_id="execution_failed_lines",
        summary="The failed-lines file of an execution",
        description="SPEC §4: the lines the execution refused, in its file's format and "
        "encoding, each with `_line` and `_error` added (a column in CSV and XLSX, a key in "
        "NDJSON and JSON), ready to correct and upload again. Streamed; empty of lines when "
        "none failed.",
        responses={(200, spec.content_type): OpenApiTypes.BINARY for spec in FORMATS.values()},
        tags=["document imports"],
    )
    def get(self, request, dm, import_id, execution_id):
        failed_lines = execution_failed_lines(execution=self.get_execution(import_id, execution_id))
        response = StreamingHttpResponse(
            failed_lines.chunks, content_type=failed_lines.content_type
        )
        response["Content-Disposition"] = f'attachment; filename="{failed_lines.file_name}"'
        return response


class ExecutionCancelView(DocumentImportScopedView):
    @extend_schema(
        operation_id="executions_cancel",
        summary="Cancel an execution",
        description="A PENDING execution is canceled at once; a RUNNING one stops after its "
        "current chunk. Answers the execution; a finished one is left as it is.",
        request=None,
        responses={200: ExecutionSerializer},
        tags=["document imports"],
    )
    def post(self, request, dm, import_id, execution_id):
        execution = execution_cancel(execution=self.get_execution(import_id, execution_id))
        return Response(ExecutionSerializer(execution).data)


class ExecutionRevertView(DocumentImportScopedView):
    query_parameters = {"post": frozenset({"force"})}

    @extend_schema(
        operation_id="executions_revert_preview",
        summary="What reverting an execution would do",
        description="Counts by profile, from the execution's history: profiles to delete "
        "(it created them), restore (it updated them), recreate (it deleted them), and the "
        "conflicts (changed since by something else). Writes nothing.",
        responses={200: RevertPreviewSerializer},
        tags=["document imports"],
    )
    def get(self, request, dm, import_id, execution_id):
        execution = self.get_execution(import_id, execution_id)
        try:
            execution_revert_check(execution=execution)
            reason = ""
        except ImportRefused as refused:
            reason = refused.code
        preview = execution_revert_preview(execution=execution)
        return Response(
            RevertPreviewSerializer(
                {
                    "execution_id": execution.pk,
                    "revertible": not reason,
                    "reason": reason,
                    "history_rows": preview.rows,
                    "delete": preview.delete,
                    "restore": preview.restore,
                    "recreate": preview.recreate,
                    "unchanged": preview.unchanged,
                    "conflicts": preview.conflicts,
                }
            ).data
        )

    @extend_schema(
        operation_id="executions_revert",
        summary="Revert an execution: put back every profile it changed",
        description="Starts a revert, an execution of its own (answered PENDING, 201; follow it "
        "like an import): profiles the execution created are deleted, those it updated get "
        "their previous properties, those it deleted come back. A profile changed since by "
        "anything else is left alone and reported as a REVERT_CONFLICT line error, unless "
        "`force=true`. Only a SUCCEEDED, FAILED or CANCELED execution can be reverted "
        "(else 409 EXECUTION_NOT_FINISHED), once (409 ALREADY_REVERTED; revert the revert to "
        "undo it). The user points the execution created stay.",
        parameters=[
            OpenApiParameter(
                "force",
                bool,
                description="Also put back the profiles changed since (their later changes are "
                "undone too); false if absent.",
            )
        ],
        request=None,
        responses={201: ExecutionSerializer, 409: docs.ERROR},
        tags=["document imports"],
    )
    def post(self, request, dm, import_id, execution_id):
        execution = self.get_execution(import_id, execution_id)
        force = parse_bool_word(request.query_params.get("force", "false"))
        if force is None:
            raise bad_request("INVALID_PARAMETER", "force must be true or false", field="force")
        user = request.user
        try:
            revert = execution_revert(
                execution=execution,
                force=force,
                created_by=None if isinstance(user, TokenUser) else user,
                api_token=user.token if isinstance(user, TokenUser) else None,
            )
        except ImportRefused as refused:
            raise ApiError(status.HTTP_409_CONFLICT, refused.code, refused.message) from None
        return Response(ExecutionSerializer(revert).data, status=status.HTTP_201_CREATED)
