"""An import's pace: its progress series (one point per committed chunk, thinned), its duration,
its lines per second and the time it still needs. Pure functions, no database access.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# A series keeps at most this many points: enough for a chart, small enough to rewrite with
# each chunk (a few kB of JSON on the execution row).
SERIES_MAX_POINTS = 240

ProgressPoint = list  # [seconds since start (float, 0.1 s), processed lines, failed lines]


def series_append(
    series: list[ProgressPoint], point: ProgressPoint, *, limit: int = SERIES_MAX_POINTS
) -> list[ProgressPoint]:
    """`series` with `point` added; past `limit` points every other one is dropped (the first
    and the newest are kept), so a series covers the whole run at an even resolution."""
    points = [*series, point]
    if len(points) <= limit:
        return points
    thinned = points[:-1:2]
    return [*thinned, point]


@dataclass(frozen=True)
class Pace:
    seconds: float | None  # from start to end (or to now while it runs)
    lines_per_second: float | None
    eta_seconds: float | None  # only while it runs and its total is known


def execution_pace(
    *,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
    processed: int,
    total: int | None,
    running: bool,
) -> Pace:
    if start is None:
        return Pace(seconds=None, lines_per_second=None, eta_seconds=None)
    seconds = max(0.0, ((end or now) - start).total_seconds())
    rate = processed / seconds if seconds > 0 and processed else None
    eta = None
    if running and rate and total is not None:
        eta = max(0, total - processed) / rate
    return Pace(seconds=seconds, lines_per_second=rate, eta_seconds=eta)


def duration_text(seconds: float | None) -> str:
    """`850 ms`, `12.4 s`, `3 min 05 s`, `2 h 01 min`; `—` when unknown."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def rate_text(lines_per_second: float | None) -> str:
    if lines_per_second is None:
        return "—"
    if lines_per_second >= 100:
        return f"{lines_per_second:,.0f} lines/s"
    return f"{lines_per_second:,.1f} lines/s"


def failures_text(*, failed: int, processed: int, total: int | None) -> str:
    """What staff read beside the status: `15 of 15 lines failed`; empty when none failed."""
    if not failed:
        return ""
    of = total if total is not None else processed
    noun = "line" if of == 1 else "lines"
    return f"{failed:,} of {of:,} {noun} failed"
