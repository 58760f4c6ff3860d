"""The real Celery app, measuring the memory of each task it runs.

Started as `celery -A tests.reliability.corpus.measured_worker worker` with CORPUS_MEMORY_LOG
naming a file: before each task the pool process resets its peak resident set size (writing 5
to /proc/self/clear_refs, Linux), after it the process appends one JSON line to the file with
the task's first argument (the execution id), its RSS before and its peak RSS during the task,
in kB. Nothing else differs from `-A profiles_site`.
"""

from __future__ import annotations

import json
import os
import re

from celery.signals import task_postrun, task_prerun

from profiles_site.celery import app

__all__ = ["app", "memory_kb"]

_before: dict[str, int] = {}


def memory_kb(field: str) -> int:
    """VmRSS or VmHWM (peak RSS) of this process, in kB."""
    with open("/proc/self/status") as status:
        match = re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE)
    return int(match.group(1)) if match else 0


@task_prerun.connect
def _reset_peak(task_id=None, **kwargs) -> None:
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    _before[task_id] = memory_kb("VmRSS")


@task_postrun.connect
def _record_peak(task_id=None, args=None, **kwargs) -> None:
    entry = {
        "execution_id": (args or [None])[0],
        "rss_before_kb": _before.pop(task_id, 0),
        "peak_kb": memory_kb("VmHWM"),
        "pid": os.getpid(),
    }
    with open(os.environ["CORPUS_MEMORY_LOG"], "a") as log:
        log.write(json.dumps(entry) + "\n")
