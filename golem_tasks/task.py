"""A unit of work for ``Golem.execute_tasks`` (yapapi's task model)."""

from __future__ import annotations

import enum
import itertools
import threading
from typing import Any, Callable, Optional

_ids = itertools.count(1)


class TaskStatus(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    ACCEPTED = "accepted"
    FAILED = "failed"


class Task:
    """One piece of input for an ``execute_tasks`` worker, and its outcome.

    The worker iterates its ``tasks``, yields batches for each, and settles every task
    with :meth:`accept_result` or :meth:`reject_result`. Unlike yapapi, a task
    rejected without retry is reported (``execute_tasks`` raises, or yields it with
    ``exception`` set when ``return_exceptions=True``), never dropped.

    Attributes:
        data: the input item.
        result: the value given to :meth:`accept_result`.
        exception: why the task failed, when it did.
        status: a :class:`TaskStatus`.
    """

    def __init__(self, data: Any) -> None:
        self.id = next(_ids)
        self.data = data
        self.result: Any = None
        self.exception: Optional[BaseException] = None
        self.status = TaskStatus.WAITING
        self._lock = threading.Lock()
        self._accept: Optional[Callable[[Any], None]] = None
        self._reject: Optional[Callable[[str, bool], None]] = None

    def _bind(self, *, accept: Callable[[Any], None], reject: Callable[[str, bool], None]) -> None:
        with self._lock:
            self._accept, self._reject = accept, reject
            self.status = TaskStatus.RUNNING

    def _take_handlers(self, what: str) -> tuple:
        with self._lock:
            if self.status is not TaskStatus.RUNNING or self._accept is None:
                raise RuntimeError(f"{what}() called on task {self.id} that is {self.status.value}, "
                                   f"not running: settle each task exactly once")
            handlers = (self._accept, self._reject)
            self._accept = self._reject = None
            return handlers

    def accept_result(self, result: Any = None) -> None:
        """Mark the task done with ``result``; it is handed back by ``execute_tasks``."""
        accept, _ = self._take_handlers("accept_result")
        self.result = result
        self.status = TaskStatus.ACCEPTED
        accept(self)

    def reject_result(self, reason: Optional[str] = None, retry: bool = False) -> None:
        """Give up on this attempt. With ``retry=True`` the task goes back to the queue
        for another provider (counted against ``max_retries``); otherwise it fails."""
        _, reject = self._take_handlers("reject_result")
        self.status = TaskStatus.WAITING if retry else TaskStatus.FAILED
        reject(reason or "no reason given", retry)

    def _failed(self, error: BaseException) -> None:
        with self._lock:
            self.exception = error
            self.status = TaskStatus.FAILED
            self._accept = self._reject = None

    def __repr__(self) -> str:
        return f"<Task {self.id} {self.status.value} data={self.data!r:.60}>"
