"""Run one piece of work in several threads released together, each on its own connection."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from django.db import connection

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


def run_at_once(
    work: Callable[[Item], Outcome], items: Sequence[Item]
) -> list[Outcome | BaseException]:
    """`work(item)` for every item, one thread each, all past a barrier at the same moment.

    Django gives each thread its own database connection, so these are real concurrent
    writers; an exception is returned in place of its outcome, for the test to report.
    """
    outcomes: list[Outcome | BaseException] = []
    barrier = threading.Barrier(len(items))

    def run(item: Item) -> None:
        try:
            barrier.wait()
            outcomes.append(work(item))
        except BaseException as failure:  # reported by the test
            outcomes.append(failure)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
