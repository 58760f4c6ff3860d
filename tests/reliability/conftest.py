"""Fixtures of the fault, load and access scenarios (tests/reliability/harness.py)."""

from tests.reliability.harness import worker_env, workers  # noqa: F401
