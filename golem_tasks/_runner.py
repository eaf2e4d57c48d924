"""Runs fragments on one engaged session and decides what each failure means.

The pool decides *where* a fragment runs; this module decides what happens to it
afterwards: result delivered, retried elsewhere after a backoff, or failed for good.
"""

from __future__ import annotations

import enum
import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Tuple

from . import _driver, _output
from . import events as ev
from ._job import Fragment, Job
from .batch import Batch
from .commands import CommandResult
from .context import WorkContext
from .errors import (
    BatchCancelled,
    BatchTimeoutError,
    CommandExecutionError,
    FragmentFailed,
    FragmentTimeoutError,
    GolemTasksError,
    ProviderError,
    ProviderLost,
    TaskRejected,
    WorkerError,
)
from .policy import INFRASTRUCTURE_ERRORS
from .providers.base import Session

if TYPE_CHECKING:  # pragma: no cover
    from ._pool import Pool, Slot

logger = logging.getLogger(__name__)


class Outcome(enum.Enum):
    OK = "ok"
    USER_ERROR = "user error"  # the worker's own code failed: not the provider's fault
    INFRA_ERROR = "infrastructure error"
    LOST = "provider lost"
    SKIPPED = "skipped"  # cancelled before it started


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]


class Runner:
    def __init__(self, pool: "Pool", *, initializer: Optional[Callable[..., Any]],
                 batch_timeout: Optional[float]) -> None:
        self.pool = pool
        self.initializer = initializer
        self.batch_timeout = batch_timeout
        self.emit = pool.emitter.emit
        self.emitter = pool.emitter

    # ----------------------------------------------------------- one session
    def serve(self, slot: "Slot", session: Session, ctx: WorkContext) -> Tuple[str, bool]:
        """Run fragments on ``session`` until told to stop. Returns why it stopped and
        whether the provider must not be engaged again."""
        limit = self.pool.policy.provider_failure_limit
        failures = 0
        while True:
            fragment = self.pool.take(slot)
            if fragment is None:
                return ("work cancelled mid-batch" if slot.dirty else "no more work"), False
            job = fragment.job
            try:
                if job.stream:
                    outcome = self._run_stream(slot, session, ctx, fragment)
                else:
                    outcome = self._run_one(session, ctx, fragment)
            finally:
                self.pool.finished_running(job, slot)
            if outcome is Outcome.LOST:
                return "provider lost", True
            if not session.usable:  # stopped by the backend (timeout, budget): no retry wasted
                return "session no longer usable", True
            if outcome is Outcome.INFRA_ERROR:
                failures += 1
                if limit and failures >= limit:
                    return f"failed {failures} attempts in a row", True
            elif outcome is Outcome.OK:
                failures = 0
            if slot.dirty:
                return "work cancelled mid-batch", False

    def initialize(self, session: Session) -> Optional[BaseException]:
        """Run the initializer on a newly engaged session; the error, or None."""
        if self.initializer is None:
            return None
        try:
            gen = _driver.start(self.initializer, WorkContext(session.info))
            _driver.drive(gen, self._executor(session, None, lambda: None))
        except BaseException as exc:  # any failure, even the initializer's own bug, is reported
            if self.emitter.wants(ev.InitializerFailed):
                self.emit(ev.InitializerFailed(provider_id=session.info.id, provider_name=session.info.name,
                                               reason=_reason(exc)))
            logger.warning("initializer failed on provider %s: %s", session.info.id, exc)
            return exc
        return None

    def cancel_session(self, session: Optional[Session]) -> None:
        if session is None:
            return
        try:
            session.cancel()
        except Exception:  # cancelling the others must go on
            logger.exception("cancelling provider %s failed", session.info.id)

    # ------------------------------------------------------------ fragments
    def _run_one(self, session: Session, ctx: WorkContext, fragment: Fragment) -> Outcome:
        job = fragment.job
        if not fragment.causes and not fragment.future.set_running_or_notify_cancel():
            return Outcome.SKIPPED
        started = self._start(fragment, session)
        try:
            gen = _driver.start(job.worker, ctx, *fragment.args)
            value = _driver.drive(gen, self._executor(session, job, lambda: fragment.deadline, fragment.index))
        except BaseException as exc:
            return self._attempt_failed(fragment, exc, session, started)
        self.succeed(fragment, value, session.info, started)
        return Outcome.OK

    def _start(self, fragment: Fragment, session: Session) -> float:
        job = fragment.job
        started = time.monotonic()
        fragment.deadline = started + job.fragment_timeout if job.fragment_timeout else None
        if self.emitter.wants(ev.FragmentStarted):
            self.emit(ev.FragmentStarted(job_id=job.id, index=fragment.index, provider_id=session.info.id,
                                         attempt=fragment.attempt))
        return started

    def _run_stream(self, slot: "Slot", session: Session, ctx: WorkContext, first: Fragment) -> Outcome:
        """An ``execute_tasks`` worker: one generator consumes many tasks on this session."""
        job = first.job
        held: Dict[int, Tuple[Fragment, float]] = {}

        def settle(fragment: Fragment) -> Optional[float]:
            entry = held.pop(id(fragment), None)
            return None if entry is None else entry[1]

        def accept(fragment: Fragment, value: Any) -> None:
            started = settle(fragment)
            if started is not None:
                self.succeed(fragment, value, session.info, started)

        def reject(fragment: Fragment, reason: str, retry: bool) -> None:
            started = settle(fragment)
            if started is not None:
                self._rejected(fragment, reason, retry, session, started)

        def tasks() -> Iterator[Any]:
            fragment: Optional[Fragment] = first
            while fragment is not None:
                if fragment.causes or fragment.future.set_running_or_notify_cancel():
                    held[id(fragment)] = (fragment, self._start(fragment, session))
                    fragment.task._bind(accept=lambda v, f=fragment: accept(f, v),
                                        reject=lambda r, retry, f=fragment: reject(f, r, retry))
                    yield fragment.task
                fragment = self.pool.take(slot, stream_job=job)

        def deadline() -> Optional[float]:
            deadlines = [f.deadline for f, _ in held.values() if f.deadline is not None]
            return min(deadlines) if deadlines else None

        try:
            gen = _driver.start(job.worker, ctx, tasks())
            _driver.drive(gen, self._executor(session, job, deadline))
        except BaseException as exc:
            outcomes = [self._attempt_failed(f, exc, session, s) for f, s in list(held.values())]
            return _worst(outcomes) if outcomes else _classify(exc)
        for fragment, started in list(held.values()):
            settle(fragment)
            error = WorkerError("the worker finished without calling accept_result() or "
                                "reject_result() on this task")
            self._attempt_failed(fragment, error, session, started)
        return Outcome.OK

    def _reporter(self, session: Session, job: Optional[Job],
                  fragment_index: Optional[int]) -> Callable[[int, str, str], None]:
        """Emits a ``CommandOutput`` for each chunk of live output."""
        job_id, provider_id = (job.id if job is not None else None), session.info.id

        def report(command_index: int, stream: str, text: str) -> None:
            self.emit(ev.CommandOutput(job_id=job_id, index=fragment_index, provider_id=provider_id,
                                       command_index=command_index, stream=stream, text=text))
        return report

    def _executor(self, session: Session, job: Optional[Job], deadline_of: Callable[[], Optional[float]],
                  fragment_index: Optional[int] = None) -> Callable[[Batch], List[CommandResult]]:
        def execute(batch: Batch) -> List[CommandResult]:
            if job is not None and job.cancelled:
                raise BatchCancelled("the job was cancelled", provider=session.info.id)
            commands = batch.commands
            if not commands:
                return []
            timeout = batch.timeout if batch.timeout is not None else self.batch_timeout
            deadline, binding = deadline_of(), False
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FragmentTimeoutError(f"the fragment ran past its {_limit(job)} s timeout")
                if timeout is None or remaining < timeout:
                    timeout, binding = remaining, True
            teed = commands
            if self.emitter.wants(ev.CommandOutput):
                teed = tuple(_output.tee(commands, self._reporter(session, job, fragment_index)))
            try:
                results = session.execute(teed, timeout=timeout)
                return results if teed is commands else _output.restore(results, commands)
            except CommandExecutionError as exc:
                if teed is not commands:
                    _output.restore_error(exc, commands)
                raise
            except BatchTimeoutError as exc:
                if binding:
                    raise FragmentTimeoutError(
                        f"the fragment ran past its {_limit(job)} s timeout; its command was killed"
                    ) from exc
                raise
            except GolemTasksError:
                raise
            except Exception as exc:  # a backend bug must still look like a provider failure
                raise ProviderError(f"provider {session.info.id} failed: {exc!r}",
                                    provider=session.info.id) from exc
        return execute

    # ------------------------------------------------------------- outcomes
    def succeed(self, fragment: Fragment, value: Any, info: Any, started: float) -> None:
        job = fragment.job
        elapsed = time.monotonic() - started
        with self.pool._lock:
            job.done += 1
            tally = job.tally(info.id, info.name)
            tally.done += 1
            tally.busy += elapsed
        if not fragment.future.done():
            fragment.future.set_result(value)
        if self.emitter.wants(ev.FragmentFinished):
            self.emit(ev.FragmentFinished(job_id=job.id, index=fragment.index, provider_id=info.id,
                                          attempt=fragment.attempt, duration=elapsed))

    def _attempt_failed(self, fragment: Fragment, exc: BaseException, session: Session,
                        started: float) -> Outcome:
        job, info, policy = fragment.job, session.info, self.pool.policy
        with self.pool._lock:
            job.tally(info.id, info.name).busy += time.monotonic() - started
        if job.cancelled or isinstance(exc, BatchCancelled):
            self.fail(fragment, exc if isinstance(exc, BatchCancelled) else BatchCancelled(str(exc)), None,
                      quiet=True)
            return Outcome.SKIPPED
        retryable = policy.should_retry(exc)
        fragment.causes.append(exc)
        fragment.failed_on.add(info.id)
        if retryable and len(fragment.causes) <= policy.max_retries:
            self._retry(fragment, exc, info.id)
        elif retryable:
            error = FragmentFailed(f"fragment {fragment.index} failed on every one of its "
                                   f"{len(fragment.causes)} attempts", item=fragment.item,
                                   index=fragment.index, attempts=fragment.causes)
            error.__cause__ = exc
            self.fail(fragment, error, info.id)
        else:
            self.fail(fragment, exc, info.id)
        return _classify(exc)

    def _retry(self, fragment: Fragment, exc: BaseException, provider_id: str) -> None:
        delay = self.pool.policy.delay(len(fragment.causes))
        with self.pool._lock:
            fragment.job.retried += 1
        if self.emitter.wants(ev.FragmentRetried):
            self.emit(ev.FragmentRetried(job_id=fragment.job.id, index=fragment.index, provider_id=provider_id,
                                         attempt=len(fragment.causes), reason=_reason(exc), delay=delay))
        logger.info("fragment %s of job %s failed on %s (%s); retrying in %.2f s",
                    fragment.index, fragment.job.id, provider_id, _reason(exc), delay)
        self.pool.requeue(fragment, delay)

    def _rejected(self, fragment: Fragment, reason: str, retry: bool, session: Session, started: float) -> None:
        cause = TaskRejected(f"task rejected: {reason}", item=fragment.item, index=fragment.index)
        if not retry:
            cause.attempts = list(fragment.causes)  # earlier attempts; this one is the error itself
            fragment.causes.append(cause)
            self.fail(fragment, cause, session.info.id)
            return
        with self.pool._lock:
            fragment.job.tally(session.info.id, session.info.name).busy += time.monotonic() - started
        fragment.causes.append(cause)
        fragment.failed_on.add(session.info.id)
        if len(fragment.causes) <= self.pool.policy.max_retries:
            self._retry(fragment, cause, session.info.id)
        else:
            self.fail(fragment, FragmentFailed(f"task {fragment.index} was rejected on every one of its "
                                               f"{len(fragment.causes)} attempts", item=fragment.item,
                                               index=fragment.index, attempts=fragment.causes),
                      session.info.id)

    def fail(self, fragment: Fragment, error: BaseException, provider_id: Optional[str],
             quiet: bool = False) -> None:
        job = fragment.job
        with self.pool._lock:
            job.failed += 0 if quiet else 1
            if provider_id is not None and provider_id in job.tallies:
                job.tallies[provider_id].failed += 1
        if fragment.task is not None:
            fragment.task._failed(error)
        future = fragment.future
        if not future.done():
            try:
                future.set_exception(error)
            except Exception:  # resolved meanwhile by a cancel; keep that outcome
                pass
        if not quiet and self.emitter.wants(ev.FragmentFailed):
            self.emit(ev.FragmentFailed(job_id=job.id, index=fragment.index, provider_id=provider_id,
                                        attempts=max(1, len(fragment.causes)), reason=_reason(error)))


def _limit(job: Optional[Job]) -> str:
    timeout = job.fragment_timeout if job is not None else None
    return f"{timeout:g}" if timeout is not None else "?"


def _classify(exc: BaseException) -> Outcome:
    if isinstance(exc, ProviderLost):
        return Outcome.LOST
    if isinstance(exc, INFRASTRUCTURE_ERRORS) and not isinstance(exc, BatchCancelled):
        return Outcome.INFRA_ERROR
    return Outcome.USER_ERROR


def _worst(outcomes: List[Outcome]) -> Outcome:
    for outcome in (Outcome.LOST, Outcome.INFRA_ERROR, Outcome.USER_ERROR):
        if outcome in outcomes:
            return outcome
    return Outcome.OK
