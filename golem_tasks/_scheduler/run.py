"""The caller's side of one job: feed the input lazily, hand results back.

Input is pulled from the user's iterable on the caller's thread, never more than
``window`` unfinished fragments ahead, so memory does not grow with the input's
length and an exception raised by the iterable surfaces where the user can see it.
Finished results wait (in order, for ``map``) in a buffer bounded by
``BUFFER_FACTOR * window`` (4 windows), so one slow or retried fragment does not stall the rest.
"""

from __future__ import annotations

import queue
import time
from concurrent.futures import CancelledError, Future
from typing import Any, Callable, Dict, Iterable, Iterator, NamedTuple, Optional, Sized, Tuple

from .. import _signals
from .. import events as ev
from ..errors import BatchCancelled, JobTimeoutError
from ..journal import JournalRun
from ..task import Task
from .job import Fragment, Job
from .pool import Pool

#: Longest a wait blocks before the deadline and interrupts are looked at again. A
#: result that arrives ends the wait at once, so this adds no latency.
_SLICE = 0.25
#: Finished results a ``map`` may hold behind an unfinished one, in windows.
BUFFER_FACTOR = 4

ArgsOf = Callable[[Any], Tuple[Tuple[Any, ...], Dict[str, Any]]]


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


def one_item(item: Any) -> Tuple[Tuple[Any, ...], Dict[str, Any]]:
    return (item,), {}


class JobRun:
    """Drives one job from the caller's thread.

    Usage: build it, then iterate exactly one of :meth:`ordered`, :meth:`completed`
    or :meth:`tasks`. However the iteration ends (a result, an error, ``break``,
    Ctrl-C, the job timeout) unfinished work is cancelled and ``JobFinished`` emitted.
    """

    def __init__(self, pool: Pool, job: Job, items: Iterable[Any], *, timeout: Optional[float], window: int,
                 emitter: ev.Emitter, total: Optional[int] = None, args_of: ArgsOf = one_item,
                 journal: Optional[Callable[[], Optional[JournalRun]]] = None) -> None:
        self.pool = pool
        self.job = job
        self.items = iter(items)
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.window = window
        self.emitter = emitter
        self.total = total
        self.args_of = args_of
        self.exhausted = False
        self.unfinished = 0
        #: Opens the job's journal when iteration starts (``journal=``), closed when it ends.
        self.open_journal = journal
        self.journal: Optional[JournalRun] = None
        assert job.outcomes is not None, "a JobRun collects its job's outcomes"
        self.done: "queue.SimpleQueue[Fragment]" = job.outcomes

    # ------------------------------------------------------------ iteration
    def ordered(self, return_exceptions: bool) -> Iterator[Any]:
        """Values in input order (``map``)."""
        buffered: Dict[int, Fragment] = {}
        next_index = 0
        with self._scope():
            while True:
                self._feed(buffered)
                while next_index in buffered:
                    fragment = buffered.pop(next_index)
                    next_index += 1
                    value = _outcome(fragment, return_exceptions)
                    if self.journal is not None:
                        self.journal.delivered(fragment)  # raises if its result could not be stored
                    yield value
                    self._feed(buffered)
                if self.unfinished == 0 and self.exhausted and not buffered:
                    return
                fragment = self._next_done()
                buffered[fragment.index] = fragment

    def completed(self, return_exceptions: bool) -> Iterator[FragmentResult]:
        """:class:`FragmentResult` values as fragments finish (``as_completed``)."""
        with self._scope():
            while True:
                self._feed()
                if self.unfinished == 0 and self.exhausted:
                    return
                fragment = self._next_done()
                value = _outcome(fragment, return_exceptions)  # raises a failure unless asked not to
                if self.journal is not None:
                    self.journal.delivered(fragment)
                yield FragmentResult(fragment.index, fragment.item, value)

    def tasks(self, return_exceptions: bool) -> Iterator[Task]:
        """Settled :class:`Task` objects as they finish (``execute_tasks``)."""
        with self._scope():
            while True:
                self._feed()
                if self.unfinished == 0 and self.exhausted:
                    return
                fragment = self._next_done()
                task = fragment.task
                error = _error(fragment.future)
                if error is not None and task.exception is None:
                    task._failed(error)  # failed without reaching a slot (pool broken, cancelled)
                if error is not None and not return_exceptions:
                    raise error
                if self.journal is not None:
                    self.journal.delivered(fragment)
                yield task

    # ---------------------------------------------------------------- parts
    def _feed(self, buffered: Sized = ()) -> None:
        """Submit items until ``window`` are unfinished, ``BUFFER_FACTOR`` windows are
        not yet handed to the caller (``buffered`` holds the finished ones), or the
        input ends."""
        bound = BUFFER_FACTOR * self.window
        while not self.exhausted and self.unfinished < self.window and len(buffered) + self.unfinished < bound:
            try:
                item = next(self.items)
            except StopIteration:
                self.exhausted = True
                self.pool.input_ended(self.job)
                return
            args, kwargs = self.args_of(item)
            fragment = self.job.new_fragment(args, kwargs)
            self.unfinished += 1
            if self.journal is not None and self._replay(fragment, item):
                continue
            if self.job.stream:
                fragment.task = item if isinstance(item, Task) else Task(item)
                fragment.args = (fragment.task.data,)
            if self.journal is not None:
                self.journal.track(fragment)
            self.pool.submit(fragment)

    def _replay(self, fragment: Fragment, item: Any) -> bool:
        """Resolve ``fragment`` from the journal when its result is recorded there: it
        never reaches the pool and comes back through the job's outcomes like any other."""
        assert self.journal is not None
        recorded = self.journal.replay(fragment.index, item)
        if recorded is None:
            return False
        if self.job.stream:
            fragment.task = recorded.task
            fragment.args = (recorded.task.data,)
        fragment.begin()
        fragment.claim()  # a fragment made a moment ago: nothing else can have claimed it
        self.job.replayed()
        if self.emitter.wants(ev.FragmentReplayed):
            self.emitter.emit(ev.FragmentReplayed(job_id=self.job.id, index=fragment.index))
        fragment.resolve(recorded.task if self.job.stream else recorded.value)
        return True

    def _next_done(self) -> Fragment:
        while True:
            timeout = self._remaining()  # raises JobTimeoutError: keep it out of the try
            try:
                fragment = self.done.get(timeout=timeout)
            except queue.Empty:
                if self.job.speculation is not None:
                    self.pool.poll_stragglers()
                self.pool.poll_pacing()
                continue
            self.unfinished -= 1
            return fragment

    def _remaining(self) -> float:
        if self.deadline is None:
            return _SLICE
        left = self.deadline - time.monotonic()
        if left <= 0:
            job = self.job
            raise JobTimeoutError(
                f"the job did not finish within its {self.timeout:g} s timeout: {job.done} fragment(s) done, "
                f"{job.failed} failed; the unfinished ones were cancelled and their commands killed"
            )
        return min(left, _SLICE)

    def _scope(self) -> "_Scope":
        return _Scope(self)


