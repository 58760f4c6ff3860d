"""What the back-office shows of an execution's pace: the status with its failures, duration,
lines per second, ETA, a small SVG chart of its progress series and its errors by code."""

from __future__ import annotations

from django.db.models import Count
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from imports.models import Execution
from imports.pace import Pace, duration_text, execution_pace, failures_text, rate_text
from profiles.wording import count_noun

CHART_WIDTH = 640
CHART_HEIGHT = 160
CHART_MARGIN = 6


def pace_of(execution: Execution) -> Pace:
    return execution_pace(
        start=execution.start_ts,
        end=execution.end_ts,
        now=timezone.now(),
        processed=execution.processed,
        total=execution.total_lines,
        running=execution.status == Execution.Status.RUNNING,
    )


def failures(execution: Execution) -> str:
    """`15 of 15 lines failed`, or empty when no line failed."""
    return failures_text(
        failed=execution.failed, processed=execution.processed, total=execution.total_lines
    )


def status_label(execution: Execution) -> str:
    """SPEC §4's status, and how many lines failed: `SUCCEEDED · 15 of 15 lines failed`."""
    failed = failures(execution)
    return f"{execution.status} · {failed}" if failed else execution.status


def pace_facts(execution: Execution) -> dict[str, str]:
    """Duration, lines/s and (while it runs) ETA, as text."""
    pace = pace_of(execution)
    facts = {"duration": duration_text(pace.seconds), "rate": rate_text(pace.lines_per_second)}
    if execution.status == Execution.Status.RUNNING:
        facts["eta"] = duration_text(pace.eta_seconds) if pace.eta_seconds is not None else "—"
    return facts


def error_code_counts(execution: Execution) -> list[tuple[str, int]]:
    """(code, lines) for each error code of the execution, the most frequent first."""
    if not execution.failed:
        return []
    rows = (
        execution.errors.order_by()
        .values("error_code")
        .annotate(lines=Count("id"))
        .order_by("-lines", "error_code")
    )
    return [(row["error_code"], row["lines"]) for row in rows]


def progress_chart(execution: Execution) -> SafeString:
    """An inline SVG (no script, no external file): lines applied and lines in error over time,
    from the progress series the runner records with each chunk."""
    series = [point for point in execution.progress_series or [] if len(point) == 3]
    if execution.start_ts is None or not series:
        return SafeString("")
    points = [[0.0, 0, 0], *series]
    seconds = max(point[0] for point in points) or 1.0
    top = max(execution.total_lines or 0, max(point[1] for point in points)) or 1
    inner_width = CHART_WIDTH - 2 * CHART_MARGIN
    inner_height = CHART_HEIGHT - 2 * CHART_MARGIN

    def polyline(value_of) -> str:
        return " ".join(
            f"{CHART_MARGIN + point[0] / seconds * inner_width:.1f},"
            f"{CHART_MARGIN + inner_height - value_of(point) / top * inner_height:.1f}"
            for point in points
        )

    applied = polyline(lambda point: point[1] - point[2])
    failed = polyline(lambda point: point[2])
    last = points[-1]
    title = (
        f"{count_noun(last[1] - last[2], 'line')} applied and {last[2]:,} in error after "
        f"{duration_text(last[0])}, out of {top:,}"
    )
    ticks = format_html_join(
        "",
        '<text x="{}" y="{}" class="{}">{}</text>',
        [
            (CHART_MARGIN + 2, CHART_MARGIN + 12, "tick", count_noun(top, "line")),
            (
                CHART_WIDTH - CHART_MARGIN - 2,
                CHART_HEIGHT - CHART_MARGIN - 4,
                "tick end",
                duration_text(seconds),
            ),
        ],
    )
    return format_html(
        '<svg class="imports-chart" id="execution-chart" viewBox="0 0 {w} {h}" role="img" '
        'aria-label="{title}"><title>{title}</title>'
        '<rect class="frame" x="{m}" y="{m}" width="{iw}" height="{ih}"></rect>'
        '<polyline class="applied" points="{applied}"></polyline>'
        '<polyline class="failed" points="{failed}"></polyline>{ticks}</svg>',
        w=CHART_WIDTH,
        h=CHART_HEIGHT,
        m=CHART_MARGIN,
        iw=inner_width,
        ih=inner_height,
        title=title,
        applied=applied,
        failed=failed,
        ticks=ticks,
    )
