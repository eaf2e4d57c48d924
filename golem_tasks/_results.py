"""The caller's side of a job: feed the input lazily, hand results back.

Input is pulled from the user's iterable on the caller's thread, never more than
``window`` fragments ahead of what the caller has consumed, so memory does not grow
with the input's length and an exception raised by the iterable surfaces where the
user can see it.
"""

from __future__ import annotations

import collections
import queue
import time
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FuturesTimeoutError
from typing import TYPE_CHECKING, Any, Callable, Deque, Iterable, Iterator, NamedTuple, Optional, Tuple, cast

from . import events as ev
from ._job import Fragment, Job
from .errors import BatchCancelled, JobTimeoutError
from .journal import JournalRun  # journal hook (beyond11)
from .task import Task

if TYPE_CHECKING:  # pragma: no cover
    from .golem import Golem

_SLICE = 0.25


class FragmentResult(NamedTuple):
    """One finished fragment from ``as_completed``.

    Attributes:
        index: the item's position in the input.
        item: the input item.
        value: the worker's return value, or the exception when
            ``return_exceptions=True`` and the fragment failed.
    """

    index: int  # type: ignore[assignment]  # shadows tuple.index, like a named field should
    item: Any
    value: Any

    @property
    def failed(self) -> bool:
        return isinstance(self.value, BaseException)


class JobRun:
    """Drives one job from the caller's thread."""

    def __init__(self, golem: "Golem", job: Job, items: Iterable[Any], *, timeout: Optional[float],
                 window: int, args_of: Callable[[Any], Tuple[Any, ...]] = lambda item: (item,)) -> None:
        self.golem = golem
        self.job = job
        self.items = iter(items)
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.timeout = timeout
        self.window = window
        self.args_of = args_of
        self.exhausted = False
        self.done_queue: "queue.SimpleQueue[Fragment]" = queue.SimpleQueue()
        self.journal: Optional[JournalRun] = None  # journal hook (beyond11)

    def feed(self, in_flight: int, on_submit: Callable[[Fragment], None]) -> int:
        """Submit items until ``window`` are in flight or the input ends."""
        while not self.exhausted and in_flight < self.window:
            try:
                item = next(self.items)
            except StopIteration:
                self.exhausted = True
                if self.job.stream:
                    self.golem._pool.stream_input_done(self.job)
                break
            # journal hook (beyond11): a result the journal holds is handed back as an
            # already resolved stand-in that never reaches the pool.
            if self.journal is not None:
                replayed = self.journal.replay(self.job.submitted, item)
                if replayed is not None:
                    with self.golem._pool._lock:
                        self.job.submitted += 1
                        self.job.done += 1
                    if self.golem._events.wants(ev.FragmentReplayed):
                        self.golem._events.emit(ev.FragmentReplayed(job_id=self.job.id, index=replayed.index))
                    on_submit(cast(Fragment, replayed))
                    in_flight += 1
                    continue
            fragment = self.job.new_fragment(self.args_of(item))
            if self.job.stream:
                fragment.task = item if isinstance(item, Task) else Task(item)
                fragment.args = (fragment.task.data,)
            if self.journal is not None:  # journal hook (beyond11)
                self.journal.track(fragment)
            on_submit(fragment)
            self.golem._pool.submit(fragment)
            in_flight += 1
        return in_flight

    def remaining(self) -> float:
        """How long the next wait may block. Waits are cut into short slices so that
        Ctrl-C is handled promptly even where a blocked lock wait is not interrupted
        by signals (Windows, or a signal delivered to another thread); a result that
        arrives ends the wait at once, so this adds no latency."""
        if self.deadline is None:
            return _SLICE
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.timed_out()
        return min(left, _SLICE)

    def timed_out(self) -> None:
        job = self.job
        raise JobTimeoutError(
            f"the job did not finish within its {self.timeout:g} s timeout: {job.done} fragment(s) done, "
            f"{job.failed} failed; the unfinished ones were cancelled and their commands killed"
        )

    def ordered(self, return_exceptions: bool) -> Iterator[Any]:
        pending: Deque[Fragment] = collections.deque()
        with self.golem._job_scope(self.job):
            while True:
                self.feed(len(pending), pending.append)
                if not pending:
                    return
                fragment = pending.popleft()
                self._wait(fragment.future)
                value = _outcome(fragment, return_exceptions)
                if self.journal is not None:  # journal hook (beyond11)
                    self.journal.delivered(fragment)
                yield value

    def completed(self, return_exceptions: bool) -> Iterator[Fragment]:
        in_flight = 0

        def track(fragment: Fragment) -> None:
            def done(_: Future) -> None:
                self.done_queue.put(fragment)
            fragment.future.add_done_callback(done)

        with self.golem._job_scope(self.job):
            while True:
                in_flight = self.feed(in_flight, track)
                if in_flight == 0:
                    return
                fragment = self._next_done()
                in_flight -= 1
                _outcome(fragment, return_exceptions)  # raises a failure unless asked not to
                if self.journal is not None:  # journal hook (beyond11)
                    self.journal.delivered(fragment)
                yield fragment


    def _wait(self, future: Future) -> None:
        # future.exception() returns a fragment's own error (even a TimeoutError)
        # instead of raising it, so TimeoutError here can only mean the slice ended.
        while True:
            timeout = self.remaining()  # raises JobTimeoutError: keep it out of the try
            try:
                future.exception(timeout=timeout)
                return
            except CancelledError:
                return
            except FuturesTimeoutError:
                continue

    def _next_done(self) -> Fragment:
        while True:
            timeout = self.remaining()
            try:
                return self.done_queue.get(timeout=timeout)
            except queue.Empty:
                continue


def _outcome(fragment: Fragment, return_exceptions: bool) -> Any:
    future: Future = fragment.future
    try:
        return future.result()
    except CancelledError:
        raise BatchCancelled(f"fragment {fragment.index} was cancelled") from None
    except BaseException as exc:
        if return_exceptions:
            return exc
        raise
