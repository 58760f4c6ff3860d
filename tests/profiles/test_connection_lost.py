"""A batch whose database session the server ends (pg_terminate_backend, a restart) is
applied again on a new connection (`engine.with_retries`), wherever in the batch it ends:
between statements or in the middle of a COPY."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from django.db import connection, transaction

from profiles.bulk import BulkWriter
from profiles.engine import with_retries
from profiles.models import Datamart
from tests.imports.helpers import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _terminate_session(pid: int) -> None:
    """End a session from another one, as an operator would."""
    settings = connection.get_connection_params()
    with psycopg.connect(**settings, autocommit=True) as operator:
        operator.execute("SELECT pg_terminate_backend(%s)", [pid])
        # Wait until the server has really ended it: the next statement of ours then fails.
        wait_for(
            lambda: (
                not operator.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]
                ).fetchone()
            ),
            timeout=10,
            interval=0.01,
            message=f"the end of session {pid}",
        )


def _datamart_rows(first_id: int, count: int, *, ended_after: int | None) -> Iterator[tuple]:
    pid = connection.connection.info.backend_pid
    for offset in range(count):
        if offset == ended_after:
            _terminate_session(pid)
        yield (first_id + offset, f"datamart {first_id + offset}")


@pytest.mark.parametrize("ended", ["mid_copy", "before_copy"])
def test_a_batch_whose_session_is_terminated_is_applied_once_on_a_new_connection(ended):
    attempts = []

    def apply() -> int:
        attempts.append(connection.connection)
        with transaction.atomic():
            Datamart.objects.create(id=1, name="written before the COPY")
            first_attempt = len(attempts) == 1
            if first_attempt and ended == "before_copy":
                _terminate_session(connection.connection.info.backend_pid)
            # Many rows, so the COPY sends data after the session ended.
            rows = _datamart_rows(
                100,
                20_000,
                ended_after=5_000 if first_attempt and ended == "mid_copy" else None,
            )
            BulkWriter().insert(Datamart, ["id", "name"], rows)
        return Datamart.objects.count()

    assert with_retries(apply) == 20_001
    assert len(attempts) == 2
    assert attempts[0] is not attempts[1], "the retry ran on the dead connection"
    assert Datamart.objects.filter(id__gte=100).count() == 20_000
