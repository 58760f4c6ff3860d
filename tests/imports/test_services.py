"""Starting, retrying and previewing imports; the failed-lines file; the import_profiles command."""

from __future__ import annotations

import csv
import io
import json
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.db import transaction

from imports.models import DocumentImport, Execution, ExecutionError
from imports.preview import import_preview
from imports.readers import FileFormat, ReaderOptions
from imports.services import (
    ImportRefused,
    execution_failed_lines,
    execution_failed_lines_write,
    execution_retry,
    execution_start,
)
from profiles.errors import ProfileError
from profiles.merge import DEFAULT_MERGE_MODE
from profiles.models import (
    ProfileChange,
    UserAccount,
    UserAgent,
    UserEmail,
    UserPoint,
    UserProfile,
)
from tests.imports.helpers import (
    CRM,
    account,
    counters,
    errors_of,
    import_file,
    ndjson,
    properties_of,
    run,
    upload,
)

# --------------------------------------------------------------------------- start


def test_start_stores_the_file_and_queues_the_run_only_once_committed(
    document_import, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        execution = execution_start(
            document_import=document_import,
            upload=ContentFile(ndjson(account("c1", {"a": 1})), name="crm.ndjson"),
            file_name="C:\\exports\\crm.ndjson",
        )
    assert len(callbacks) == 1  # delay_on_commit: nothing is sent before the commit
    assert execution.status == Execution.Status.PENDING
    assert (execution.file_name, execution.file_format, execution.encoding) == (
        "crm.ndjson",
        "NDJSON",
        "utf-8",
    )
    assert execution.file_size == execution.file.size > 0
    assert execution.file.name.startswith("imports/")


def test_nothing_is_queued_when_the_caller_rolls_back(
    document_import, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        upload_ = ContentFile(ndjson(account("c1", {"a": 1})), name="crm.ndjson")
        execution_start(document_import=document_import, upload=upload_, file_name="crm.ndjson")
        transaction.set_rollback(True)
    assert callbacks == [] and not Execution.objects.exists()


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("crm\x00.ndjson", "crm.ndjson"),
        ("..\\..\\crm\r\n.ndjson", "crm.ndjson"),
        ("/tmp/../crm.ndjson", "crm.ndjson"),
        ("..", "upload.ndjson"),
        ("\x00\x01", "upload.ndjson"),
        ("", "upload.ndjson"),
    ],
)
def test_start_keeps_a_printable_base_name_of_the_file(document_import, given, kept):
    execution = execution_start(
        document_import=document_import,
        upload=ContentFile(ndjson(account("c1", {"a": 1})), name="any"),
        file_name=given,
        enqueue=False,
    )
    assert execution.file_name == kept
    assert execution.file.name.startswith("imports/") and execution.file.name.endswith(".ndjson")
    assert ".." not in execution.file.name


def test_start_refuses_a_bad_default_strategy(document_import):
    with pytest.raises(ProfileError) as problem:
        upload(document_import, b"{}", default_update_strategy="SOMETIMES")
    assert getattr(problem.value, "code", "") == "INVALID_UPDATE_STRATEGY"


def test_the_default_strategy_of_the_upload_applies_to_lines_that_choose_none(document_import):
    import_file(document_import, ndjson(account("c1", {"a": 1, "nl": {"x": 1}})))
    execution = import_file(
        document_import,
        ndjson(account("c1", {"nl": {"y": 2}})),
        default_update_strategy="PARTIAL_UPDATE",
        default_merge_objects=False,
    )
    assert counters(execution)["updated"] == 1
    assert properties_of("c1") == {"a": 1, "nl": {"y": 2}}
    import_file(
        document_import, ndjson(account("c1", {"b": 1})), default_update_strategy="FORCE_REPLACE"
    )
    assert properties_of("c1") == {"b": 1}


# --------------------------------------------------------------------------- retry


def test_retry_runs_the_same_file_again_as_a_new_execution(document_import, settings):
    settings.IMPORT_MAX_ATTEMPTS = 0  # the first run refuses to start: FAILED
    failed = run(upload(document_import, ndjson(account("c1", {"a": 1})), name="crm.ndjson"))
    assert failed.status == Execution.Status.FAILED
    settings.IMPORT_MAX_ATTEMPTS = 3
    retry = execution_retry(execution=failed)
    assert retry.pk != failed.pk and retry.status == Execution.Status.PENDING
    assert retry.retry_of == failed and retry.file.name == failed.file.name
    run(retry)
    assert retry.status == Execution.Status.SUCCEEDED and properties_of("c1") == {"a": 1}


