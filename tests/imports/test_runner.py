"""The pipeline in this process: order, outcomes, errors, checkpoints, cancel, resume."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db.models import Count
from django.utils import timezone

from imports import runner
from imports.models import DocumentImport, Execution
from imports.services import execution_cancel
from profiles.models import ProfileChange, UserAccount, UserEmail, UserPoint, UserProfile
from tests.concurrency import run_at_once
from tests.imports.helpers import (
    CRM,
    account,
    counters,
    delete,
    errors_of,
    import_file,
    ndjson,
    properties_of,
    run,
    snapshot,
    upload,
)
from tests.imports.readers.helpers import past_the_encoding_sample

# --------------------------------------------------------------------------- file order


def test_later_lines_see_earlier_ones_on_the_same_profile_inside_a_chunk(document_import):
    execution = import_file(
        document_import,
        ndjson(
            account("c1", {"a": 1, "tags": ["x"]}),
            account("c1", {"b": 2, "tags": ["y"]}),
            account("c1", {"c": 3}, strategy="FORCE_REPLACE"),
            account("c1", {"d": {"e": 1}}),
            account("c1", {"c": None}, strategy="PARTIAL_DELETE"),
        ),
    )
    assert execution.status == Execution.Status.SUCCEEDED
    assert properties_of("c1") == {"d": {"e": 1}}
    assert counters(execution) == {"total": 5, "processed": 5, "created": 1, "updated": 4}


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 1000])
def test_file_order_holds_across_chunks_whatever_their_size(document_import, settings, chunk_size):
    settings.IMPORT_CHUNK_SIZE = chunk_size
    execution = import_file(
        document_import,
        ndjson(
            account("c1", {"n": 1}),
            account("c2", {"n": 1}),
            delete("c1"),
            account("c1", {"n": 2, "tags": ["a"]}),
            account("c1", {"tags": ["b"]}),
            delete("c2"),
            delete("c2"),
            account("c2", {"n": 3}, strategy="PARTIAL_DELETE"),
            account("c1", {"tags": ["a"]}, strategy="PARTIAL_DELETE"),
        ),
    )
    assert properties_of("c1") == {"n": 2, "tags": ["b"]}
    assert properties_of("c2") is None
    assert counters(execution) == {
        "total": 9,
        "processed": 9,
        "created": 3,
        "updated": 2,
        "deleted": 2,
        "not_found": 1,
        "unchanged": 1,
    }
    # History: one row per change, in file order, naming the profile each line changed.
    history = list(
        ProfileChange.objects.filter(execution_id=execution.pk)
        .order_by("id")
        .values_list("user_account_id", "action", "changed_keys")
    )
    assert history == [
        ("c1", "created", ["n"]),
        ("c2", "created", ["n"]),
        ("c1", "deleted", ["n"]),
        ("c1", "created", ["n", "tags"]),
        ("c1", "updated", ["tags"]),
        ("c2", "deleted", ["n"]),
        ("c1", "updated", ["tags"]),
    ]
    c1_rows = ProfileChange.objects.filter(user_account_id="c1").values_list("profile_id", "action")
    created_ids = [pk for pk, action in c1_rows if action == "created"]
    assert len(set(created_ids)) == 2  # deleted then created again: a new profile
    assert UserProfile.objects.get(user_account_id="c1").pk == max(created_ids)
    # The points the import created are time-ordered (UUIDv7), in file order.
    points = list(UserAccount.objects.order_by("user_point_id").values_list("user_account_id"))
    assert points == [("c1",), ("c2",)]
    assert {point.version for point in UserPoint.objects.values_list("id", flat=True)} == {7}


def test_a_profile_created_and_deleted_inside_one_chunk_leaves_only_history(document_import):
    execution = import_file(
        document_import, ndjson(account("c1", {"a": 1}), delete("c1"), account("c1", {"b": 1}))
    )
    assert properties_of("c1") == {"b": 1}
    assert UserProfile.objects.count() == 1
    actions = list(
        ProfileChange.objects.filter(execution_id=execution.pk)
        .order_by("id")
        .values_list("action", "profile_id")
    )
    assert [action for action, _ in actions] == ["created", "deleted", "created"]
    assert actions[0][1] == actions[1][1] != actions[2][1]


# --------------------------------------------------------------------------- outcomes


def test_delete_of_an_unknown_identifier_or_a_missing_profile_is_not_found(document_import):
    execution = import_file(
        document_import,
        ndjson(
            delete("nobody"),
            {"operation": "DELETE", "email_hash": "h-unknown"},
            {"operation": "UPSERT", "email_hash": "h1", "user_profile": {"x": 1}},
            # h1 exists, but has no profile in the CRM compartment
            {"operation": "DELETE", "email_hash": "h1", "user_profile": {"$compartment_id": CRM}},
            # a DELETE before the UPSERT that creates its identifier, in the same chunk
            delete("later"),
            account("later", {"x": 1}),
        ),
    )
    assert counters(execution) == {"total": 6, "processed": 6, "created": 2, "not_found": 4}
    assert not UserAccount.objects.filter(user_account_id="nobody").exists()
    assert properties_of("later") == {"x": 1}


def test_delete_without_profile_through_an_email_deletes_the_anonymous_default_profile(
    document_import,
):
    execution = import_file(
        document_import,
        ndjson(
            {"operation": "UPSERT", "email_hash": "h1", "user_profile": {"x": 1}},
            {"operation": "DELETE", "email_hash": "h1"},
        ),
    )
    assert counters(execution)["deleted"] == 1
    assert not UserProfile.objects.exists()
    assert UserEmail.objects.filter(email_hash="h1").exists()  # the point and identifier stay


def test_the_same_file_imported_twice_is_all_unchanged_the_second_time(document_import):
    content = ndjson(
        account("c1", {"a": 1, "tags": ["x", "y"], "nl": {"on": True}}),
        account("c1", {"tags": ["y", "z"], "nl": {"period": "M"}}),
        account("c2", {"a": 2}, strategy="FORCE_REPLACE"),
        account("c3", {"a": None}, strategy="PARTIAL_DELETE"),
        account("c4", {"a": 1}, update_strategy="PARTIAL_UPDATE", merge_objects=False),
        {"operation": "UPSERT", "email_hash": "h1", "user_profile": {"x": [1, {"y": 2}]}},
        {"operation": "UPSERT", "user_agent_id": "vec:1", "user_profile": {"x": 1.5}},
    )
    first = import_file(document_import, content)
    assert first.status == Execution.Status.SUCCEEDED
    stamps = dict(UserProfile.objects.values_list("id", "last_modified_ts"))
    history = ProfileChange.objects.count()

    second = import_file(document_import, content)
    assert counters(second) == {"total": 7, "processed": 7, "unchanged": 7}
    assert dict(UserProfile.objects.values_list("id", "last_modified_ts")) == stamps
    assert ProfileChange.objects.count() == history


def test_last_modified_moves_only_for_profiles_that_changed(document_import):
    import_file(document_import, ndjson(account("c1", {"a": 1}), account("c2", {"a": 1})))
    before = dict(UserProfile.objects.values_list("user_account_id", "last_modified_ts"))
    created = dict(UserProfile.objects.values_list("user_account_id", "creation_ts"))
    import_file(document_import, ndjson(account("c1", {"a": 1}), account("c2", {"a": 2})))
    after = dict(UserProfile.objects.values_list("user_account_id", "last_modified_ts"))
    assert after["c1"] == before["c1"]
    assert after["c2"] > before["c2"]
    assert dict(UserProfile.objects.values_list("user_account_id", "creation_ts")) == created


def test_spec_rule_two_a_line_identified_by_an_account_writes_the_profile_it_names(
    document_import,
):
    """SPEC §2 rule 2: $compartment_id/$user_account_id are not inherited from the identifier."""
    import_file(
        document_import,
        ndjson(
            {
                "operation": "UPSERT",
                "compartment_id": CRM,
                "user_account_id": "c1",
                "user_profile": {"firstname": "David"},
            }
        ),
    )
    profile = UserProfile.objects.get()
    assert profile.compartment.is_default and profile.user_account_id is None
    assert UserAccount.objects.get().user_account_id == "c1"


def test_counters_add_up_and_history_names_the_execution(document_import, django_user_model):
    user = django_user_model.objects.create(username="staff")
    execution = run(
        upload(
            document_import,
            ndjson(account("c1", {"a": 1}), "{bad", delete("c9"), account("c1", {"a": 2})),
            created_by=user,
        )
    )
    values = execution.counters()
    assert values["processed"] == values["total"] == 4
    assert sum(values[name] for name in Execution.COUNTERS) == values["processed"]
    change = ProfileChange.objects.order_by("id").last()
    assert (change.source, change.execution_id, change.user_id) == ("import", execution.pk, user.pk)
    assert (execution.checkpoint_line, execution.attempts) == (4, 0)


# --------------------------------------------------------------------------- bad lines


def _line_with(**fields) -> dict:
    command = account("bad", {"x": 1})
    command.update(fields)
    return {key: value for key, value in command.items() if value is not ...}


BAD_NDJSON_LINES = {
    "INVALID_JSON": '{"operation": "UPSERT", ',
    "DUPLICATE_KEY": '{"operation": "UPSERT", "operation": "DELETE", "email_hash": "h"}',
    "NON_FINITE_NUMBER": '{"operation": "UPSERT", "email_hash": "h", "user_profile": {"x": NaN}}',
    "NUL_CHARACTER": '{"operation": "UPSERT", "email_hash": "h", "user_profile": {"x": "a\\u0000"}}',
    "TOO_DEEP": '{"operation": "UPSERT", "email_hash": "h", "user_profile": '
    + '{"x": ' * 40
    + "1"
    + "}" * 40
    + "}",
    "INVALID_COMMAND": "[1, 2]",
    "UNKNOWN_FIELD": _line_with(user_profil={}),
    "MISSING_OPERATION": _line_with(operation=...),
    "INVALID_OPERATION": _line_with(operation="MERGE"),
    "MISSING_IDENTIFIER": {"operation": "UPSERT", "user_profile": {}},
    "MULTIPLE_IDENTIFIERS": _line_with(email_hash="h"),
    "INVALID_IDENTIFIER": _line_with(user_account_id=""),
    "MISSING_USER_PROFILE": _line_with(user_profile=...),
    "INVALID_USER_PROFILE": _line_with(user_profile=[1]),
    "INVALID_UPDATE_STRATEGY": _line_with(update_strategy="MERGE_ALL"),
    "INVALID_FORCE_REPLACE": _line_with(force_replace="perhaps"),
    "INVALID_MERGE_OBJECTS": _line_with(merge_objects="perhaps"),
    "RESERVED_KEY": _line_with(user_profile={"$secret": 1}),
    "INVALID_USER_ACCOUNT_ID": _line_with(user_profile={"$user_account_id": True}),
    "UNKNOWN_COMPARTMENT": _line_with(compartment_id=99),
}


@pytest.mark.parametrize("code", sorted(BAD_NDJSON_LINES))
def test_each_bad_line_is_reported_with_its_line_number_and_the_good_lines_land(
    document_import, code
):
    bad = BAD_NDJSON_LINES[code]
    execution = import_file(
        document_import, ndjson(account("good1", {"a": 1}), bad, account("good2", {"a": 2}))
    )
    assert execution.status == Execution.Status.SUCCEEDED
    assert errors_of(execution) == [(2, code)]
    assert counters(execution) == {"total": 3, "processed": 3, "created": 2, "failed": 1}
    assert properties_of("good1") == {"a": 1} and properties_of("good2") == {"a": 2}
    error = execution.errors.get()
    assert error.message.startswith("line 2")
    assert error.raw is not None  # kept for the failed-lines file


def test_line_level_encoding_and_length_errors_are_line_errors(document_import):
    """A bad byte past the first 64 KB (where the file's encoding is checked) and a line over
    the limit are the errors of their lines."""
    long_line = json.dumps(account("long", {"x": "y" * 1_100_000})).encode()
    filler, n = past_the_encoding_sample(ndjson(account("good1", {"a": 1})))
    content = (
        filler
        + b'{"operation": "UPSERT", "email_hash": "\xff"}\n'
        + long_line
        + b"\n"
        + ndjson(account("good2", {"a": 2}))
    )
    execution = import_file(document_import, content)
    assert errors_of(execution) == [(n + 1, "INVALID_ENCODING"), (n + 2, "LINE_TOO_LONG")]
    assert counters(execution)["created"] == 2


@pytest.mark.parametrize("bad_row", [2, 3])
def test_a_file_in_another_encoding_than_declared_fails_before_anything_is_written(
    csv_import, bad_row
):
    """SPEC §4: wrong encoding is a file-level problem, whichever row shows it first in the
    first 64 KB: Latin-1 bytes in a UTF-8 import. Nothing is half-applied."""
    rows = [f"UPSERT,1606,g{line},1606,g{line},{line}\n".encode() for line in range(2, 11)]
    rows[bad_row - 2] = "UPSERT,1606,é,1606,é,3\n".encode("latin-1")
    content = CSV_HEADER.encode() + b"".join(rows)
    execution = import_file(csv_import, content)
    assert execution.status == Execution.Status.FAILED
    assert execution.error_code == "INVALID_ENCODING"
    assert "say which encoding the file uses" in execution.error_message
    assert UserProfile.objects.count() == 0 and execution.processed == 0


def test_a_pretty_printed_file_imports_its_profiles_and_succeeds(document_import):
    """SPEC §4: objects spread over several lines, as the platform's documentation prints
    them, are commands numbered by the line where they start."""
    content = (
        json.dumps(account("p1", {"nl": {"subscribed": True}, "tags": ["a"]}), indent=2)
        + "\n"
        + json.dumps(account("p2", {"gender": 1}), indent=2)
        + "\n\n"
        + json.dumps(account("p3", {"a": 1}))
        + " "
        + json.dumps(account("p1", {"tags": ["b"]}), indent=4)
        + "\n"
    ).encode()
    execution = import_file(document_import, content)
    assert execution.status == Execution.Status.SUCCEEDED, execution.error_message
    assert errors_of(execution) == []
    assert counters(execution) == {"total": 4, "processed": 4, "created": 3, "updated": 1}
    assert properties_of("p1") == {"nl": {"subscribed": True}, "tags": ["a", "b"]}
    assert properties_of("p2") == {"gender": 1} and properties_of("p3") == {"a": 1}


def test_a_bad_pretty_printed_object_is_one_error_at_its_first_line(document_import):
    good = json.dumps(account("good", {"a": 1}), indent=2)
    bad = json.dumps(account("bad", {"$secret": 1}), indent=2)
    content = f"{good}\n{bad}\n{good[:-1]}".encode()  # the last one is never closed
    execution = import_file(document_import, content)
    assert execution.status == Execution.Status.SUCCEEDED
    bad_line = good.count("\n") + 2
    unclosed_line = bad_line + bad.count("\n") + 1
    assert errors_of(execution) == [(bad_line, "RESERVED_KEY"), (unclosed_line, "INVALID_JSON")]
    assert counters(execution) == {"total": 3, "processed": 3, "created": 1, "failed": 2}


def test_unknown_compartments_name_the_field_that_holds_them(document_import):
    execution = import_file(
        document_import,
        ndjson(
            _line_with(compartment_id=99),
            _line_with(user_profile={"$compartment_id": 98, "$user_account_id": "bad"}),
        ),
    )
    rows = list(execution.errors.order_by("line").values_list("line", "error_code", "field"))
    assert rows == [
        (1, "UNKNOWN_COMPARTMENT", "compartment_id"),
        (2, "UNKNOWN_COMPARTMENT", "$compartment_id"),
    ]
    assert not UserPoint.objects.exists()


def test_a_merge_that_grows_past_the_size_limit_fails_that_line_only(document_import):
    half = "x" * 600_000
    execution = import_file(
        document_import,
        ndjson(account("c1", {"a": half}), account("c1", {"b": half}), account("c1", {"c": 1})),
    )
    assert errors_of(execution) == [(2, "TOO_LARGE")]
    assert properties_of("c1") == {"a": half, "c": 1}


def test_a_merge_over_the_size_limit_in_utf8_bytes_but_not_in_characters_fails(
    document_import,
):
    # 150,000 emoji: 600,000 bytes in UTF-8, 150,000 characters. Two of them merged take
    # 1,200,000+ bytes (over MAX_PROFILE_BYTES) but only 300,000+ characters.
    half = "\U0001f600" * 150_000
    execution = import_file(
        document_import,
        ndjson(
            *(
                json.dumps(command, ensure_ascii=False)  # 600 KB lines, under max_line_bytes
                for command in (account("c1", {"a": half}), account("c1", {"b": half}))
            ),
            account("c2", {"c": 1}),
        ),
    )
    assert errors_of(execution) == [(2, "TOO_LARGE")]
    # The merge fails at write time, in the engine: counted in `failed` all the same.
    assert counters(execution) == {"total": 3, "processed": 3, "created": 2, "failed": 1}
    error = execution.errors.get()
    merged = properties_of("c1") | {"b": half}
    text = json.dumps(merged, ensure_ascii=False, separators=(",", ":"))
    assert f"take {len(text.encode())} bytes as JSON" in error.message and len(text) < 1_000_000
    assert properties_of("c1") == {"a": half} and properties_of("c2") == {"c": 1}


CSV_HEADER = "operation,compartment_id,user_account_id,$compartment_id,$user_account_id,age:int\n"


@pytest.mark.parametrize(
    ("row", "code"),
    [
        ("UPSERT,1606,bad,1606,bad,forty\n", "INVALID_CELL"),
        ("UPSERT,1606,bad\n", "WRONG_CELL_COUNT"),
        ("UPSERT,77,bad,1606,bad,1\n", "UNKNOWN_COMPARTMENT"),
        ("UPSERT,1606,bad,66,bad,1\n", "UNKNOWN_COMPARTMENT"),
        ("UPSERT,,,,,1\n", "MISSING_IDENTIFIER"),
    ],
)
def test_bad_csv_rows_are_reported_with_their_line_number(csv_import, row, code):
    content = (
        CSV_HEADER + "UPSERT,1606,g1,1606,g1,30\n" + row + "UPSERT,1606,g2,1606,g2,40\n"
    ).encode()
    execution = import_file(csv_import, content, name="crm.csv")
    assert execution.status == Execution.Status.SUCCEEDED
    assert errors_of(execution) == [(3, code)]  # the header is line 1
    assert properties_of("g1") == {"age": 30} and properties_of("g2") == {"age": 40}
    assert execution.delimiter == "," and execution.headers[0] == "operation"


@pytest.mark.parametrize(
    ("bad_line", "bad_row", "code"),
    [
        (6, b"UPSERT,1606,b6,1606,b6\r,6\n", "INVALID_CSV"),  # a bare CR in an unquoted cell
        (3, b'UPSERT,1606,b3,1606,b3,"3\n', "INVALID_CSV"),  # a quote never closed
    ],
)
def test_a_malformed_csv_row_is_a_line_error_and_the_rows_after_it_land(
    csv_import, bad_line, bad_row, code
):
    rows = [f"UPSERT,1606,g{line},1606,g{line},{line}\n".encode() for line in range(2, 11)]
    rows[bad_line - 2] = bad_row
    execution = import_file(csv_import, CSV_HEADER.encode() + b"".join(rows), name="crm.csv")
    assert execution.status == Execution.Status.SUCCEEDED
    assert errors_of(execution) == [(bad_line, code)]
    assert execution.failed == 1 and execution.created == 8
    assert properties_of("g10") == {"age": 10}


# --------------------------------------------------------------------------- file errors


@pytest.mark.parametrize(
    ("name", "mime_type", "content", "options", "code", "applied"),
    [
        (
            "utf16.ndjson",
            "APPLICATION_X_NDJSON",
            "\ufeff{}".encode("utf-16"),
            {},
            "UNSUPPORTED_ENCODING",
            0,
        ),
        ("x.ndjson", "APPLICATION_X_NDJSON", b"{}", {"encoding": "klingon"}, "UNKNOWN_ENCODING", 0),
        ("blank.csv", "TEXT_CSV", b"\n", {}, "NO_HEADER", 0),
        (
            "unclosed.csv",
            "TEXT_CSV",
            (CSV_HEADER + "UPSERT,1606,g1,1606,g1,1\n" + 'UPSERT,1606,g2,1606,g2,"open\n').encode()
            + b"x\n" * 600_000,
            {},
            "LINE_TOO_LONG",
            1,
        ),
        ("object.json", "APPLICATION_JSON", b'{"operation": "UPSERT"}', {}, "NOT_AN_ARRAY", 0),
        (
            "cut.json",
            "APPLICATION_JSON",
            b"[" + json.dumps(account("g1", {"a": 1})).encode() + b", {",
            {},
            "INVALID_JSON",
            1,
        ),
        ("notzip.xlsx", "APPLICATION_XLSX", b"PK not really", {}, "INVALID_XLSX", 0),
    ],
)
def test_a_file_level_problem_fails_the_execution_after_applying_the_lines_before_it(
    datamart, crm_compartment, name, mime_type, content, options, code, applied
):
    document_import = DocumentImport.objects.create(
        datamart=datamart, name=name, mime_type=mime_type
    )
    execution = import_file(document_import, content, name=name, **options)
    assert execution.status == Execution.Status.FAILED
    assert execution.error_code == code and execution.error_message
    assert execution.processed == applied
    assert UserProfile.objects.count() == applied
    if execution.start_ts is not None and applied:
        # Found mid-file: the message says which lines were applied.
        assert execution.error_message.endswith(
            " were applied or reported as line errors, none after it"
        )


def test_an_upload_over_the_size_cap_fails_at_once_and_is_not_stored(document_import, settings):
    settings.IMPORT_MAX_FILE_BYTES = 10
    execution = upload(document_import, ndjson(account("c1", {"a": 1})))
    assert execution.status == Execution.Status.FAILED
    assert execution.error_code == "FILE_TOO_LARGE"
    assert not execution.file
    run(execution)  # a worker receiving it anyway does nothing
    assert execution.status == Execution.Status.FAILED and not UserProfile.objects.exists()


# --------------------------------------------------------------------------- resume


class _WorkerKilled(BaseException):
    """Stands for SIGKILL inside this process: not an Exception, so nothing catches it."""


def _die_after(chunks: int):
    calls = {"n": 0}

    def progress(processed, total):
        calls["n"] += 1
        if calls["n"] == chunks:
            raise _WorkerKilled

    return progress


def _csv(commands: list[dict]) -> bytes:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["operation", "compartment_id", "user_account_id", "$compartment_id", "$user_account_id"]
        + ["n:int", "tags:json"]
    )
    for command in commands:
        profile = command.get("user_profile") or {}
        account_id = command["user_account_id"]
        writer.writerow(
            [command["operation"], CRM, account_id]
            + (
                [CRM, account_id, profile["n"], json.dumps(profile["tags"])]
                if profile
                else [""] * 4
            )
        )
    return out.getvalue().encode()


def _commands(count: int) -> list[dict]:
    commands = []
    for i in range(count):
        commands.append(account(f"c{i % 7}", {"n": i, "tags": [i % 3]}))
        if i % 5 == 4:
            commands.append(delete(f"c{i % 7}"))
    return commands


def _xlsx(commands: list[dict]) -> bytes:
    import io

    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(
        [
            "operation",
            "compartment_id",
            "user_account_id",
            "$compartment_id",
            "$user_account_id",
            "n:int",
        ]
    )
    for command in commands:
        profile = command.get("user_profile") or {}
        sheet.append(
            [
                command["operation"],
                CRM,
                command["user_account_id"],
                CRM if profile else None,
                command["user_account_id"] if profile else None,
                profile.get("n"),
            ]
        )
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["NDJSON", "NDJSON_PRETTY", "JSON", "CSV", "XLSX"])
def test_a_run_killed_between_chunks_resumes_at_its_checkpoint_and_ends_like_a_clean_run(
    datamart, crm_compartment, settings, fmt
):
    settings.IMPORT_CHUNK_SIZE = 4
    commands = _commands(30)
    content, mime = {
        "NDJSON": (ndjson(*commands), "APPLICATION_X_NDJSON"),
        "NDJSON_PRETTY": (
            "\n".join(json.dumps(command, indent=2) for command in commands).encode(),
            "APPLICATION_X_NDJSON",
        ),
        "JSON": (json.dumps(commands, indent=1).encode(), "APPLICATION_JSON"),
        "CSV": (_csv(commands), "TEXT_CSV"),
        "XLSX": (_xlsx(commands), "APPLICATION_XLSX"),
    }[fmt]
    document_import = DocumentImport.objects.create(datamart=datamart, name=fmt, mime_type=mime)
    name = f"f.{fmt.lower().removesuffix('_pretty')}"

    clean = import_file(document_import, content, name=name)
    expected = snapshot(datamart.pk)
    UserProfile.objects.all().delete()
    UserPoint.objects.all().delete()

    execution = upload(document_import, content, name=name)
    with pytest.raises(_WorkerKilled):
        run(execution, progress=_die_after(3), worker="w1")
    execution.refresh_from_db()
    assert execution.status == Execution.Status.RUNNING
    assert execution.checkpoint_line > 0 and execution.processed == 12
    run(execution, worker="w1")  # the same worker, started again
    assert execution.status == Execution.Status.SUCCEEDED, execution.error_message
    assert snapshot(datamart.pk) == expected
    assert execution.counters() == clean.counters()
    assert execution.attempts == 0


def test_a_run_does_not_take_over_from_a_live_worker_but_does_from_a_stale_one(document_import):
    execution = upload(document_import, ndjson(account("c1", {"a": 1})))
    claimed = runner._claim(execution.pk, "other@host")
    assert claimed is not None
    run(execution, worker="me@host")
    assert execution.status == Execution.Status.RUNNING and not UserProfile.objects.exists()

    Execution.objects.filter(pk=execution.pk).update(
        heartbeat_ts=timezone.now() - timedelta(hours=1)
    )
    run(execution, worker="me@host")
    assert execution.status == Execution.Status.SUCCEEDED
    assert properties_of("c1") == {"a": 1}


def test_a_run_whose_execution_was_taken_over_writes_nothing_more(document_import):
    execution = upload(document_import, ndjson(account("c1", {"a": 1})))
    old = runner._claim(execution.pk, "w1")
    runner._claim(execution.pk, "w1")  # the same worker, restarted: takes over
    records = list(runner.open_reader(execution.file.path, "NDJSON"))
    with pytest.raises(runner._LostClaim):
        runner._commit_chunk(old, records, 0, runner.execution_merge_mode(execution))
    assert not UserProfile.objects.exists()


def test_a_chunk_that_keeps_killing_its_worker_fails_the_execution(document_import, settings):
    settings.IMPORT_MAX_ATTEMPTS = 3
    settings.IMPORT_CHUNK_SIZE = 2
    execution = upload(document_import, ndjson(*(account(f"c{i}", {"a": i}) for i in range(6))))
    with pytest.raises(_WorkerKilled):
        run(execution, worker="w1", progress=_die_after(1))  # one chunk commits
    for _ in range(3):  # then three runs die inside the second chunk
        runner._claim(execution.pk, "w1")
    run(execution, worker="w1")
    assert execution.status == Execution.Status.FAILED
    assert execution.error_code == "CHUNK_KEEPS_FAILING"
    assert "after line 2" in execution.error_message
    assert (execution.processed, UserProfile.objects.count()) == (2, 2)


@pytest.mark.parametrize(("dead_runs", "status"), [(2, "SUCCEEDED"), (3, "FAILED")])
def test_exactly_max_attempts_runs_are_allowed_at_one_checkpoint(
    document_import, settings, dead_runs, status
):
    settings.IMPORT_MAX_ATTEMPTS = 3
    settings.IMPORT_CHUNK_SIZE = 2
    execution = upload(document_import, ndjson(*(account(f"c{i}", {"a": i}) for i in range(6))))
    with pytest.raises(_WorkerKilled):
        run(execution, worker="w1", progress=_die_after(1))  # one chunk commits
    for _ in range(dead_runs):  # runs that die inside the second chunk
        assert runner._claim(execution.pk, "w1") is not None
    # The 3rd run at the checkpoint still runs; the 4th is refused.
    run(execution, worker="w1")
    assert execution.status == status
    assert UserProfile.objects.count() == (6 if status == "SUCCEEDED" else 2)


def test_attempts_are_reset_when_a_chunk_commits(document_import, settings):
    settings.IMPORT_MAX_ATTEMPTS = 2
    settings.IMPORT_CHUNK_SIZE = 1
    execution = upload(document_import, ndjson(*(account(f"c{i}", {"a": i}) for i in range(4))))
    for _ in range(4):  # a run that dies after each chunk: never twice at one checkpoint
        with pytest.raises(_WorkerKilled):
            run(execution, worker="w1", progress=_die_after(1))
    run(execution, worker="w1")
    assert execution.status == Execution.Status.SUCCEEDED and execution.processed == 4


def test_a_finished_execution_is_left_alone(document_import):
    execution = import_file(document_import, ndjson(account("c1", {"a": 1})))
    stamp = execution.end_ts
    UserProfile.objects.all().delete()
    run(execution)
    assert execution.end_ts == stamp and not UserProfile.objects.exists()


# --------------------------------------------------------------------------- cancel


def test_cancel_of_a_pending_execution_is_immediate(document_import):
    execution = upload(document_import, ndjson(account("c1", {"a": 1})))
    execution_cancel(execution=execution)
    assert execution.status == Execution.Status.CANCELED
    run(execution)
    assert execution.status == Execution.Status.CANCELED and not UserProfile.objects.exists()


def test_cancel_of_a_running_execution_stops_between_chunks_and_says_how_far(
    document_import, settings
):
    settings.IMPORT_CHUNK_SIZE = 3
    execution = upload(document_import, ndjson(*(account(f"c{i}", {"a": i}) for i in range(10))))

    def cancel_once(processed, total):
        if processed == 3:
            execution_cancel(execution=Execution.objects.get(pk=execution.pk))

    run(execution, progress=cancel_once)
    assert execution.status == Execution.Status.CANCELED
    assert execution.processed == 3 and execution.total_lines == 10
    assert "after line 3" in execution.error_message
    assert UserProfile.objects.count() == 3


# --------------------------------------------------------------------------- statements


def _statements_for(document_import, size: int) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    UserProfile.objects.all().delete()
    UserPoint.objects.all().delete()
    import_file(document_import, ndjson(*(account(f"c{i}", {"a": i}) for i in range(size))))
    content = ndjson(
        *(account(f"c{i}", {"a": -i - 1}) for i in range(size)),
        *(account(f"n{i}", {"a": i}) for i in range(size)),
        *(
            {"operation": "UPSERT", "email_hash": f"h{i}", "user_profile": {"a": i}}
            for i in range(size)
        ),
        *(delete(f"c{i}") for i in range(0, size, 2)),
    )
    execution = upload(document_import, content)
    with CaptureQueriesContext(connection) as queries:
        run(execution)
    assert counters(execution)["updated"] == size and counters(execution)["deleted"] == size // 2
    return len(queries)


def test_a_chunk_costs_a_few_statements_not_one_per_line(document_import, settings):
    settings.IMPORT_CHUNK_SIZE = 10_000
    small, large = _statements_for(document_import, 20), _statements_for(document_import, 400)
    assert large == small <= 40


def test_an_imported_change_names_its_profile_and_execution_in_the_history(document_import):
    execution = import_file(document_import, ndjson(account("c1", {"a": 1, "b": 2})))
    row = ProfileChange.objects.get()
    profile = UserProfile.objects.select_related("compartment").get()
    assert (
        row.datamart_id,
        row.user_point_id,
        row.profile_id,
        row.compartment_id,
        row.user_account_id,
        row.action,
        row.changed_keys,
        row.source,
        row.execution_id,
        row.user_id,
    ) == (
        profile.datamart_id,
        profile.user_point_id,
        profile.pk,
        profile.compartment.compartment_id,
        profile.user_account_id,
        "created",
        ["a", "b"],
        "import",
        execution.pk,
        execution.created_by_id,
    )


def test_duplicate_points_are_never_created_for_one_identifier(document_import, settings):
    settings.IMPORT_CHUNK_SIZE = 2
    import_file(
        document_import,
        ndjson(
            *(
                {"operation": "UPSERT", "email_hash": "h", "user_profile": {"n": i}}
                for i in range(5)
            )
        ),
    )
    assert UserPoint.objects.count() == 1
    assert UserEmail.objects.values("email_hash").annotate(n=Count("id")).get()["n"] == 1


# --------------------------------------------------------------------------- concurrency


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_executions_creating_the_same_identifiers_converge_on_one_point_each(
    datamart, crm_compartment
):
    """Two executions insert the same new identifiers and profiles at the same moment: the
    loser of each race uses the winner's point, or rolls its chunk back and applies it again."""
    document_import = DocumentImport.objects.create(datamart=datamart, name="CRM")
    contents = [
        ndjson(
            *(account(f"c{i}", {f"from{run_index}": i, "tags": [run_index]}) for i in range(3000))
        )
        for run_index in range(2)
    ]
    executions = [upload(document_import, content) for content in contents]
    outcomes = run_at_once(
        lambda execution: runner.execution_run(
            execution_id=execution.pk, worker=f"thread-{execution.pk}"
        ),
        executions,
    )
    assert not [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    for execution in executions:
        execution.refresh_from_db()
        assert execution.status == Execution.Status.SUCCEEDED, execution.error_message
        assert execution.failed == 0
    assert UserPoint.objects.count() == UserAccount.objects.count() == 3000
    assert UserProfile.objects.count() == 3000
    assert sum(e.created for e in executions) == 3000
    assert sum(e.updated for e in executions) == 3000
    profile = UserProfile.objects.get(user_account_id="c7")
    assert profile.properties == {"from0": 7, "from1": 7, "tags": profile.properties["tags"]}
    assert sorted(profile.properties["tags"]) == [0, 1]


def test_bad_json_array_elements_are_reported_by_element_number(datamart, crm_compartment):
    document_import = DocumentImport.objects.create(
        datamart=datamart, name="JSON", mime_type="APPLICATION_JSON"
    )
    content = (
        "[\n"
        + json.dumps(account("g1", {"a": 1}))
        + ",\n[1],\n"
        + '{"operation": "UPSERT", "user_profile": {}},\n'
        + ",\n"
        + json.dumps(account("g2", {"a": 2}))
        + "\n]\n"
    ).encode()
    execution = import_file(document_import, content, name="crm.json")
    assert execution.status == Execution.Status.SUCCEEDED
    assert errors_of(execution) == [
        (2, "INVALID_COMMAND"),
        (3, "MISSING_IDENTIFIER"),
        (4, "INVALID_JSON"),
    ]
    assert properties_of("g1") == {"a": 1} and properties_of("g2") == {"a": 2}


def test_bad_xlsx_cells_are_reported_by_sheet_row(datamart, crm_compartment):
    import io

    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(
        ["operation", "compartment_id", "user_account_id", "$compartment_id"]
        + ["$user_account_id", "age:int"]
    )
    sheet.append(["UPSERT", CRM, "g1", CRM, "g1", 30])
    sheet.append(["UPSERT", CRM, "b1", CRM, "b1", "forty"])
    sheet.append(["UPSERT", CRM, "b2", CRM, "b2", "#DIV/0!"])
    sheet.append(["UPSERT", 77, "b3", CRM, "b3", 1])
    sheet.append(["UPSERT", CRM, "g2", CRM, "g2", 40])
    out = io.BytesIO()
    workbook.save(out)
    document_import = DocumentImport.objects.create(
        datamart=datamart, name="XLSX", mime_type="APPLICATION_XLSX"
    )
    execution = import_file(document_import, out.getvalue(), name="crm.xlsx")
    assert execution.status == Execution.Status.SUCCEEDED
    assert errors_of(execution) == [
        (3, "INVALID_CELL"),
        (4, "INVALID_CELL"),
        (5, "UNKNOWN_COMPARTMENT"),
    ]
    assert properties_of("g1") == {"age": 30} and properties_of("g2") == {"age": 40}
    assert execution.total_lines == 5
