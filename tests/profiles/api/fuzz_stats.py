"""Counts of the schemathesis run, printed at the end of the pytest session."""

from __future__ import annotations

from collections import Counter

cases: Counter[str] = Counter()


def record(operation: str) -> None:
    cases[operation] += 1
