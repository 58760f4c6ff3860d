"""`manage.py import_profiles` as staff run it: its help, its summary (the execution's page, the
failed-lines file) and its progress, as a bar on a terminal and as plain lines in a log."""

from __future__ import annotations

import sys
from io import StringIO

import pytest
from django.core.management import call_command

from imports.management.commands import import_profiles
from imports.models import Execution
from tests.imports.helpers import account, ndjson


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def _import(path, *args: str, stderr: StringIO | None = None) -> tuple[str, str]:
    out, err = StringIO(), stderr if stderr is not None else StringIO()
    real = sys.stderr
    sys.stderr = err  # the progress goes to the process's stderr, as tqdm's does
    try:
        call_command("import_profiles", "--datamart", "1", str(path), *args, stdout=out)
    finally:
        sys.stderr = real
    return out.getvalue(), err.getvalue()


def test_every_option_has_help():
    parser = import_profiles.Command().create_parser("manage.py", "import_profiles")
    for action in parser._actions:
        assert action.help, action.dest
    usage = parser.format_help()
    assert "id of the datamart" in usage and "latin-1" in usage


def test_the_summary_points_to_the_execution_page_and_writes_the_failed_lines(
    datamart, crm_compartment, tmp_path, settings
):
    settings.BACK_OFFICE_URL = "https://backoffice.example.com"
    path = tmp_path / "crm.ndjson"
    path.write_bytes(ndjson(account("c1", {"a": 1}), "{bad", '{"operation": "UPSERT"}'))
    output, _ = _import(path, "--no-progress")
    execution = Execution.objects.get()
    assert "SUCCEEDED · 2 of 3 lines failed: total 3" in output
    assert (
        f"execution page: https://backoffice.example.com/admin/imports/execution/"
        f"{execution.pk}/change/" in output
    )
    failed = tmp_path / "crm.failed-lines.ndjson"
    assert f"failed lines: {failed} (2 lines" in output
    lines = failed.read_text().splitlines()
    assert lines[0].startswith('{"_line":2,"_error":"line 2: invalid JSON')
    assert lines[0].endswith('"_raw":"{bad"}')  # an unreadable line keeps its text
    assert lines[1].startswith('{"_line":3,"_error":"line 3')


def test_no_failed_lines_file_when_every_line_applied(datamart, crm_compartment, tmp_path):
    path = tmp_path / "crm.ndjson"
    path.write_bytes(ndjson(account("c1", {"a": 1})))
    output, _ = _import(path, "--no-progress", "--failed-lines", str(tmp_path / "f.ndjson"))
    assert "SUCCEEDED: total 1" in output and "failed lines" not in output
    assert not (tmp_path / "f.ndjson").exists()


def test_without_a_terminal_progress_is_printed_as_lines_never_as_a_bar(
    datamart, crm_compartment, tmp_path, settings, monkeypatch
):
    settings.IMPORT_CHUNK_SIZE = 2
    monkeypatch.setattr(import_profiles, "PROGRESS_LINE_SECONDS", 0.0)
    path = tmp_path / "crm.ndjson"
    path.write_bytes(ndjson(*(account(f"c{i}", {"a": i}) for i in range(5))))
    _, err = _import(path)
    assert "\r" not in err
    lines = err.splitlines()
    assert len(lines) >= 3  # one per chunk (every 0 s here) and the last one
    assert lines[0].startswith("progress: 2/5 lines (40%)")
    assert lines[-1].startswith("progress: 5/5 lines (100%)")


@pytest.mark.parametrize("seconds", [3600.0])
def test_a_progress_line_waits_its_interval(seconds):
    err = StringIO()
    lines = import_profiles.ProgressLines(err, every=seconds)
    lines(10, 100)
    lines(20, 100)
    assert err.getvalue() == ""
    lines.write()
    assert err.getvalue().startswith("progress: 20/100 lines (20%)")


def test_on_a_terminal_the_progress_is_a_bar(datamart, crm_compartment, tmp_path):
    path = tmp_path / "crm.ndjson"
    path.write_bytes(ndjson(*(account(f"c{i}", {"a": i}) for i in range(5))))
    _, err = _import(path, stderr=Terminal())
    assert "\r" in err and "5/5" in err and "progress:" not in err


