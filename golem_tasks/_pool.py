"""The pool of engaged providers and the queue of fragments waiting for them.

Each *slot* is one long-running job on a ``ThreadPoolExecutor`` that owns at most one
engaged session at a time: it engages, runs the initializer once, then takes
fragments from the shared queue until it is told to stop or its provider is given up.
So at most ``max_workers`` providers are ever engaged, and the initializer runs
exactly once per engaged provider.

Locking: one lock guards the queue, the slots and every ``Job`` counter. Each idle
slot waits on its own condition (sharing that lock), so a new fragment wakes exactly
one slot that can take it instead of every thread.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Deque, Dict, List, Optional, Set

from . import events as ev
from ._job import Fragment, Job, ProviderTally
from ._runner import Runner
from .context import WorkContext
from .errors import BatchCancelled, BrokenPool, BudgetExhausted, GolemTasksError
from .policy import RetryPolicy
from .providers.base import Provider, Session

logger = logging.getLogger(__name__)

#: Consecutive engage() failures after which the pool is declared broken.
ENGAGE_ATTEMPTS = 3
#: Consecutive initializer failures (each on a fresh provider) tolerated before the
#: pool is declared broken; max_retries raises it, but a transient setup failure must
#: not break a run that allows no fragment retries.
INITIALIZER_ATTEMPTS = 3


class Slot:
    __slots__ = ("cond", "session", "provider_id", "engaging", "exit", "dirty", "waiting_for", "job")

    def __init__(self, lock: threading.Lock) -> None:
        self.cond = threading.Condition(lock)
        self.session: Optional[Session] = None
        self.provider_id: Optional[str] = None
        self.engaging = True
        self.exit = False
        self.dirty = False  # its session was cancelled mid-batch: never reuse it
        self.waiting_for: Optional[Job] = None
        self.job: Optional[Job] = None  # the job whose fragment it is running


class Pool:
    def __init__(self, provider: Provider, *, max_workers: int, policy: RetryPolicy,
                 initializer: Optional[Callable[..., Any]], batch_timeout: Optional[float],
                 emitter: ev.Emitter) -> None:
        self.provider = provider
        self.max_workers = max_workers
        self.policy = policy
        self.emitter = emitter
        self._lock = threading.Lock()
        self._queue: Deque[Fragment] = collections.deque()
        self._slots: Set[Slot] = set()
        self._idle: List[Slot] = []
        self._excluded: Set[str] = set()
        self._threads = ThreadPoolExecutor(max_workers, thread_name_prefix="golem_tasks")
        self._closed = False
        self._broken: Optional[BrokenPool] = None
        self._abort = threading.Event()
        self._engage_failures = 0
        self._budget_noted = False
        self._init_failures = 0
        self._running = 0
        self._changed = threading.Condition(self._lock)
        self.totals: Dict[str, ProviderTally] = {}
        self.runner = Runner(self, initializer=initializer, batch_timeout=batch_timeout)

    # ----------------------------------------------------------------- caller side
    def submit(self, fragment: Fragment) -> None:
        """Queue ``fragment``; on a broken pool its future fails at once with the
        pool's error, so callers report it in place like any other failure."""
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit work after the Golem was shut down")
            broken = self._broken
            if broken is None:
                self._enqueue(fragment)
                return
        self.runner.fail(fragment, broken, provider_id=None)

    @property
    def broken(self) -> Optional[BrokenPool]:
        return self._broken

    def abort(self, job: Job, error: BaseException, wait: float = 5.0) -> None:
        """Stop ``job`` now: drop its queued fragments, kill its running commands, and
        release the providers it leaves idle. Waits up to ``wait`` s for the releases."""
        with self._lock:
            job.cancelled = True
            dropped = [f for f in self._queue if f.job is job]
            for fragment in dropped:
                self._queue.remove(fragment)
                job.queued -= 1
            running = [s for s in self._slots if s.job is job]
            for slot in running:
                slot.dirty = True
            self._notify_all()
        for fragment in dropped:
            _cancel_future(fragment, error)
        for slot in running:
            self.runner.cancel_session(slot.session)
        deadline = time.monotonic() + wait
        with self._lock:
            while job.running and (remaining := deadline - time.monotonic()) > 0:
                self._changed.wait(remaining)
        self.release_idle(max(0.0, deadline - time.monotonic()))

    def release_idle(self, wait: float = 5.0) -> None:
        """Release every provider that no unfinished work needs, waiting up to ``wait`` s."""
        deadline = time.monotonic() + wait
        with self._lock:
            if self._queue or self._running:
                return
            for slot in self._slots:
                slot.exit = True
            self._notify_all()
            while any(s.exit for s in self._slots) and not self._queue and \
                    (remaining := deadline - time.monotonic()) > 0:
                self._changed.wait(remaining)

    def close(self, *, cancel: bool, wait: bool = True) -> None:
        """Stop accepting work; with ``cancel`` drop and kill everything; then let the
        slots finish the queue, release their providers and end their threads."""
        with self._lock:
            self._closed = True
            if cancel:
                self._abort.set()
                dropped = list(self._queue)
                self._queue.clear()
                for fragment in dropped:
                    fragment.job.queued -= 1
                sessions = [s.session for s in self._slots if s.session is not None]
                for slot in self._slots:
                    slot.exit = slot.dirty = True
            else:
                dropped, sessions = [], []
            self._notify_all()
        for fragment in dropped:
            _cancel_future(fragment, BatchCancelled("the Golem was shut down before this fragment ran"))
        for session in sessions:
            self.runner.cancel_session(session)
        self._threads.shutdown(wait=wait)

    @property
    def engaged(self) -> int:
        with self._lock:
            return sum(1 for s in self._slots if s.session is not None)

    # ---------------------------------------------------------- queue (locked)
    def _enqueue(self, fragment: Fragment, front: bool = False) -> None:
        fragment.job.queued += 1
        if front:
            self._queue.appendleft(fragment)
        else:
            self._queue.append(fragment)
        for slot in reversed(self._idle):
            if self._can_take(slot, fragment, stream_job=slot.waiting_for):
                self._idle.remove(slot)
                slot.cond.notify()
                return
        engaging = sum(1 for s in self._slots if s.engaging)
        if not self._closed and len(self._slots) < self.max_workers and engaging < len(self._queue):
            self._spawn()

    def _wake_for(self, job: Job) -> None:
        """Wake one idle slot that can take a queued fragment of ``job`` (locked)."""
        for fragment in self._queue:
            if fragment.job is not job:
                continue
            for slot in reversed(self._idle):
                if self._can_take(slot, fragment, stream_job=slot.waiting_for):
                    self._idle.remove(slot)
                    slot.cond.notify()
                    return

    def _spawn(self) -> None:
        slot = Slot(self._lock)
        self._slots.add(slot)
        self._threads.submit(self._slot_main, slot)

    def _notify_all(self) -> None:
        for slot in self._idle:
            slot.cond.notify()
        self._idle.clear()

    def _nobody_else(self, fragment: Fragment) -> bool:
        """Every provider that could run ``fragment`` has already failed it."""
        if not self._closed and len(self._slots) < self.max_workers:
            return False
        return all(s.provider_id is not None and s.provider_id in fragment.failed_on for s in self._slots)

    def _can_take(self, slot: Slot, fragment: Fragment, stream_job: Optional[Job] = None,
                  now: float = 0.0) -> bool:
        job = fragment.job
        if stream_job is not None:
            if job is not stream_job:
                return False
        elif job.running >= job.limit:
            return False
        if fragment.not_before > now and now:
            return False
        if slot.provider_id in fragment.failed_on and not self._nobody_else(fragment):
            return False
        return True

    def take(self, slot: Slot, stream_job: Optional[Job] = None) -> Optional[Fragment]:
        """Block until ``slot`` may run a fragment (of ``stream_job`` only, when given).
        None means: stop (pool closing, slot told to exit, or the stream has no more)."""
        with self._lock:
            while True:
                if slot.dirty:
                    return None
                now = time.monotonic()
                wake_at = None
                for fragment in self._queue:
                    if self._can_take(slot, fragment, stream_job, now):
                        self._queue.remove(fragment)
                        fragment.job.queued -= 1
                        if stream_job is None:
                            fragment.job.running += 1
                            self._running += 1
                            slot.job = fragment.job
                        slot.exit = False  # work arrived while it was being let go: keep it
                        return fragment
                    if fragment.not_before > now and (stream_job is None or fragment.job is stream_job):
                        wake_at = min(wake_at or fragment.not_before, fragment.not_before)
                if stream_job is not None and (stream_job.cancelled or
                                               (stream_job.input_done and stream_job.queued == 0)):
                    return None
                if stream_job is None and (slot.exit or self._closed and not self._queue and not self._running):
                    return None
                slot.waiting_for = stream_job
                self._idle.append(slot)
                slot.cond.wait(None if wake_at is None else max(0.0, wake_at - now))
                if slot in self._idle:
                    self._idle.remove(slot)
                slot.waiting_for = None

    def requeue(self, fragment: Fragment, delay: float) -> None:
        with self._lock:
            fragment.not_before = time.monotonic() + delay if delay > 0 else 0.0
            self._enqueue(fragment, front=True)

    def finished_running(self, job: Job, slot: Slot) -> None:
        with self._lock:
            slot.job = None
            job.running -= 1
            self._running -= 1
            self._changed.notify_all()
            if self._closed and not self._running and not self._queue:
                self._notify_all()
            elif job.queued and job.running == job.limit - 1:
                # The job was at its limit, so its queued fragments woke nobody; a
                # retried one may fit only another slot (found by a regression test).
                # Below the limit the queue already woke whoever could take it.
                self._wake_for(job)

    def stream_input_done(self, job: Job) -> None:
        with self._lock:
            job.input_done = True
            self._notify_all()

    # ------------------------------------------------------------- slot thread
    def _slot_main(self, slot: Slot) -> None:
        try:
            while True:
                session = self._engage(slot)
                if session is None:
                    return
                reason, excluded = self.runner.serve(slot, session, WorkContext(session.info))
                self._release(slot, session, reason, excluded)
                with self._lock:
                    # Work may have arrived while it was letting go: then it engages again,
                    # since no other slot may be left to run that work.
                    if not self._queue or self._closed or self._broken is not None:
                        return
                    slot.exit = False
        except BaseException:  # a bug here must not leave the pool hanging silently
            logger.exception("golem_tasks slot crashed")
        finally:
            with self._lock:
                self._slots.discard(slot)
                if slot in self._idle:
                    self._idle.remove(slot)
                self._changed.notify_all()
                # Work queued while this slot was leaving needs someone to run it.
                if self._queue and not self._closed and self._broken is None and \
                        len(self._slots) < self.max_workers and not any(not s.exit for s in self._slots):
                    self._spawn()

    def _engage(self, slot: Slot) -> Optional[Session]:
        while True:
            with self._lock:
                slot.engaging = True
                slot.session = slot.provider_id = None
                slot.dirty = False
                if slot.exit or self._broken is not None or not self._queue or self._abort.is_set():
                    return None
                exclude = frozenset(self._excluded)
            try:
                session = self.provider.engage(exclude=exclude, abort=self._abort)
            except Exception as exc:
                if self._engage_failed(exc, slot):
                    return None
                continue
            with self._lock:
                self._engage_failures = 0
                slot.session, slot.provider_id = session, session.info.id
            self.emitter.emit(ev.ProviderEngaged(provider_id=session.info.id, provider_name=session.info.name))
            error = self.runner.initialize(session)
            if error is None:
                with self._lock:
                    self._init_failures = 0
                    slot.engaging = False
                return session
            if self._initializer_failed(session, error):
                return None

    def _engage_failed(self, exc: Exception, slot: Slot) -> bool:
        """Count a failed engage(); True when the pool is now broken."""
        with self._lock:
            self._engage_failures += 1
            failures = self._engage_failures
        if self._abort.is_set():
            return True
        if isinstance(exc, BudgetExhausted):
            return self._budget_reached(exc, slot)
        if failures >= ENGAGE_ATTEMPTS or not isinstance(exc, GolemTasksError):
            self.break_pool(BrokenPool(f"could not engage a provider ({failures} attempts): {exc}"), exc)
            return True
        logger.warning("engaging a provider failed (%s), trying again", exc)
        self._abort.wait(self.policy.delay(failures))
        return False

    def _budget_reached(self, exc: BudgetExhausted, slot: Slot) -> bool:
        """No more providers fit in the budget: the engaged ones carry on with the work
        (this slot ends); with none engaged nothing can run, so the pool is broken.

        A slot still engaging counts as engaged: if it fails on the budget too, the last
        slot to leave spawns one more while work is queued, and that one breaks the pool."""
        with self._lock:
            self._engage_failures = 0  # not the provider's fault: retrying cannot help
            others = any(s is not slot and (s.session is not None or s.engaging) for s in self._slots)
            first, self._budget_noted = not self._budget_noted, True
        if not others:
            self.break_pool(BrokenPool(f"no provider can be engaged: {exc}"), exc)
        elif first:
            logger.warning("engaging no more providers, the engaged ones go on: %s", exc)
        return True

    def _initializer_failed(self, session: Session, error: BaseException) -> bool:
        """Release and exclude a provider whose initializer failed (no fragment is
        charged); True when the pool is now broken."""
        self._release_session(session, f"initializer failed: {error}", excluded=True)
        with self._lock:
            self._init_failures += 1
            failures = self._init_failures
        retryable = self.policy.should_retry(error)
        if not retryable or failures >= max(INITIALIZER_ATTEMPTS, self.policy.max_retries + 1):
            detail = "" if retryable else " with an error from its own code"
            self.break_pool(BrokenPool(
                f"the initializer failed on {failures} provider(s){detail}; last error: {error!r}"), error)
            return True
        return False

    def _release(self, slot: Slot, session: Session, reason: str, excluded: bool) -> None:
        with self._lock:
            slot.session = slot.provider_id = None
        self._release_session(session, reason, excluded)

    def _release_session(self, session: Session, reason: str, excluded: bool) -> None:
        if excluded:
            with self._lock:
                self._excluded.add(session.info.id)
        try:
            session.release()
        except Exception:  # releasing must go on for the others
            logger.exception("releasing provider %s failed", session.info.id)
        self.emitter.emit(ev.ProviderReleased(provider_id=session.info.id, provider_name=session.info.name,
                                              reason=reason, excluded=excluded))

    def break_pool(self, error: BrokenPool, cause: Optional[BaseException]) -> None:
        """No provider can run the queued work: fail all of it with ``error``."""
        error.__cause__ = cause
        with self._lock:
            first = self._broken is None
            if first:
                self._broken = error
            dropped = list(self._queue)
            self._queue.clear()
            for fragment in dropped:
                fragment.job.queued -= 1
            self._notify_all()
        if first:
            logger.error("%s", error)
        for fragment in dropped:
            self.runner.fail(fragment, error, provider_id=None)


def _cancel_future(fragment: Fragment, error: BaseException) -> None:
    future = fragment.future
    if not future.cancel() and not future.done():
        try:
            future.set_exception(error)
        except Exception:  # lost a race with another resolver; it already has an outcome
            pass