class _Scope:
    """Ends a job however its iteration ends."""

    def __init__(self, run: JobRun) -> None:
        self.run = run
        # SIGTERM and SIGHUP end a job in the main thread as Ctrl-C does, until its
        # clean-up is done (issue 9 §3).
        self.signals = _signals.job_signals()

    def __enter__(self) -> None:
        run = self.run
        self.signals.__enter__()
        if run.open_journal is not None:
            run.journal = run.open_journal()
        run.pool.input_started(run.job, run.total)
        if self.run.emitter.wants(ev.JobStarted):
            run.emitter.emit(ev.JobStarted(job_id=run.job.id, kind=run.job.kind, total=run.total))

    def __exit__(self, exc_type: Any, error: Optional[BaseException], tb: Any) -> None:
        try:
            self._end(error)
        finally:
            if self.run.journal is not None:
                self.run.journal.close()
            self.signals.__exit__(None, None, None)

    def _end(self, error: Optional[BaseException]) -> None:
        run, job = self.run, self.run.job
        # Input left unread is unfinished work too: leaving early (break, an error) cancels
        # the job and lets its providers go, even when everything submitted had finished.
        unread = not run.exhausted
        if unread:
            run.exhausted = True
            run.pool.input_ended(job)
        if unread or job.unfinished or job.cancelled:
            reason = "the caller stopped iterating" if error is None or isinstance(error, GeneratorExit) \
                else type(error).__name__
            run.pool.cancel_job(job, BatchCancelled(f"the job was cancelled: {reason}"))
        if run.emitter.wants(ev.JobFinished):
            failure = None if error is None or isinstance(error, GeneratorExit) else \
                f"{type(error).__name__}: {error}".splitlines()[0]
            run.emitter.emit(ev.JobFinished(
                job_id=job.id, done=job.done, failed=job.failed, retried=job.retried,
                elapsed=time.monotonic() - job.started, providers=job.summary(), error=failure,
                backups=job.backups_started, backups_won=job.backups_won))


def _error(future: "Future[Any]") -> Optional[BaseException]:
    try:
        return future.exception(timeout=0)
    except CancelledError:
        return BatchCancelled("the fragment was cancelled")


def _outcome(fragment: Fragment, return_exceptions: bool) -> Any:
    future = fragment.future
    try:
        return future.result(timeout=0)
    except CancelledError:
        error: BaseException = BatchCancelled(f"fragment {fragment.index} was cancelled")
        if return_exceptions:
            return error
        raise error from None
    except BaseException as exc:
        if return_exceptions:
            return exc
        raise
