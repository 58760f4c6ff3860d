"""A line error keeps at most IMPORT_ERROR_RAW_MAX_BYTES of its source record (a prefix and
the record's size), and the failed-lines file gives such a line back without its data."""

from __future__ import annotations

import io
import json

from imports.error_rows import bounded_raw
from imports.models import ExecutionError
from imports.services import execution_failed_lines_write
from tests.imports.helpers import errors_of, import_file


def test_bounded_raw_keeps_small_records_whole_and_cuts_big_ones_at_a_character():
    assert bounded_raw({"a": "x"}, 100) == ({"a": "x"}, None)
    assert bounded_raw("é" * 50, 100) == ("é" * 50, None)  # 100 bytes exactly
    cut, size = bounded_raw("é" * 51, 100)
    assert (cut, size) == ("é" * 50, 102)
    record = {"email_hash": "h", "note": "ü" * 1000}
    cut, size = bounded_raw(record, 64)
    assert size == len(json.dumps(record, ensure_ascii=False).encode())
    assert cut == json.dumps(record, ensure_ascii=False).encode()[:64].decode(errors="ignore")


def test_a_huge_bad_line_is_stored_as_a_prefix_and_comes_back_without_its_data(
    document_import, settings
):
    settings.IMPORT_ERROR_RAW_MAX_BYTES = 1000
    big = {"operation": "UPSERT", "email_hash": "h1", "user_profile": {"$bad": "x" * 20_000}}
    small = {"operation": "UPSERT", "email_hash": "h2", "user_profile": {"$bad": 1}}
    content = (json.dumps(big) + "\n" + json.dumps(small) + "\n").encode()
    execution = import_file(document_import, content)
    assert errors_of(execution) == [(1, "RESERVED_KEY"), (2, "RESERVED_KEY")]
    first, second = execution.errors.order_by("line")
    assert isinstance(first.raw, str) and len(first.raw.encode()) <= 1000
    assert first.raw_size > 20_000
    assert (second.raw, second.raw_size) == (small, None)

    out = io.BytesIO()
    assert execution_failed_lines_write(execution=execution, out=out) == 2
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert set(lines[0]) == {"_line", "_error"}
    assert f"the line took {first.raw_size} bytes, too many to keep" in lines[0]["_error"]
    assert lines[1]["user_profile"] == {"$bad": 1}


def test_the_error_pages_never_read_the_records(document_import):
    execution = import_file(document_import, b'{"operation": "UPSERT"}\n')
    assert execution.failed == 1
    query = str(execution.errors.without_raw().query)
    assert '"raw_size"' in query and '."raw"' not in query
    assert ExecutionError.objects.without_raw().get().error_code == "MISSING_IDENTIFIER"
