"""A job (one ``map``, ``execute_tasks``, ... call) and its fragments.

A :class:`Job` owns its counters and per-provider tallies and changes them through its
own methods, under its own lock, so any thread may read a consistent snapshot. A
:class:`Fragment` owns its future and its history of attempts.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
import queue
from concurrent.futures import Future, InvalidStateError
from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple

from ..events import ProviderSummary
from .speculation import Speculation

_job_ids = itertools.count(1)


class Fragment:
    """One piece of work: an input item, its future, and its history of attempts."""

    __slots__ = ("job", "index", "args", "kwargs", "future", "causes", "failed_on", "deadline", "task", "_begun",
                 "_claimed")

    def __init__(self, job: "Job", index: int, args: Tuple[Any, ...],
                 kwargs: Optional[Dict[str, Any]] = None) -> None:
        self.job = job
        self.index = index
        self.args = args
        self.kwargs = kwargs or {}
        self.future: "Future[Any]" = Future()
        self.causes: List[BaseException] = []
        self.failed_on: Set[str] = set()
        self.deadline: Optional[float] = None
        self.task: Any = None  # the Task object of an execute_tasks job
        self._begun = False
        self._claimed = False

    @property
    def attempt(self) -> int:
        """Number of the attempt about to run (1-based)."""
        return len(self.causes) + 1

    @property
    def item(self) -> Any:
        return self.args[0] if self.args else None

    def begin(self) -> bool:
        """Mark the first attempt as running; False when the future was cancelled."""
        with self.job._lock:  # two copies of a speculated fragment may begin at once
            if self._begun:
                return not self.future.done()
            self._begun = True
            return self.future.set_running_or_notify_cancel()

    def failed_attempt(self, cause: BaseException, provider_id: Optional[str]) -> None:
        self.causes.append(cause)
        if provider_id is not None:
            self.failed_on.add(provider_id)

    @property
    def settled(self) -> bool:
        """An outcome was claimed or given: nothing more to decide for this fragment."""
        return self._claimed or self.future.done()

    def claim(self) -> bool:
        """Reserve the right to give this fragment its outcome: True for exactly one
        caller (of two copies of a speculated fragment, or a copy and a cancel), so its
        events and counts are made once, before the caller can see the outcome."""
        with self.job._lock:  # the job's lock: one lock per fragment would cost more than it saves
            if self._claimed or self.future.done():
                return False
            self._claimed = True
            return True

    def resolve(self, value: Any) -> bool:
        """Deliver ``value`` (after :meth:`claim`); False when the future already had an outcome."""
        try:
            self.future.set_result(value)
        except InvalidStateError:  # lost a race with a cancel; that outcome stands
            return False
        self.job.finished(self)
        return True

    def reject(self, error: BaseException) -> bool:
        """Fail with ``error`` (after :meth:`claim`); False when the future already had an outcome."""
        if self.task is not None:
            self.task._failed(error)
        try:
            self.future.set_exception(error)
        except InvalidStateError:  # lost a race with another resolver
            return False
        self.job.finished(self)
        return True

    def abandon(self, error: BaseException) -> bool:
        """The job was cancelled: cancel a fragment that never started, fail a started one
        (unless an outcome was already claimed for it)."""
        if not self.claim():
            return False
        if self.task is not None:
            self.task._failed(error)
        if self.future.cancel():
            self.job.finished(self)
            return True
        return self.reject(error)


class ProviderTally:
    __slots__ = ("name", "done", "failed", "busy")

    def __init__(self, name: str) -> None:
        self.name = name
        self.done = 0
        self.failed = 0
        self.busy = 0.0


class Job:
    """Fragments that share a worker and a fate.

    Attributes:
        worker: ``worker(ctx, *args)`` for function jobs, ``worker(ctx, tasks)`` for
            task-stream jobs (``execute_tasks``).
        stream: True for ``execute_tasks`` jobs, whose worker consumes many tasks.
        limit: most fragments of this job running at once.
    """

    def __init__(self, kind: str, worker: Callable[..., Any], *, limit: int,
                 fragment_timeout: Optional[float], stream: bool = False, collect: bool = True,
                 speculation: Optional[Speculation] = None) -> None:
        self.id = next(_job_ids)
        self.kind = kind
        self.worker = worker
        self.stream = stream
        self.limit = limit
        self.fragment_timeout = fragment_timeout
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._submitted = 0
        self._settled = 0
        self._input_done = False
        self._cancelled = False
        self.done = 0
        self.failed = 0
        self.retried = 0
        self._tallies: Dict[str, ProviderTally] = {}
        #: Backup copies of stragglers (never for task streams, whose worker holds many tasks).
        self.speculation = None if stream else speculation
        #: Durations of the latest delivered fragments, for the straggler threshold.
        self._durations: Deque[float] = collections.deque(maxlen=1024)
        self.backups_started = 0
        self.backups_won = 0
        #: Fragments with an outcome, in the order they got it, for the caller to take
        #: (None for jobs nobody collects, such as submit()'s, whose futures are enough).
        self.outcomes: "Optional[queue.SimpleQueue[Fragment]]" = queue.SimpleQueue() if collect else None

    # --------------------------------------------------------------- feeding
    def new_fragment(self, args: Tuple[Any, ...], kwargs: Optional[Dict[str, Any]] = None) -> Fragment:
        with self._lock:
            index = self._submitted
            self._submitted += 1
        return Fragment(self, index, args, kwargs)

    @property
    def submitted(self) -> int:
        """Fragments made so far from the job's input."""
        with self._lock:
            return self._submitted

    def input_ended(self) -> None:
        with self._lock:
            self._input_done = True

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def input_done(self) -> bool:
        return self._input_done

    @property
    def unfinished(self) -> bool:
        """Some submitted fragment has no outcome yet, or more input may come."""
        with self._lock:
            return self._settled < self._submitted or not self._input_done

    # -------------------------------------------------------------- outcomes
    def finished(self, fragment: Fragment) -> None:
        if self.outcomes is not None:
            self.outcomes.put(fragment)

    def replayed(self) -> None:
        """A fragment's result was read back from the journal: done, on no provider."""
        with self._lock:
            self.done += 1
            self._settled += 1

    def straggler_after(self) -> Optional[float]:
        """Seconds after which a running fragment of this job deserves a backup copy."""
        if self.speculation is None:
            return None
        with self._lock:
            durations = list(self._durations)
        return self.speculation.threshold(durations)

    def backup_started(self) -> None:
        with self._lock:
            self.backups_started += 1

    def delivered(self, provider_id: str, name: str, busy: float, backup: bool = False) -> None:
        with self._lock:
            if self.speculation is not None:
                self._durations.append(busy)
            self.backups_won += backup
            self.done += 1
            self._settled += 1
            tally = self._tally(provider_id, name)
            tally.done += 1
            tally.busy += busy

    def failed_for_good(self, provider_id: Optional[str], counted: bool = True) -> None:
        with self._lock:
            self._settled += 1
            if counted:
                self.failed += 1
                if provider_id is not None and provider_id in self._tallies:
                    self._tallies[provider_id].failed += 1

    def retrying(self, provider_id: str, name: str, busy: float) -> None:
        with self._lock:
            self.retried += 1
            self._tally(provider_id, name).busy += busy

    def busy(self, provider_id: str, name: str, seconds: float) -> None:
        with self._lock:
            self._tally(provider_id, name).busy += seconds

    def _tally(self, provider_id: str, name: str) -> ProviderTally:
        tally = self._tallies.get(provider_id)
        if tally is None:
            tally = self._tallies[provider_id] = ProviderTally(name)
        return tally

    def summary(self) -> Tuple[ProviderSummary, ...]:
        with self._lock:
            return tuple(
                ProviderSummary(provider_id=pid, provider_name=t.name, done=t.done, failed=t.failed, busy=t.busy)
                for pid, t in sorted(self._tallies.items())
            )
