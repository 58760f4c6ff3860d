"""SPEC §4's execution lifecycle: PENDING → RUNNING → SUCCEEDED | FAILED | CANCELED."""

from __future__ import annotations

import pytest

from imports.models import Execution

FINISHED = [Execution.Status.SUCCEEDED, Execution.Status.FAILED, Execution.Status.CANCELED]


def _execution(document_import, status: str) -> Execution:
    return Execution.objects.create(
        datamart=document_import.datamart, document_import=document_import, status=status
    )


def test_a_run_stamps_its_start_and_its_end(document_import):
    execution = _execution(document_import, Execution.Status.PENDING)
    assert execution.transition(Execution.Status.RUNNING)
    assert execution.start_ts is not None and execution.end_ts is None
    assert execution.transition(Execution.Status.SUCCEEDED)
    execution.refresh_from_db()
    assert execution.status == Execution.Status.SUCCEEDED
    assert execution.end_ts >= execution.start_ts


@pytest.mark.parametrize("finished", FINISHED)
@pytest.mark.parametrize("target", [Execution.Status.PENDING, Execution.Status.RUNNING, *FINISHED])
def test_a_finished_execution_never_moves_again(document_import, finished, target):
    execution = _execution(document_import, finished)
    assert not execution.transition(target)
    execution.refresh_from_db()
    assert execution.status == finished


def test_a_pending_execution_cannot_succeed_without_running(document_import):
    execution = _execution(document_import, Execution.Status.PENDING)
    assert not execution.transition(Execution.Status.SUCCEEDED)
    assert execution.status == Execution.Status.PENDING


def test_a_failure_keeps_its_code_and_message(document_import):
    execution = _execution(document_import, Execution.Status.RUNNING)
    assert execution.transition(
        Execution.Status.FAILED, error_code="UNREADABLE_FILE", error_message="not a zip"
    )
    execution.refresh_from_db()
    assert (execution.error_code, execution.error_message) == ("UNREADABLE_FILE", "not a zip")
