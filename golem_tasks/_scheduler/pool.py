"""The pool of engaged providers and the queue of fragments waiting for them.

Each *slot* is a thread that owns at most one engaged session at a time: it engages,
runs the initializer once, takes fragments from the shared queue, runs the finalizer
and releases the provider. So at most ``max_workers`` providers are ever engaged,
and the initializer and finalizer run exactly once per engaged provider.

Engagement follows demand: a slot is started only for queued work that no engaged
provider can take, and a slot still engaging is told to stop (its ``abort`` event)
as soon as that work has gone elsewhere. A paid engagement also waits to sign on its
slot's permit while another one is signed, until the work is known to need it
(:mod:`.pacing`).

The pool is the only owner of its lock: the queue, the slots and the per-job running
counts change only here, under it. Jobs and fragments keep their own state; the pool
calls their methods and nothing below calls the pool.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Set

from .. import events as ev
from ..errors import (BatchCancelled, BrokenPool, BudgetExhausted, EngagementCancelled, GolemTasksError, ProviderLost,
                      StartupTimeout, TaskRejected)
from ..policy import RetryPolicy
from ..providers.base import Provider, Session
from . import attempt, decision, pacing
from .attempt import Outcome, Settings
from .health import ProviderHealth
from .job import Fragment, Job
from .pacing import Pace
from .queue import WorkQueue
from .slot import Copy, Slot

logger = logging.getLogger(__name__)

#: Consecutive engage() failures after which the pool is declared broken.
ENGAGE_ATTEMPTS = 3
#: Consecutive initializer failures (each on a fresh provider) tolerated before the
#: pool is declared broken; max_retries raises it, but a transient setup failure must
#: not break a run that allows no fragment retries.
INITIALIZER_ATTEMPTS = 3
#: Seconds a retried fragment waits for a provider that has not failed it before it
#: may go back to one that has (a market of one must still finish the work).
FALLBACK_AFTER = 10.0


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]


class Pool:
    def __init__(self, provider: Provider, *, max_workers: int, policy: RetryPolicy,
                 initializer: Optional[Callable[..., Any]] = None, finalizer: Optional[Callable[..., Any]] = None,
                 batch_timeout: Optional[float] = None, emitter: ev.Emitter, close_provider: bool = False) -> None:
        self.provider = provider
        self.max_workers = max_workers
        self.policy = policy
        self.emitter = emitter
        self._initializer = initializer
        self._finalizer = finalizer
        self._settings = Settings(batch_timeout=batch_timeout, emitter=emitter)
        self._close_provider = close_provider
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue = WorkQueue()
        self._slots: Set[Slot] = set()
        self._idle: List[Slot] = []
        self._running: Dict[Job, int] = {}
        self._health = ProviderHealth(policy.provider_failure_limit)
        self._closed = False
        self._cancelled = False
        self._provider_closed = False
        self._broken: Optional[BrokenPool] = None
        self._engage_failures = 0
        self._init_failures = 0
        self._budget_noted = False
        #: Running copies of speculative jobs' fragments, the original first.
        self._attempts: Dict[Fragment, List[Copy]] = {}
        #: Jobs still reading their input (see input_started).
        #: ... and how many fragments each will make in all, when its input's length is known.
        self._feeding: Dict[Job, Optional[int]] = {}
        #: Callers waiting on ``_changed`` for running work to end; the hot path
        #: notifies only when there are some.
        self._watchers = 0
        #: True while no slot is engaging (kept by _update_ready), so the hot path can
        #: skip looking for engagements to abort.
        self._all_ready = True
        #: Paid engagements (agreements) are paced by the work left; free ones are not.
        self._paced = provider.paid_engagement
        self._pace = Pace()

    # ------------------------------------------------------------ caller side
    def submit(self, fragment: Fragment) -> None:
        """Queue ``fragment``; on a broken pool its future fails at once with the
        pool's error, so callers report it in place like any other failure."""
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit work after the Golem was shut down")
            broken = self._broken
            if broken is None:
                self._queue.enqueue(fragment)
                self._dispatch(fragment)
                return
        self._settle_failure(fragment, broken, None)

    @property
    def broken(self) -> Optional[BrokenPool]:
        return self._broken

    @property
    def engaged(self) -> int:
        with self._lock:
            return sum(1 for s in self._slots if s.session is not None)

    def set_initializer(self, initializer: Callable[..., Any]) -> None:
        with self._lock:
            if any(s.session is not None for s in self._slots):
                raise RuntimeError("before_each() must be called before any provider is engaged")
            self._initializer = initializer

    def input_started(self, job: Job, total: Optional[int] = None) -> None:
        """``job`` reads its input lazily: until :meth:`input_ended`, a drained queue
        does not mean its work is done, so engagements are not aborted for it.
        ``total`` is the input's length when known: the work left counts what is unread."""
        with self._lock:
            self._feeding[job] = total

    def input_ended(self, job: Job) -> None:
        """No more fragments of ``job`` will be submitted: its streams may end."""
        job.input_ended()
        with self._lock:
            self._feeding.pop(job, None)
            self._wake_streams(job)
            self._abort_surplus()

    def cancel_job(self, job: Job, error: BaseException, wait: float = 5.0) -> None:
        """Stop ``job`` now: drop its queued fragments, kill its running commands, and
        release the providers it leaves idle. Waits up to ``wait`` s for its attempts to end."""
        job.cancel()
        with self._lock:
            self._feeding.pop(job, None)
            dropped = self._queue.drop(job)
            running = [s for s in self._slots if s.job is job]
            for slot in running:
                slot.cancel_running()
            self._wake_streams(job)
            self._abort_surplus()
        for fragment in dropped:
            fragment.abandon(error)
        for slot in running:
            _cancel(slot.session)
        deadline = time.monotonic() + wait
        with self._lock:
            self._watchers += 1
            try:
                while self._running.get(job) and (remaining := deadline - time.monotonic()) > 0:
                    self._changed.wait(remaining)
            finally:
                self._watchers -= 1
            if not self._queue and not self._running:
                for slot in self._slots:
                    slot.told_to_leave()
                self._notify_idle()
                # The caller gets control back with the providers released, not releasing
                # (a slot still engaging was told to stop: it releases what it got, if anything).
                while any((s.session is not None or s.engaging) and s.leave for s in self._slots) and \
                        (remaining := deadline - time.monotonic()) > 0:
                    self._changed.wait(remaining)

    def close(self, *, cancel: bool, wait: bool = True) -> None:
        """Stop accepting work; with ``cancel`` drop and kill everything; then let the
        slots finish the queue and release their providers. With ``wait`` block until
        every slot thread ended; the provider (when the pool owns it) is closed once the
        last slot is gone, whether or not anyone waits for that."""
        with self._lock:
            self._closed = True
            dropped: List[Fragment] = []
            sessions: List[Session] = []
            if cancel:
                self._cancelled = True
                dropped = self._queue.drop()
                for slot in self._slots:
                    slot.told_to_leave()
                    slot.call_off()
                    if slot.session is not None:
                        slot.cancel_running()
                        sessions.append(slot.session)
            self._abort_surplus()
            self._notify_idle()
            close_now = not self._slots
        for fragment in dropped:
            fragment.abandon(BatchCancelled("the Golem was shut down before this fragment ran"))
        for session in sessions:
            _cancel(session)
        if close_now:
            self._close_provider_once()
        if wait:
            # Until no slot is left, not only the ones alive now: a provider lost while
            # the queue is finished puts its work back for a new slot.
            while True:
                with self._lock:
                    threads = [s.thread for s in self._slots
                               if s.thread is not None and s.thread is not threading.current_thread()]
                if not threads:
                    break
                for thread in threads:
                    thread.join()
            self._close_provider_once()

    # ----------------------------------------------------- dispatch (locked)
    def _dispatch(self, fragment: Fragment) -> None:
        """Wake an idle slot that can take ``fragment``, or start one (locked)."""
        now = time.monotonic()
        for slot in reversed(self._idle):
            if self._may_take(slot, fragment, now, stream=slot.waiting_for, ignore_due=True):
                self._idle.remove(slot)
                slot.cond.notify()
                return
        self._spawn_for_demand()

    def _spawn_for_demand(self) -> None:
        if self._cancelled or self._broken is not None:
            return  # closed without cancel, the queue is still to be finished
        if self._budget_noted and self._slots:
            # spend guard hook (spend11): once the budget covers no more providers, the slots
            # alive carry on and no new one engages; when the last ends, one more asks, so
            # that with nothing engaged the budget error breaks the pool instead of slots
            # being spawned and refused in a loop.
            return
        while len(self._slots) < self.max_workers:
            engaging = sum(1 for s in self._slots if s.engaging and not s.abort.is_set())
            if engaging >= self._wanted():
                return
            self._spawn()

    def _wanted(self) -> int:
        """How many engagements the queued work wants (locked): one per fragment no idle
        slot can take, or none when paid engagements would start after the providers
        already running have cleared the queue (see :mod:`.pacing`)."""
        unserved = self._unserved()
        if not unserved or not self._paced or self._reading() or self._attempts:
            return unserved  # while input is read, the work left is unknown
        queued = self._queue.fragments()
        if any(f.failed_on for f in queued):
            return unserved  # a retry wants another provider than the one that failed it
        now = time.monotonic()
        ready = [s for s in self._slots if not s.engaging]
        running_for = max((now - s.running_since for s in ready if s.job is not None), default=0.0)
        return 0 if self._pace.surplus(len(queued), len(ready), running_for) else unserved

    def poll_pacing(self) -> None:
        """Engage again when paced-out work turns out longer than it looked (a fragment
        running past the average). Called by a caller waiting for results."""
        if not self._paced:
            return
        with self._lock:
            if self._queue and len(self._slots) < self.max_workers:
                self._spawn_for_demand()

    def _unserved(self) -> int:
        """Queued fragments that may run now or after their backoff and that no idle
        engaged slot can take (locked)."""
        budget: Dict[Job, int] = {}
        idle = list(self._idle)
        count = 0
        now = time.monotonic()
        for fragment in self._queue.fragments():
            job = fragment.job
            left = budget.get(job)
            if left is None:
                left = job.limit - self._running.get(job, 0)
            if left <= 0:
                continue
            budget[job] = left - 1
            taker = next((s for s in idle
                          if self._may_take(s, fragment, now, stream=s.waiting_for, ignore_due=True)), None)
            if taker is not None:
                idle.remove(taker)
            else:
                count += 1
        return count

    def _abort_surplus(self) -> None:
        """Tell slots still engaging that their provider is not needed (locked)."""
        if self._all_ready:
            return  # the common case, checked without walking the slots
        engaging = [s for s in self._slots if s.engaging and not s.abort.is_set()]
        # A job still reading its input will queue more (a brief empty queue is no
        # reason), and a speculative job may want a provider for a backup copy.
        if engaging and (not (self._reading() or self._attempts) or self._cancelled):
            wanted = 0 if self._cancelled else self._wanted()
            # Let go of the engagements still held before signing first, never one that signs.
            engaging.sort(key=lambda s: s.session is None and not s.permit.allowed())
            for slot in engaging[wanted:]:
                slot.call_off()
        self._review_permits()

    def _reading(self) -> bool:
        """Some job may still queue more work (locked): its input has not ended, and
        its length is unknown or not all of it is queued yet (a consumer busy with its
        first result may not read the input's end for a while)."""
        return any(total is None or job.submitted < total for job, total in self._feeding.items())

    def _review_permits(self) -> None:
        """Decide when paid engagements waiting to sign may sign (locked): one at once
        while no other is signed, the others once the work is known to need them or
        after :data:`.pacing.HOLD` s (see :mod:`.pacing`)."""
        if not self._paced:
            return
        held = [s for s in self._slots if s.engaging and not s.abort.is_set() and not s.permit.allowed()]
        if not held:
            return
        now = time.monotonic()
        signed = any(s.session is not None or s.engaging and not s.abort.is_set() and s.permit.allowed()
                     for s in self._slots)
        queued = self._queue.fragments()
        # A retry or a backup copy wants another provider than the one it has.
        elsewhere = bool(self._attempts) or any(f.failed_on for f in queued)
        ready = [s for s in self._slots if not s.engaging]
        ages = [now - s.running_since for s in ready if s.job is not None]
        # Input still unread is work left too (at least none, when its length is unknown).
        unread = sum(max(total - job.submitted, 0) for job, total in self._feeding.items() if total is not None)
        needed = self._pace.needed_in(len(queued) + unread, len(ready), max(ages) if ages else None)
        for slot in held:
            if not signed or elsewhere:
                slot.permit.allow_at(now)
                signed = True
                continue
            hold_end = slot.engaging_since + pacing.HOLD
            slot.permit.allow_at(hold_end if needed is None else min(hold_end, now + needed))

    def _update_ready(self) -> None:
        self._all_ready = not any(s.engaging for s in self._slots)

    def _spawn(self) -> None:
        slot = Slot(self._lock)
        thread = threading.Thread(target=self._slot_main, args=(slot,), name="golem_tasks-slot", daemon=True)
        slot.thread = thread
        self._slots.add(slot)
        self._all_ready = False
        thread.start()

    def _notify_idle(self) -> None:
        for slot in self._idle:
            slot.cond.notify()
        self._idle.clear()

    def _wake_streams(self, job: Job) -> None:
        for slot in [s for s in self._idle if s.waiting_for is job]:
            self._idle.remove(slot)
            slot.cond.notify()

    def _nobody_else(self, fragment: Fragment) -> bool:
        """Every provider that could run ``fragment`` has already failed it (locked)."""
        if not self._closed and len(self._slots) < self.max_workers:
            return False
        return all(s.provider_id is not None and s.provider_id in fragment.failed_on for s in self._slots)

    def _may_take(self, slot: Slot, fragment: Fragment, now: float, stream: Optional[Job] = None,
                  ignore_due: bool = False, due: float = 0.0) -> bool:
        job = fragment.job
        if stream is not None:
            if job is not stream:
                return False
        elif self._running.get(job, 0) >= job.limit:
            return False
        if slot.provider_id in fragment.failed_on and not self._nobody_else(fragment):
            # A retry goes to another provider while one may come, but not forever.
            return not ignore_due and bool(due) and now >= due + FALLBACK_AFTER
        return True

    # ------------------------------------------------------- slot side (takes)
    def _take(self, slot: Slot) -> Optional[Fragment]:
        """Block until ``slot`` may run a fragment; None means: release the provider."""
        with self._lock:
            while True:
                if slot.dirty or self._cancelled:
                    return None
                now = time.monotonic()
                fragment = self._queue.take(lambda f, due: self._may_take(slot, f, now, due=due), now)
                if fragment is None and not slot.leave:
                    fragment = self._straggler(slot, now)
                if fragment is not None:
                    self._running[fragment.job] = self._running.get(fragment.job, 0) + 1
                    slot.running(fragment.job)
                    if fragment.job.speculation is not None:
                        self._attempts.setdefault(fragment, []).append(Copy(slot, now))
                    self._abort_surplus()
                    return fragment
                if slot.leave or (self._closed and not self._queue and not self._running):
                    return None
                self._wait_idle(slot, None, now)

    def _take_for_stream(self, slot: Slot, job: Job) -> Optional[Fragment]:
        """The next fragment of stream ``job`` for ``slot``; None ends the stream."""
        with self._lock:
            while True:
                if slot.dirty or job.cancelled or self._cancelled:
                    return None
                now = time.monotonic()
                fragment = self._queue.take(
                    lambda f, due: f.job is job and self._may_take(slot, f, now, stream=job, due=due), now)
                if fragment is not None:
                    self._abort_surplus()
                    return fragment
                if job.input_done and not self._queue.queued(job):
                    return None
                self._wait_idle(slot, job, now)

    def _straggler(self, slot: Slot, now: float) -> Optional[Fragment]:
        """A running fragment that deserves a backup copy on ``slot`` (locked)."""
        if not self._attempts or self._closed:
            return None
        for fragment, copies in self._attempts.items():
            job = fragment.job
            if len(copies) != 1 or copies[0].failed or job.cancelled or fragment.settled:
                continue  # (a delivered fragment's losing copy, or a failed one, may still be winding down)
            original, started = copies[0].slot, copies[0].started
            if original.provider_id == slot.provider_id or slot.provider_id in fragment.failed_on:
                continue
            after = job.straggler_after()
            if after is not None and now - started >= after:
                job.backup_started()
                if self.emitter.wants(ev.BackupStarted):
                    self.emitter.emit(ev.BackupStarted(job_id=job.id, index=fragment.index,
                                                       provider_id=slot.provider_id, running_for=now - started))
                logger.info("fragment %s of job %s has run %.2f s (threshold %.2f s): a backup copy starts",
                            fragment.index, job.id, now - started, after)
                return fragment
        return None

    def poll_stragglers(self) -> None:
        """Engage one more provider (within ``max_workers``) for a backup copy when a
        speculative fragment straggles and no provider is idle or engaging to take it.
        Called by a caller waiting for results; idle slots find stragglers themselves."""
        with self._lock:
            if not self._attempts or self._closed or self._broken is not None or \
                    len(self._slots) >= self.max_workers or any(s.engaging for s in self._slots) or \
                    any(s.waiting_for is None for s in self._idle):
                return
            now = time.monotonic()
            for fragment, copies in self._attempts.items():
                after = fragment.job.straggler_after() if len(copies) == 1 and not copies[0].failed else None
                if after is not None and not fragment.settled and now - copies[0].started >= after:
                    self._spawn()
                    return

    def _next_straggler_check(self, now: float) -> Optional[float]:
        """When a running speculative fragment crosses its threshold (locked)."""
        times = []
        for fragment, copies in self._attempts.items():
            after = (fragment.job.straggler_after()
                     if len(copies) == 1 and not copies[0].failed and not fragment.settled else None)
            if after is not None:
                times.append(copies[0].started + after)
        return max(now, min(times)) if times else None

    def _wait_idle(self, slot: Slot, stream: Optional[Job], now: float) -> None:
        due = self._queue.next_due(now, stream)
        if due is None and self._queue:
            # Work this slot may not take yet (a retry that failed here): look again
            # once it may fall back to this provider.
            due = now + FALLBACK_AFTER
        if stream is None and self._attempts:
            check = self._next_straggler_check(now)
            if check is not None:
                due = check if due is None else min(due, check)
        slot.waiting_for = stream
        self._idle.append(slot)
        slot.cond.wait(None if due is None else max(0.0, due - now))
        if slot in self._idle:
            self._idle.remove(slot)
        slot.waiting_for = None

    def _finished_running(self, slot: Slot, job: Job, fragment: Fragment) -> None:
        with self._lock:
            copies = self._attempts.get(fragment)
            if copies is not None:
                copies[:] = [c for c in copies if c.slot is not slot]
                if not copies:
                    del self._attempts[fragment]
            count = self._running[job] - 1
            if count:
                self._running[job] = count
            else:
                del self._running[job]
            slot.running(None)
            if not self._all_ready:
                self._review_permits()  # a fragment's duration is known now
            if self._watchers:
                self._changed.notify_all()
            if self._closed and not self._running and not self._queue:
                self._notify_idle()
            elif self._queue.queued(job) and count == job.limit - 1:
                # The job was at its limit, so its queued fragments woke nobody.
                for fragment in self._queue.fragments():
                    if fragment.job is job:
                        self._dispatch(fragment)
                        break
            if self._paced and self._queue and len(self._slots) < self.max_workers:
                self._spawn_for_demand()  # a new duration may make the work left worth one more

    # ------------------------------------------------------------ slot thread
    def _slot_main(self, slot: Slot) -> None:
        in_hand: List[Fragment] = []
        try:
            while True:
                session = self._engage(slot)
                if session is None:
                    return
                reason, excluded = self._serve(slot, session, in_hand)
                if reason != "provider lost" and session.usable and not slot.dirty and not self._cancelled:
                    self._finalize(session)
                self._release(slot, session, reason, excluded)
                # Work that still needs a provider gets a fresh slot from the finally below.
                return
        except BaseException as exc:  # a bug here must break the pool, never hang it
            logger.exception("golem_tasks slot crashed")
            error = BrokenPool(f"a scheduler thread crashed: {exc!r}; the pending work was failed")
            for fragment in in_hand:
                self._settle_failure(fragment, error, slot.provider_id)
            self._break(error, exc)
            if slot.session is not None:
                self._release(slot, slot.session, "scheduler thread crashed", False)
        finally:
            with self._lock:
                self._slots.discard(slot)
                self._update_ready()
                if slot in self._idle:
                    self._idle.remove(slot)
                self._changed.notify_all()
                self._spawn_for_demand()  # work queued while this slot was leaving needs someone
                self._review_permits()  # it may have been the one signed
                last = not self._slots and self._closed
            if last:
                self._close_provider_once()

    def _engage(self, slot: Slot) -> Optional[Session]:
        while True:
            with self._lock:
                slot.start_engaging()
                self._all_ready = False
                if slot.abort.is_set() or self._broken is not None or self._cancelled or \
                        (self._closed and not self._queue):
                    return None
                exclude = self._health.unavailable(time.monotonic())
                self._review_permits()
            try:
                # Only a paid backend waits on a permit (and older free ones take none).
                paid = {"permit": slot.permit} if self._paced else {}
                session = self.provider.engage(exclude=exclude, abort=slot.abort, **paid)
            except Exception as exc:
                if slot.abort.is_set() or isinstance(exc, EngagementCancelled):
                    return None  # not wanted any more: not a failure
                if self._engage_failed(exc, slot):
                    return None
                continue
            with self._lock:
                self._engage_failures = 0
                slot.engaged(session)
                unwanted = self._cancelled or slot.abort.is_set() and not self._unserved() and not self._reading() \
                    and not self._attempts
                if slot.abort.is_set() and not unwanted:
                    slot.abort = threading.Event()  # work came back meanwhile: it is wanted after all
            self.emitter.emit(ev.ProviderEngaged(provider_id=session.info.id, provider_name=session.info.name))
            if unwanted:
                self._release(slot, session, "no work left for it", False)
                return None
            error = self._initialize(session)
            if error is None:
                with self._lock:
                    self._init_failures = 0
                    self._pace.engaged(slot.engaging_time(time.monotonic()))
                    slot.ready()
                    self._update_ready()
                    self._review_permits()  # an engagement time is known now
                return session
            if self._initializer_failed(slot, session, error):
                return None

    def _initialize(self, session: Session) -> Optional[BaseException]:
        if self._initializer is None:
            return None
        try:
            attempt.initialize(session, self._initializer, self._settings)
        except Exception as exc:  # any failure, even the initializer's own bug, is reported
            if self.emitter.wants(ev.InitializerFailed):
                self.emitter.emit(ev.InitializerFailed(provider_id=session.info.id, provider_name=session.info.name,
                                                       reason=_reason(exc)))
            logger.warning("initializer failed on provider %s: %s", session.info.name, exc)
            return exc
        return None

    def _finalize(self, session: Session) -> None:
        if self._finalizer is None:
            return
        try:
            attempt.initialize(session, self._finalizer, self._settings)
        except Exception as exc:  # the work is done; a failed clean-up is reported, not retried
            logger.warning("finalizer failed on provider %s: %s", session.info.name, exc)

    def _serve(self, slot: Slot, session: Session, in_hand: List[Fragment]) -> "tuple[str, bool]":
        """Run fragments on ``session`` until told to stop. Returns why it stopped and
        whether the provider must not be engaged again in this run."""
        while True:
            fragment = self._take(slot)
            if fragment is None:
                return ("work cancelled mid-batch" if slot.dirty else "no more work"), False
            job = fragment.job
            in_hand.append(fragment)
            try:
                if job.stream:
                    outcomes = self._run_stream(slot, session, fragment, in_hand)
                else:
                    outcomes = [attempt.run_fragment(session, fragment, self._settings)]
                verdict = None
                for outcome in outcomes:
                    verdict = self._settle(outcome, slot) or verdict
                in_hand.clear()  # settled; on a crash the caller fails what is left in hand
            finally:
                self._finished_running(slot, job, fragment)
            if verdict is not None:
                return verdict
            if not session.usable:  # stopped by the backend (timeout, budget): no attempt wasted
                self._cool_down(session.info.id)
                return "session no longer usable", False
            if slot.dirty:
                return "work cancelled mid-batch", False

    def _run_stream(self, slot: Slot, session: Session, first: Fragment, in_hand: List[Fragment]) -> List[Outcome]:
        job = first.job
        stream = attempt.Stream(session, job, self._settings)

        def fragments() -> Iterator[Fragment]:
            fragment: Optional[Fragment] = first
            while fragment is not None:
                yield fragment
                for outcome in stream.drain():  # the worker asks for its next task: settle the last
                    self._settle(outcome, slot)
                fragment = self._take_for_stream(slot, job)
                if fragment is not None:
                    in_hand.append(fragment)
        return stream.run(fragments())

    # -------------------------------------------------------------- outcomes
    def _settle(self, outcome: Outcome, slot: Slot) -> Optional["tuple[str, bool]"]:
        """Apply the decision for ``outcome``. Returns (reason, excluded) when the
        provider must be released."""
        fragment, info = outcome.fragment, outcome.provider
        job = fragment.job
        if outcome.skipped:
            return None
        backup = False
        if job.speculation is not None:
            with self._lock:
                copies = self._attempts.get(fragment, [])
                backup = bool(copies) and copies[0].slot is not slot
                another_runs = any(c.slot is not slot and not c.failed for c in copies)
                if outcome.error is not None or outcome.rejection is not None:
                    # This copy is over whatever is decided: it stays on the books until
                    # its slot gets to _finished_running, and a retry's copy started
                    # before then must not count it as running (it would leave the
                    # decision to it), nor may it be taken for a straggler.
                    for copy in copies:
                        if copy.slot is slot:
                            copy.fail()
                if another_runs and outcome.error is not None and not fragment.settled:
                    # Another copy still runs and may succeed: only remember why this one
                    # failed. Under the lock that read the copies: of two copies failing
                    # together, the second then sees this one failed and decides for both.
                    fragment.failed_attempt(outcome.error, info.id)
                    return None
        if outcome.error is None and outcome.rejection is None:
            self._provider_succeeded(info.id)
            if not fragment.claim():
                return None  # the other copy of a speculated fragment won, or the job was cancelled
            job.delivered(info.id, info.name, outcome.elapsed, backup=backup)
            # The event goes out before the result is handed over: whoever sees the result
            # (and maybe ends the job) has seen its FragmentFinished first.
            if self.emitter.wants(ev.FragmentFinished):
                self.emitter.emit(ev.FragmentFinished(job_id=job.id, index=fragment.index, provider_id=info.id,
                                                      attempt=fragment.attempt, duration=outcome.elapsed,
                                                      backup=backup))
            if self._paced:
                with self._lock:
                    self._pace.delivered(outcome.elapsed)
            fragment.resolve(outcome.value)
            self._cancel_copies(fragment, slot)
            if job.speculation is not None:
                self._recheck_stragglers()
            return None
        if fragment.settled:
            return None  # a copy that lost the race (and was cancelled): nothing to decide
        if outcome.rejection is not None:
            reason, retry = outcome.rejection
            rejection = TaskRejected(f"task rejected: {reason}", item=fragment.item, index=fragment.index)
            fragment.failed_attempt(rejection, info.id if retry else None)
            choice = decision.after_rejection(rejection, retry, causes=fragment.causes, policy=self.policy,
                                              index=fragment.index, item=fragment.item)
            cause: BaseException = rejection
        else:
            assert outcome.error is not None
            cause = outcome.error
            cancelled = job.cancelled or isinstance(cause, BatchCancelled)
            if not cancelled:
                fragment.failed_attempt(cause, info.id)
            choice = decision.after_error(cause, causes=fragment.causes, policy=self.policy, cancelled=cancelled,
                                          index=fragment.index, item=fragment.item)
        self._apply(fragment, choice, info.id, info.name, outcome.elapsed)
        if isinstance(cause, ProviderLost):
            self._cool_down(info.id)
            return "provider lost", self._provider_failed(info.id) is not None
        if decision.provider_at_fault(cause, self.policy):
            in_a_row = self._provider_failed(info.id)
            if in_a_row is not None:
                return f"failed {in_a_row} attempts in a row", True
        return None

    def _recheck_stragglers(self) -> None:
        """A new duration moved the straggler threshold: idle slots look again."""
        with self._lock:
            if self._attempts:
                for slot in [s for s in self._idle if s.waiting_for is None]:
                    self._idle.remove(slot)
                    slot.cond.notify()

    def _cancel_copies(self, fragment: Fragment, winner: Slot) -> None:
        """Stop every other copy of ``fragment``, which ``winner`` just delivered.

        The copies are read from the books now, under the lock: a copy that ended by
        itself meanwhile has left them (before its slot takes other work), so its slot,
        which may run the next fragment by now, is left alone."""
        sessions = []
        with self._lock:
            for copy in self._attempts.get(fragment, ()):
                slot = copy.slot
                if slot is not winner and not copy.failed and slot.session is not None:
                    slot.cancel_running()
                    sessions.append(slot.session)
        for session in sessions:
            _cancel(session)

    def _apply(self, fragment: Fragment, choice: decision.Decision, provider_id: str, name: str,
               elapsed: float) -> None:
        job = fragment.job
        if isinstance(choice, decision.Retry):
            job.retrying(provider_id, name, elapsed)
            if self.emitter.wants(ev.FragmentRetried):
                self.emitter.emit(ev.FragmentRetried(job_id=job.id, index=fragment.index, provider_id=provider_id,
                                                     attempt=len(fragment.causes), reason=_reason(choice.cause),
                                                     delay=choice.delay))
            logger.info("fragment %s of job %s failed on %s (%s); retrying in %.2f s",
                        fragment.index, job.id, name, _reason(choice.cause), choice.delay)
            broken: Optional[BrokenPool] = None
            with self._lock:
                if job.cancelled or self._cancelled:
                    requeued = False
                elif self._broken is not None:
                    # The pool broke while this attempt ran: its queue was failed, and
                    # no slot would come for a retry.
                    requeued, broken = False, self._broken
                else:
                    due = time.monotonic() + choice.delay if choice.delay > 0 else 0.0
                    self._queue.requeue(fragment, due)
                    self._dispatch(fragment)
                    requeued = True
            if broken is not None:
                self._settle_failure(fragment, broken, None)
            elif not requeued:
                fragment.abandon(BatchCancelled("the job was cancelled before this fragment could be retried"))
                job.failed_for_good(None, counted=False)
            return
        if isinstance(choice, decision.Fail):
            job.busy(provider_id, name, elapsed)
            self._settle_failure(fragment, choice.error, provider_id, counted=choice.counted)

    def _settle_failure(self, fragment: Fragment, error: BaseException, provider_id: Optional[str],
                        counted: bool = True) -> None:
        job = fragment.job
        if not fragment.claim():
            return
        job.failed_for_good(provider_id, counted)
        if counted and self.emitter.wants(ev.FragmentFailed):
            self.emitter.emit(ev.FragmentFailed(job_id=job.id, index=fragment.index, provider_id=provider_id,
                                                attempts=max(1, len(fragment.causes)), reason=_reason(error)))
        fragment.reject(error)

    # ----------------------------------------------------- provider records
    def _provider_succeeded(self, provider_id: str) -> None:
        if self._health.failing(provider_id):
            with self._lock:
                self._health.succeeded(provider_id)

    def _provider_failed(self, provider_id: str) -> Optional[int]:
        """Count a failed attempt; the failures in a row when that puts the provider
        over ``provider_failure_limit`` (it must be excluded), else None."""
        with self._lock:
            in_a_row = self._health.failed(provider_id)
            return in_a_row if self._health.over_limit(provider_id) else None

    def _cool_down(self, provider_id: str) -> None:
        with self._lock:
            self._health.rest(provider_id, time.monotonic())

    def _engage_failed(self, exc: Exception, slot: Slot) -> bool:
        """Count a failed engage(); True when the slot must stop."""
        with self._lock:
            self._engage_failures += 1
            failures = self._engage_failures
        if isinstance(exc, BudgetExhausted):
            return self._budget_reached(exc, slot)
        if failures >= ENGAGE_ATTEMPTS or not isinstance(exc, GolemTasksError) or isinstance(exc, StartupTimeout):
            # A startup timeout already waited its time and says why: asking again meets the same market.
            attempts = "" if isinstance(exc, StartupTimeout) else f" ({failures} attempts)"
            self._break(BrokenPool(f"could not engage a provider{attempts}: {exc}"), exc)
            return True
        logger.warning("engaging a provider failed (%s), trying again", exc)
        slot.abort.wait(self.policy.delay(failures))
        return False

    def _budget_reached(self, exc: BudgetExhausted, slot: Slot) -> bool:
        """No more providers fit in the budget: the engaged ones carry on with the work
        (this slot ends); with none engaged nothing can run, so the pool is broken."""
        with self._lock:
            self._engage_failures = 0  # not the provider's fault: retrying cannot help
            others = any(s is not slot and (s.session is not None or s.engaging) for s in self._slots)
            first, self._budget_noted = not self._budget_noted, True
        if not others:
            self._break(BrokenPool(f"no provider can be engaged: {exc}"), exc)
        elif first:
            logger.warning("engaging no more providers, the engaged ones go on: %s", exc)
        return True

    def _initializer_failed(self, slot: Slot, session: Session, error: BaseException) -> bool:
        """Release and exclude a provider whose initializer failed (no fragment is
        charged); True when the pool is now broken."""
        self._release(slot, session, f"initializer failed: {error}", True)
        with self._lock:
            self._init_failures += 1
            failures = self._init_failures
        retryable = self.policy.should_retry(error)
        if not retryable or failures >= max(INITIALIZER_ATTEMPTS, self.policy.max_retries + 1):
            detail = "" if retryable else " with an error from its own code"
            self._break(BrokenPool(
                f"the initializer failed on {failures} provider(s){detail}; last error: {error!r}"), error)
            return True
        return False

    def _release(self, slot: Slot, session: Session, reason: str, excluded: bool) -> None:
        if excluded:
            with self._lock:
                self._health.exclude(session.info.id)
        try:
            session.release()
        except Exception:  # releasing must go on for the others
            logger.exception("releasing provider %s failed", session.info.name)
        with self._lock:
            slot.released()
            self._changed.notify_all()
        self.emitter.emit(ev.ProviderReleased(provider_id=session.info.id, provider_name=session.info.name,
                                              reason=reason, excluded=excluded))

    def _break(self, error: BrokenPool, cause: Optional[BaseException]) -> None:
        """No provider can run the queued work: fail all of it with ``error``."""
        error.__cause__ = cause
        with self._lock:
            first = self._broken is None
            if first:
                self._broken = error
            dropped = self._queue.drop()
            for slot in self._slots:
                if slot.engaging:
                    slot.call_off()
            self._notify_idle()
        if first:
            logger.error("%s", error)
        for fragment in dropped:
            self._settle_failure(fragment, error, None)

    def _close_provider_once(self) -> None:
        with self._lock:
            if not self._close_provider or self._provider_closed:
                return
            self._provider_closed = True
        try:
            self.provider.close()
        except Exception:  # the work is over; a failed close is reported, not raised in a thread
            logger.exception("closing the provider failed")


def _cancel(session: Optional[Session]) -> None:
    if session is None:
        return
    try:
        session.cancel()
    except Exception:  # cancelling the others must go on
        logger.exception("cancelling provider %s failed", session.info.name)