def test_only_failed_or_canceled_executions_with_their_file_can_be_retried(
    document_import, settings
):
    done = import_file(document_import, ndjson(account("c1", {"a": 1})))
    with pytest.raises(ImportRefused) as problem:
        execution_retry(execution=done)
    assert problem.value.code == "NOT_RETRYABLE"
    settings.IMPORT_MAX_FILE_BYTES = 1
    too_large = upload(document_import, ndjson(account("c1", {"a": 1})))
    with pytest.raises(ImportRefused):
        execution_retry(execution=too_large)


# --------------------------------------------------------------------------- preview


def _table_counts() -> dict[str, int]:
    models = (UserPoint, UserAccount, UserEmail, UserAgent, UserProfile, ProfileChange)
    return {model.__name__: model.objects.count() for model in (*models, Execution, ExecutionError)}


def _file(tmp_path, name: str, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_preview_counts_diffs_and_warns_without_writing_anything(
    document_import, tmp_path, django_assert_max_num_queries
):
    import_file(
        document_import, ndjson(account("c1", {"a": 1, "tags": ["x"]}), account("c2", {"a": 2}))
    )
    before = _table_counts()
    path = _file(
        tmp_path,
        "crm.ndjson",
        ndjson(
            account("c1", {"tags": ["y"]}),  # updated
            account("c2", {"a": 2}),  # unchanged
            account("c3", {"a": 3}),  # created
            {"operation": "DELETE", "compartment_id": CRM, "user_account_id": "c2"},  # deleted
            {"operation": "DELETE", "compartment_id": CRM, "user_account_id": "zz"},  # not_found
            "{oops",  # failed
            {  # SPEC §2 rule 2: identified by an account, addressing the anonymous profile
                "operation": "UPSERT",
                "compartment_id": CRM,
                "user_account_id": "c4",
                "user_profile": {"firstname": "Nora"},
            },
        ),
    )
    preview = import_preview(
        datamart=document_import.datamart,
        path=path,
        file_format=FileFormat.NDJSON,
        options=ReaderOptions(),
        default_mode=DEFAULT_MERGE_MODE,
    )
    assert _table_counts() == before
    assert preview.counts == {
        "created": 2,
        "updated": 1,
        "deleted": 1,
        "unchanged": 1,
        "not_found": 1,
        "failed": 1,
    }
    assert preview.lines == 7 and not preview.truncated and preview.ok
    assert [(error.line, error.error_code) for error in preview.errors] == [(6, "INVALID_JSON")]
    first = preview.diffs[0]
    assert (first.line, first.outcome, first.compartment_id, first.user_account_id) == (
        1,
        "updated",
        CRM,
        "c1",
    )
    assert first.before == {"a": 1, "tags": ["x"]} and first.after == {"a": 1, "tags": ["x", "y"]}
    assert [diff.outcome for diff in preview.diffs] == [
        "updated",
        "unchanged",
        "created",
        "deleted",
        "not_found",
        "created",
    ]
    assert preview.diffs[-1].user_account_id is None and preview.diffs[-1].compartment_id == 1
    assert any(
        "not the account's own profile" in warning and "7" in warning
        for warning in preview.warnings
    )


def _preview_of_thirty_accounts(document_import, tmp_path, **limits):
    path = _file(tmp_path, "30.ndjson", ndjson(*(account(f"c{i}", {"a": i}) for i in range(30))))
    return import_preview(
        datamart=document_import.datamart,
        path=path,
        file_format="NDJSON",
        options=ReaderOptions(),
        default_mode=DEFAULT_MERGE_MODE,
        **limits,
    )


def test_preview_of_a_large_file_says_it_covers_only_the_first_lines(document_import, tmp_path):
    preview = _preview_of_thirty_accounts(document_import, tmp_path, max_lines=10)
    assert preview.truncated and preview.lines == 10 and preview.counts["created"] == 10
    assert len(preview.diffs) == 10
    assert any("first 10 lines" in warning for warning in preview.warnings)
    assert not UserProfile.objects.exists()


@pytest.mark.parametrize("chunk_size", [1000, 7])
def test_the_preview_shows_the_profiles_of_its_first_twenty_lines_exactly(
    document_import, tmp_path, settings, chunk_size
):
    settings.IMPORT_CHUNK_SIZE = chunk_size  # the twentieth line inside a later chunk too
    preview = _preview_of_thirty_accounts(document_import, tmp_path)
    assert preview.counts["created"] == 30
    assert [diff.line for diff in preview.diffs] == list(range(1, 21))


def test_preview_of_a_csv_shows_its_delimiter_headers_and_file_errors(document_import, tmp_path):
    path = _file(
        tmp_path,
        "crm.csv",
        b"operation;user_account_id;compartment_id;$compartment_id;$user_account_id;age:int\n"
        b"UPSERT;c1;1606;1606;c1;42\n",
    )
    preview = import_preview(
        datamart=document_import.datamart,
        path=path,
        file_format="CSV",
        options=ReaderOptions(),
        default_mode=DEFAULT_MERGE_MODE,
    )
    assert preview.delimiter == ";" and preview.headers[-1] == "age:int"
    assert preview.counts["created"] == 1 and preview.diffs[0].after == {"age": 42}
    assert preview.warnings == []

    broken = _file(tmp_path, "utf16.csv", "a,b\n".encode("utf-16"))
    preview = import_preview(
        datamart=document_import.datamart,
        path=broken,
        file_format="CSV",
        options=ReaderOptions(),
        default_mode=DEFAULT_MERGE_MODE,
    )
    assert not preview.ok and preview.file_error_code == "UNSUPPORTED_ENCODING"


# --------------------------------------------------------------------------- failed lines


def _failed_lines(execution) -> bytes:
    out = io.BytesIO()
    execution_failed_lines_write(execution=execution, out=out)
    return out.getvalue()


def test_failed_ndjson_lines_come_back_annotated_and_reimport_once_fixed(document_import):
    execution = import_file(
        document_import,
        ndjson(
            account("c1", {"a": 1}),
            account("c2", {"a": 2}, compartment_id=99),
            "{broken",
            account("c3", {"$secret": 1}),
        ),
    )
    records = _failed_lines(execution).decode().splitlines()
    assert len(records) == 3
    fixable = json.loads(records[0])
    assert fixable["_line"] == 2 and "compartment 99" in fixable["_error"]
    assert fixable["user_profile"] == {"$compartment_id": CRM, "$user_account_id": "c2", "a": 2}
    broken = json.loads(records[1])  # no JSON object: its text, with its line and error
    assert (
        broken["_line"] == 3 and broken["_raw"] == "{broken" and "invalid JSON" in broken["_error"]
    )
    assert json.loads(records[2])["_line"] == 4

    fixable["compartment_id"] = CRM
    again = import_file(document_import, (json.dumps(fixable) + "\n").encode())
    assert again.status == Execution.Status.SUCCEEDED and counters(again)["created"] == 1
    assert properties_of("c2") == {"a": 2}


def test_failed_csv_rows_keep_the_source_columns_and_reimport_to_the_same_errors(csv_import):
    content = (
        b"operation;compartment_id;user_account_id;$compartment_id;$user_account_id;age:int\n"
        b"UPSERT;1606;g1;1606;g1;30\n"
        b"UPSERT;1606;b1;1606;b1;forty\n"
        b"UPSERT;77;b2;1606;b2;1\n"
    )
    execution = import_file(csv_import, content, name="crm.csv")
    failed = _failed_lines(execution)
    rows = list(csv.reader(io.StringIO(failed.decode()), delimiter=";"))
    assert rows[0] == [
        "operation",
        "compartment_id",
        "user_account_id",
        "$compartment_id",
        "$user_account_id",
        "age:int",
        "_line",
        "_error",
    ]
    assert [row[-2] for row in rows[1:]] == ["3", "4"]
    assert rows[1][:6] == ["UPSERT", "1606", "b1", "1606", "b1", "forty"]

    again = import_file(csv_import, failed, name="crm.failed-lines.csv")
    assert [code for _, code in errors_of(again)] == ["INVALID_CELL", "UNKNOWN_COMPARTMENT"]
    assert again.status == Execution.Status.SUCCEEDED


def test_failed_lines_stream_in_the_source_format(document_import):
    execution = import_file(document_import, ndjson(account("c1", {"a": 1}), "[1]"))
    download = execution_failed_lines(execution=execution)
    assert download.file_name == "profiles.failed-lines.ndjson"
    assert download.content_type == "application/x-ndjson; charset=utf-8"
    entry = json.loads(b"".join(download.chunks))
    assert (entry["_line"], entry["_raw"]) == (2, "[1]") and entry["_error"]


def test_a_record_the_database_cannot_hold_is_kept_with_replacement_characters(document_import):
    execution = import_file(
        document_import,
        ndjson(account("c1", {"a": 1})) + b'{"operation": "UPSERT", "x": "a\x00b"}\n',
    )
    error = execution.errors.get()
    assert error.error_code == "NUL_CHARACTER" and "\ufffd" in error.raw
    entry = json.loads(_failed_lines(execution))
    assert entry["_line"] == 2 and entry["_raw"].startswith('{"operation"')


# --------------------------------------------------------------------------- command line


def _command(*args: str) -> str:
    out = StringIO()
    call_command("import_profiles", *args, "--no-progress", stdout=out, stderr=StringIO())
    return out.getvalue()


def test_import_profiles_runs_the_pipeline_and_prints_the_counters(
    datamart, crm_compartment, tmp_path
):
    path = _file(
        tmp_path, "crm.ndjson", ndjson(account("c1", {"a": 1}), account("c2", {"a": 2}), "{bad")
    )
    output = _command("--datamart", "1", str(path))
    assert "SUCCEEDED · 1 of 3 lines failed: total 3, processed 3, created 2" in output
    assert "line 3 INVALID_JSON" in output
    execution = Execution.objects.get()
    assert execution.document_import.name == "import_profiles command (NDJSON)"
    assert properties_of("c2") == {"a": 2}


@pytest.mark.parametrize("name", ["empty.ndjson", "empty.csv"])
def test_an_empty_file_is_refused_by_the_command_like_the_api(datamart, tmp_path, name):
    with pytest.raises(CommandError) as caught:
        _command("--datamart", "1", str(_file(tmp_path, name, b"")))
    assert str(caught.value) == "EMPTY_FILE: the file is empty: send the file to import"
    assert not Execution.objects.exists()


def test_import_profiles_takes_format_encoding_and_strategy(datamart, crm_compartment, tmp_path):
    _command(
        "--datamart", "1", str(_file(tmp_path, "a.ndjson", ndjson(account("c1", {"a": 1, "b": 1}))))
    )
    path = _file(
        tmp_path,
        "crm.txt",
        "operation,compartment_id,user_account_id,$compartment_id,$user_account_id,name\n"
        "UPSERT,1606,c1,1606,c1,Jérôme\n".encode("latin-1"),
    )
    _command(
        "--datamart",
        "1",
        str(path),
        "--format",
        "csv",
        "--encoding",
        "latin-1",
        "--update-strategy",
        "FORCE_REPLACE",
    )
    assert properties_of("c1") == {"name": "Jérôme"}


def test_import_profiles_exits_non_zero_when_the_execution_fails(datamart, tmp_path):
    path = _file(tmp_path, "bad.json", b'{"not": "an array"}')
    with pytest.raises(CommandError, match="FAILED: NOT_AN_ARRAY"):
        _command("--datamart", "1", str(path))
    with pytest.raises(CommandError, match="datamart 9 does not exist"):
        _command("--datamart", "9", str(path))
    with pytest.raises(CommandError, match="--format"):
        _command("--datamart", "1", str(_file(tmp_path, "x.dat", b"")))


def test_import_profiles_shows_a_progress_bar(datamart, crm_compartment, tmp_path, settings):
    settings.IMPORT_CHUNK_SIZE = 2
    path = _file(tmp_path, "crm.ndjson", ndjson(*(account(f"c{i}", {"a": i}) for i in range(5))))
    err = StringIO()
    import sys

    real = sys.stderr
    sys.stderr = err
    try:
        call_command("import_profiles", "--datamart", "1", str(path), stdout=StringIO())
    finally:
        sys.stderr = real
    assert "5/5" in err.getvalue()


def test_document_import_of_every_format_maps_to_its_reader(datamart, crm_compartment):
    for mime_type, name in (
        ("APPLICATION_JSON", "a.json"),
        ("TEXT_CSV", "a.csv"),
        ("APPLICATION_X_NDJSON", "a.ndjson"),
        ("APPLICATION_XLSX", "a.xlsx"),
    ):
        document_import = DocumentImport.objects.create(
            datamart=datamart, name=name, mime_type=mime_type
        )
        execution = upload(document_import, b"x", name=name)
        assert (
            execution.file_format
            == {"a.json": "JSON", "a.csv": "CSV", "a.ndjson": "NDJSON", "a.xlsx": "XLSX"}[name]
        )
