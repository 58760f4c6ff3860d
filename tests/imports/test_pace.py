"""An import's pace: the progress series (bounded, covering the whole run), duration, lines/s,
ETA, and the failure count shown beside the status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from imports.pace import (
    duration_text,
    execution_pace,
    failures_text,
    rate_text,
    series_append,
)
from imports.runner import execution_run
from tests.imports.helpers import account, ndjson, upload

START = datetime(2026, 1, 1, tzinfo=UTC)


@given(
    chunks=st.integers(min_value=1, max_value=2000), limit=st.integers(min_value=4, max_value=50)
)
def test_a_series_stays_bounded_and_keeps_its_first_and_newest_points(chunks, limit):
    series: list = []
    for index in range(1, chunks + 1):
        series = series_append(series, [index * 0.5, index * 10, index], limit=limit)
        assert len(series) <= limit
    assert series[0] == [0.5, 10, 1] and series[-1] == [chunks * 0.5, chunks * 10, chunks]
    assert [point[0] for point in series] == sorted(point[0] for point in series)


def test_pace_while_running_and_once_finished():
    running = execution_pace(
        start=START,
        end=None,
        now=START + timedelta(seconds=10),
        processed=1000,
        total=5000,
        running=True,
    )
    assert (running.seconds, running.lines_per_second, running.eta_seconds) == (10, 100, 40)
    done = execution_pace(
        start=START,
        end=START + timedelta(seconds=4),
        now=START + timedelta(days=1),
        processed=1000,
        total=1000,
        running=False,
    )
    assert (done.seconds, done.lines_per_second, done.eta_seconds) == (4, 250, None)
    pending = execution_pace(
        start=None, end=None, now=START, processed=0, total=None, running=False
    )
    assert pending.seconds is None and duration_text(pending.seconds) == "—"


def test_texts_staff_read():
    assert [duration_text(s) for s in (0.25, 12.44, 185, 7260)] == [
        "250 ms",
        "12.4 s",
        "3 min 05 s",
        "2 h 01 min",
    ]
    assert rate_text(1234.5) == "1,234 lines/s" and rate_text(2.25) == "2.2 lines/s"
    assert failures_text(failed=15, processed=15, total=15) == "15 of 15 lines failed"
    assert failures_text(failed=1, processed=1, total=None) == "1 of 1 line failed"
    assert failures_text(failed=0, processed=9, total=9) == ""


def test_the_runner_records_a_point_per_chunk(document_import, settings):
    settings.IMPORT_CHUNK_SIZE = 2
    lines = [account(f"c{i}", {"a": i}) for i in range(5)] + ["{bad"]
    execution = upload(document_import, ndjson(*lines))
    execution_run(execution_id=execution.pk, worker="test")
    execution.refresh_from_db()
    series = execution.progress_series
    assert [point[1:] for point in series] == [[2, 0], [4, 0], [6, 1]]
    assert all(isinstance(point[0], float) and point[0] >= 0 for point in series)
    assert [point[0] for point in series] == sorted(point[0] for point in series)
