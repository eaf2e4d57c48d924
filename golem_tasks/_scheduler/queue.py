"""Fragments waiting for a provider.

A plain data structure: the pool calls it under the pool's lock, and it calls nobody.
New fragments go to the back; a retried one goes to the front with the time before
which it must not start (its backoff), so the oldest work is finished first.
"""

from __future__ import annotations

import collections
import time
from typing import Callable, Deque, Dict, List, Optional

from .job import Fragment, Job


class WorkQueue:
    __slots__ = ("_items", "_not_before", "_ready_at", "_per_job")

    def __init__(self) -> None:
        self._items: Deque[Fragment] = collections.deque()
        self._not_before: Dict[int, float] = {}  # id(fragment) -> monotonic time
        self._ready_at: Dict[int, float] = {}  # id(fragment) -> when a retry became due
        self._per_job: Dict[Job, int] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def queued(self, job: Job) -> int:
        return self._per_job.get(job, 0)

    def enqueue(self, fragment: Fragment) -> None:
        self._items.append(fragment)
        self._count(fragment.job, 1)

    def requeue(self, fragment: Fragment, not_before: float) -> None:
        """Put a retried fragment at the front; it may start at ``not_before``."""
        if not_before:
            self._not_before[id(fragment)] = not_before
        self._ready_at[id(fragment)] = not_before or time.monotonic()
        self._items.appendleft(fragment)
        self._count(fragment.job, 1)

    def take(self, may_run: Callable[[Fragment, float], bool], now: float) -> Optional[Fragment]:
        """Remove and return the first fragment that is due and that
        ``may_run(fragment, ready_at)`` allows; ``ready_at`` is when a retried fragment
        became due (0 for a first attempt)."""
        items = self._items
        if not items:
            return None
        if not self._ready_at:  # no retries waiting: the common case, decided on the first item
            first = items[0]
            if not may_run(first, 0.0):
                return self._search(may_run, now)
            items.popleft()
            self._count(first.job, -1)
            return first
        return self._search(may_run, now)

    def _search(self, may_run: Callable[[Fragment, float], bool], now: float) -> Optional[Fragment]:
        for fragment in self._items:
            due = self._not_before.get(id(fragment), 0.0)
            if due > now or not may_run(fragment, self._ready_at.get(id(fragment), 0.0)):
                continue
            self._items.remove(fragment)
            self._not_before.pop(id(fragment), None)
            self._ready_at.pop(id(fragment), None)
            self._count(fragment.job, -1)
            return fragment
        return None

    def next_due(self, now: float, job: Optional[Job] = None) -> Optional[float]:
        """The earliest time a waiting retry (of ``job``, when given) becomes due."""
        times = [t for f in self._items if (t := self._not_before.get(id(f), 0.0)) > now
                 and (job is None or f.job is job)]
        return min(times) if times else None

    def fragments(self) -> List[Fragment]:
        return list(self._items)

    def drop(self, job: Optional[Job] = None) -> List[Fragment]:
        """Remove and return the fragments of ``job`` (of every job when None)."""
        if job is None:
            dropped = list(self._items)
            self._items.clear()
            self._not_before.clear()
            self._ready_at.clear()
            self._per_job.clear()
            return dropped
        dropped = [f for f in self._items if f.job is job]
        if dropped:
            self._items = collections.deque(f for f in self._items if f.job is not job)
            for fragment in dropped:
                self._not_before.pop(id(fragment), None)
                self._ready_at.pop(id(fragment), None)
            self._per_job.pop(job, None)
        return dropped

    def _count(self, job: Job, delta: int) -> None:
        count = self._per_job.get(job, 0) + delta
        if count:
            self._per_job[job] = count
        else:
            del self._per_job[job]