def test_a_crm_file_imports_through_a_mapping_file_and_the_next_run_without_one_reads_spec_headers(
    datamart, crm_compartment, tmp_path
):
    import hashlib
    import json

    from django.core.management.base import CommandError

    from profiles.models import UserEmail, UserProfile

    mapping = tmp_path / "mapping.json"
    mapping.write_text(
        json.dumps(
            {
                "Customer ID": "$user_account_id",
                "Compartment": "$compartment_id",
                "E-mail": {"to": "email_hash", "transform": "sha256_email"},
                "Opt-in": "newsletter.opt_in:bool",
                "Notes": None,
            }
        )
    )
    crm = tmp_path / "crm.csv"
    crm.write_text(
        "Customer ID,Compartment,E-mail,Opt-in,Notes\n"
        f"C1,{crm_compartment.compartment_id}, Ann@Example.com ,true,call back\n"
    )
    output, _ = _import(crm, "--no-progress", "--mapping", str(mapping))
    assert "SUCCEEDED: total 1" in output, output
    profile = UserProfile.objects.get(user_account_id="C1")
    assert profile.properties == {"newsletter": {"opt_in": True}}
    digest = hashlib.sha256(b"ann@example.com").hexdigest()
    assert UserEmail.objects.get(user_point=profile.user_point).email_hash == digest

    # The next run names no mapping: the file's headers are SPEC §3's again.
    plain = tmp_path / "plain.csv"
    crm_id = crm_compartment.compartment_id
    plain.write_text(
        "compartment_id,user_account_id,$compartment_id,$user_account_id,age:int\n"
        f"{crm_id},C2,{crm_id},C2,40\n"
    )
    output, _ = _import(plain, "--no-progress")
    assert "SUCCEEDED: total 1" in output, output
    assert UserProfile.objects.get(user_account_id="C2").properties == {"age": 40}

    mapping.write_text(json.dumps({"Customer ID": "no_such:type"}))
    with pytest.raises(CommandError, match="Customer ID"):
        _import(crm, "--no-progress", "--mapping", str(mapping))
    mapping.write_text(json.dumps({"Customer ID": "user_account_id"}))
    commands = tmp_path / "crm.ndjson"
    commands.write_bytes(ndjson(account("c9", {"a": 1})))
    with pytest.raises(CommandError, match="COLUMN_MAPPING_NOT_APPLICABLE"):
        _import(commands, "--no-progress", "--mapping", str(mapping))


def test_the_command_can_be_told_that_empty_cells_are_empty_strings(datamart, tmp_path):
    from profiles.models import UserProfile

    path = tmp_path / "crm.csv"
    path.write_text("email_hash,city\ne1,\n")
    _import(path, "--no-progress", "--empty-cells-are-empty-strings")
    assert Execution.objects.get().empty_cell_is_empty_string
    assert UserProfile.objects.get().properties == {"city": ""}


@pytest.mark.parametrize("word", ["maybe", "treu", ""])
def test_a_merge_objects_word_that_is_no_boolean_is_refused_before_anything_runs(
    datamart, tmp_path, word
):
    """Read as false, a typo would switch every line to a shallow merge (SPEC §2 rule 3: deep
    merge unless the upload chose otherwise); the API refuses ?merge_objects=maybe too."""
    from django.core.management.base import CommandError

    path = tmp_path / "crm.ndjson"
    path.write_bytes(ndjson(account("c1", {"a": 1})))
    with pytest.raises(CommandError, match="--merge-objects takes true or false"):
        _import(path, "--no-progress", "--merge-objects", word)
    assert not Execution.objects.exists()


@pytest.mark.parametrize(("word", "deep"), [("true", True), ("FALSE", False), ("yes", True)])
def test_a_merge_objects_word_sets_the_default_merge(datamart, tmp_path, word, deep):
    path = tmp_path / "crm.ndjson"
    path.write_bytes(ndjson(account("c1", {"a": 1})))
    _import(path, "--no-progress", "--merge-objects", word)
    assert Execution.objects.get().default_merge_objects is deep
