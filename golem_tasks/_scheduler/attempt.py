"""One attempt: run a fragment, or a stream of tasks, on one engaged session.

An attempt knows the session, the fragment and the worker; it does not know the
pool. It returns :class:`Outcome` values, and the pool decides what they mean.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import attrs

from .. import _driver, _output
from .. import events as ev
from ..batch import Batch
from ..commands import CommandResult
from ..context import WorkContext
from ..errors import (
    BatchCancelled,
    BatchTimeoutError,
    CommandExecutionError,
    FragmentTimeoutError,
    GolemTasksError,
    ProviderError,
    WorkerError,
)
from ..providers.base import ProviderInfo, Session
from .job import Fragment, Job


@attrs.frozen
class Settings:
    """What every attempt of one pool shares."""

    batch_timeout: Optional[float]
    emitter: ev.Emitter


@attrs.define
class Outcome:
    """How one attempt of one fragment ended.

    Exactly one of: ``error`` set (the attempt failed), ``rejection`` set (an
    ``execute_tasks`` worker called ``reject_result``), ``skipped`` (the fragment was
    cancelled before it started), or none of them (``value`` is the result).
    """

    fragment: Fragment
    provider: ProviderInfo
    elapsed: float = 0.0
    value: Any = None
    error: Optional[BaseException] = None
    rejection: Optional[Tuple[str, bool]] = None  # (reason, retry)
    skipped: bool = False


def run_fragment(session: Session, fragment: Fragment, settings: Settings) -> Outcome:
    """Run ``fragment``'s worker to its end on ``session``."""
    info = session.info
    if not fragment.begin():
        return Outcome(fragment, info, skipped=True)
    started = _start(fragment, info, settings)
    job = fragment.job
    try:
        gen = _driver.start(job.worker, WorkContext(info), *fragment.args, **fragment.kwargs)
        value = _driver.drive(gen, executor(session, settings, job, lambda: fragment.deadline, fragment.index))
    except BaseException as exc:  # every error is an outcome; the pool decides what it means
        if not isinstance(exc, Exception) and not isinstance(exc, GeneratorExit):
            raise  # KeyboardInterrupt, SystemExit: not the fragment's
        return Outcome(fragment, info, time.monotonic() - started, error=exc)
    return Outcome(fragment, info, time.monotonic() - started, value=value)


def initialize(session: Session, initializer: Callable[..., Any], settings: Settings) -> None:
    """Run a per-provider initializer or finalizer on ``session``; raises its error."""
    gen = _driver.start(initializer, WorkContext(session.info))
    _driver.drive(gen, executor(session, settings, None, lambda: None))


class Stream:
    """An ``execute_tasks`` attempt: one worker generator consumes many tasks.

    Tasks the worker settles (``accept_result``/``reject_result``) become outcomes in
    :attr:`settled`, which the caller drains between tasks; tasks still held when the
    generator ends are in the list :meth:`run` returns.
    """

    def __init__(self, session: Session, job: Job, settings: Settings) -> None:
        self.session = session
        self.job = job
        self.settings = settings
        self.settled: List[Outcome] = []
        self._held: Dict[int, Tuple[Fragment, float]] = {}

    def drain(self) -> List[Outcome]:
        settled, self.settled = self.settled, []
        return settled

    def run(self, fragments: Iterator[Fragment]) -> List[Outcome]:
        info = self.session.info
        try:
            gen = _driver.start(self.job.worker, WorkContext(info), self._tasks(fragments))
            _driver.drive(gen, executor(self.session, self.settings, self.job, self._deadline))
        except BaseException as exc:
            if not isinstance(exc, Exception) and not isinstance(exc, GeneratorExit):
                raise
            return self.drain() + [self._settle(f, error=exc) for f, _ in list(self._held.values())]
        unsettled = WorkerError("the worker finished without calling accept_result() or reject_result() "
                                "on this task")
        return self.drain() + [self._settle(f, error=unsettled) for f, _ in list(self._held.values())]

    def _tasks(self, fragments: Iterator[Fragment]) -> Iterator[Any]:
        info = self.session.info
        for fragment in fragments:
            if not fragment.begin():
                self.settled.append(Outcome(fragment, info, skipped=True))
                continue
            self._held[id(fragment)] = (fragment, _start(fragment, info, self.settings))
            fragment.task._bind(accept=lambda value, f=fragment: self.settled.append(self._settle(f, value=value)),
                                reject=lambda reason, retry, f=fragment: self.settled.append(
                                    self._settle(f, rejection=(reason, retry))))
            yield fragment.task

    def _settle(self, fragment: Fragment, **how: Any) -> Outcome:
        _, started = self._held.pop(id(fragment))
        return Outcome(fragment, self.session.info, time.monotonic() - started, **how)

    def _deadline(self) -> Optional[float]:
        deadlines = [f.deadline for f, _ in self._held.values() if f.deadline is not None]
        return min(deadlines) if deadlines else None


def _start(fragment: Fragment, info: ProviderInfo, settings: Settings) -> float:
    job = fragment.job
    started = time.monotonic()
    fragment.deadline = started + job.fragment_timeout if job.fragment_timeout else None
    if settings.emitter.wants(ev.FragmentStarted):
        settings.emitter.emit(ev.FragmentStarted(job_id=job.id, index=fragment.index, provider_id=info.id,
                                                 attempt=fragment.attempt))
    return started


def executor(session: Session, settings: Settings, job: Optional[Job],
             deadline_of: Callable[[], Optional[float]],
             fragment_index: Optional[int] = None) -> Callable[[Batch], List[CommandResult]]:
    """``execute(batch)`` for the driver: checks the batch, applies the batch and
    fragment deadlines, and turns a backend's stray exception into a ProviderError."""
    info = session.info

    def execute(batch: Batch) -> List[CommandResult]:
        if job is not None and job.cancelled:
            raise BatchCancelled("the job was cancelled", provider=info.id)
        commands = batch.commands
        if not commands:
            return []
        batch.check_paths(info.volumes)  # the requestor's mistake: raised at the yield, nothing sent
        timeout = batch.timeout if batch.timeout is not None else settings.batch_timeout
        deadline, binding = deadline_of(), False
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FragmentTimeoutError(f"the fragment ran past its {_limit(job)} s timeout")
            if timeout is None or remaining < timeout:
                timeout, binding = remaining, True
        teed = commands
        if settings.emitter.wants(ev.CommandOutput):
            teed = tuple(_output.tee(commands, _reporter(settings.emitter, info, job, fragment_index)))
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
            raise ProviderError(f"provider {info.name} failed: {exc!r}", provider=info.id) from exc
    return execute


def _reporter(emitter: ev.Emitter, info: ProviderInfo, job: Optional[Job],
              fragment_index: Optional[int]) -> Callable[[int, str, str], None]:
    job_id = job.id if job is not None else None

    def report(command_index: int, stream: str, text: str) -> None:
        emitter.emit(ev.CommandOutput(job_id=job_id, index=fragment_index, provider_id=info.id,
                                      command_index=command_index, stream=stream, text=text))
    return report


def _limit(job: Optional[Job]) -> str:
    timeout = job.fragment_timeout if job is not None else None
    return f"{timeout:g}" if timeout is not None else "?"
