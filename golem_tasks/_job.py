"""Bookkeeping for one job (a ``map``, ``execute_tasks``, ... call) and its fragments.

All mutable state here is guarded by the pool's condition variable; the methods
marked "locked" expect the caller to hold it.
"""

from __future__ import annotations

import itertools
import time
from concurrent.futures import Future
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from .events import ProviderSummary

_job_ids = itertools.count(1)


class Fragment:
    """One piece of work: an input item, its future, and its history of attempts."""

    __slots__ = ("job", "index", "args", "future", "causes", "failed_on", "not_before", "deadline", "task")

    def __init__(self, job: "Job", index: int, args: Tuple[Any, ...], future: Future) -> None:
        self.job = job
        self.index = index
        self.args = args
        self.future = future
        self.causes: List[BaseException] = []
        self.failed_on: Set[str] = set()
        self.not_before = 0.0
        self.deadline: Optional[float] = None
        self.task: Any = None  # the Task object of an execute_tasks job

    @property
    def attempt(self) -> int:
        """Number of the attempt about to run (1-based)."""
        return len(self.causes) + 1

    @property
    def item(self) -> Any:
        return self.args[0] if self.args else None


class ProviderTally:
    __slots__ = ("name", "done", "failed", "busy")

    def __init__(self, name: str) -> None:
        self.name = name
        self.done = 0
        self.failed = 0
        self.busy = 0.0


class Job:
    """A batch of fragments that share a worker and a fate.

    Attributes:
        worker: ``worker(ctx, *args)`` for function jobs, ``worker(ctx, tasks)`` for
            task-stream jobs (``execute_tasks``).
        stream: True for ``execute_tasks`` jobs, whose worker consumes many tasks.
        limit: most fragments of this job running at once.
    """

    def __init__(self, kind: str, worker: Callable[..., Any], *, limit: int,
                 fragment_timeout: Optional[float], stream: bool = False) -> None:
        self.id = next(_job_ids)
        self.kind = kind
        self.worker = worker
        self.stream = stream
        self.limit = limit
        self.fragment_timeout = fragment_timeout
        self.running = 0
        self.queued = 0
        self.submitted = 0
        self.input_done = False
        self.cancelled = False
        self.done = 0
        self.failed = 0
        self.retried = 0
        self.started = time.monotonic()
        self.tallies: Dict[str, ProviderTally] = {}

    def new_fragment(self, args: Tuple[Any, ...]) -> Fragment:
        fragment = Fragment(self, self.submitted, args, Future())
        self.submitted += 1
        return fragment

    def tally(self, provider_id: str, name: str) -> ProviderTally:
        tally = self.tallies.get(provider_id)
        if tally is None:
            tally = self.tallies[provider_id] = ProviderTally(name)
        return tally

    def summary(self) -> Tuple[ProviderSummary, ...]:
        return tuple(
            ProviderSummary(provider_id=pid, provider_name=t.name, done=t.done, failed=t.failed, busy=t.busy)
            for pid, t in sorted(self.tallies.items())
        )

    @property
    def idle(self) -> bool:
        """Nothing of this job is queued or running (locked)."""
        return self.queued == 0 and self.running == 0
