"""How fast the jobs go, learnt from the scheduler's events: the spend guard's clock.

:class:`JobPace` is an event consumer (``Golem`` feeds it the fragment events of
every job when the provider has one, as it feeds the provider record). From them it
knows the fragments left and the mean fragment duration, so the provider can
project what its agreements will cost without asking the scheduler.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Dict, Optional, Tuple

from ....events import (Event, FragmentFailed, FragmentFinished, FragmentReplayed, FragmentRetried,
                        FragmentStarted, JobFinished, JobStarted)
from .projection import horizon


class _Job:
    __slots__ = ("total", "settled", "running")

    def __init__(self, total: Optional[int]) -> None:
        self.total = total
        self.settled = 0
        self.running: Dict[int, float] = {}  # fragment index -> when its attempt started


class JobPace:
    """Fragments left and mean fragment duration over the jobs running now.

    A job of unknown size (an iterator without ``len``) counts only its fragments in
    flight. Before any fragment finished, the age of the oldest one running stands in
    for the mean: a lower bound that grows while it runs.
    """

    #: The events it takes (pass as ``kinds=``).
    kinds: Tuple[type, ...] = (JobStarted, JobFinished, FragmentStarted, FragmentFinished, FragmentFailed,
                               FragmentRetried, FragmentReplayed)

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock  # the events' own clock (Event.timestamp)
        self._lock = threading.Lock()
        self._jobs: Dict[int, _Job] = {}
        self._finished = 0
        self._busy = 0.0

    def __call__(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, JobStarted):
                self._jobs[event.job_id] = _Job(event.total)
                return
            if isinstance(event, JobFinished):
                self._jobs.pop(event.job_id, None)
                return
            job = self._jobs.get(getattr(event, "job_id", -1))
            if job is None:
                return
            index = getattr(event, "index")
            if isinstance(event, FragmentStarted):
                job.running.setdefault(index, event.timestamp)  # a backup copy keeps the first start
            elif isinstance(event, FragmentRetried):
                job.running.pop(index, None)
            elif isinstance(event, (FragmentFinished, FragmentFailed, FragmentReplayed)):
                job.running.pop(index, None)
                job.settled += 1
                if isinstance(event, FragmentFinished):
                    self._finished += 1
                    self._busy += max(0.0, event.duration)

    def snapshot(self) -> Tuple[Optional[float], int]:
        """``(mean fragment seconds or None, fragments left)`` now."""
        now = self._clock()
        with self._lock:
            left = sum(max(0, job.total - job.settled) if job.total is not None else len(job.running)
                       for job in self._jobs.values())
            if self._finished:
                return self._busy / self._finished, left
            starts = [start for job in self._jobs.values() for start in job.running.values()]
        return (max(0.0, now - min(starts)) if starts else None), left

    def horizon(self, providers: int) -> float:
        """Seconds each of ``providers`` engaged providers is still expected to work."""
        mean, left = self.snapshot()
        return horizon(mean, left, providers)
