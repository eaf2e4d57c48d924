"""The seam between the scheduler and the machines that run commands.

A :class:`Provider` engages :class:`Session` objects; a session is one engaged
machine (a local sandbox, a fake, a Golem agreement with its activity). The scheduler
only ever calls the methods defined here, so a new backend needs nothing else::

    provider.engage(exclude, abort, permit) -> Session  # blocks until a machine is ready
    session.execute(commands, timeout) -> results  # one batch, commands in order
    session.cancel()                               # from another thread: stop now
    session.release()                              # give the machine back
    provider.close()

Backends translate their own failures (subprocess, HTTP, ...) into the errors of
:mod:`golem_tasks.errors` here, at the seam, chaining the original with ``from``.
"""

from __future__ import annotations

import abc
import json
import threading
import time
from types import MappingProxyType
from typing import AbstractSet, Any, List, Mapping, Optional, Sequence, Tuple

import attrs

from ..commands import Command, CommandResult, DownloadJson, Run
from ..errors import BatchCancelled, BatchTimeoutError, CommandExecutionError
from .gpu import GpuInfo


def _frozen_mapping(value: Optional[Mapping[str, Any]]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def _tuple_of_paths(value: Any) -> Tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class ProviderInfo:
    """Who a session runs on.

    Attributes:
        id: unique among the sessions of one provider backend (a Golem node id, a sandbox id).
        name: a name for people.
        properties: backend facts (offer properties, sandbox directory, ...), read-only.
        volumes: the directories a batch may send files into or download from (the
            VM's ``/golem/input``, ``/golem/output``, ``/golem/work`` and declared
            volumes); empty when the backend cannot know, and then nothing is checked.
            A batch built by ``ctx.batch()`` refuses other paths where it is built.
        gpu: the machine's graphics card, when its backend rents one out (a Golem
            ``vm-nvidia`` offer); None otherwise.
    """

    id: str
    name: str
    properties: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping, eq=False)
    volumes: Tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_paths, eq=False)
    gpu: Optional[GpuInfo] = attrs.field(default=None, eq=False)


class Session(abc.ABC):
    """One engaged machine. Used by one thread at a time, except :meth:`cancel`."""

    info: ProviderInfo

    @property
    def usable(self) -> bool:
        """False once the backend knows the session cannot run more batches (its
        activity was destroyed after a timeout, its budget is spent...). The scheduler
        then releases it at once instead of spending an attempt to find out."""
        return True

    @abc.abstractmethod
    def execute(self, commands: Sequence[Command], *, timeout: Optional[float] = None) -> List[CommandResult]:
        """Run ``commands`` in order and return one result per command.

        Raises:
            CommandExecutionError: the first failing command (results so far attached);
                the commands after it do not run.
            BatchTimeoutError: ``timeout`` seconds passed; the running command was killed.
            BatchCancelled: :meth:`cancel` was called.
            ProviderLost: the machine went away.
        """

    @abc.abstractmethod
    def cancel(self) -> None:
        """Stop the running batch at once (kill its processes). Safe to call from any
        thread, any number of times; the session is not used again afterwards."""

    @abc.abstractmethod
    def release(self) -> None:
        """Give the machine back. Idempotent; never raises for an already released session."""


class Permit:
    """When a paid engagement may sign (spend money): the scheduler's word to a backend.

    The scheduler owns it and moves its time (:meth:`allow_at`); a backend only waits on
    it (:meth:`wait`) after negotiating and before signing anything, so a provider the
    work turns out not to need is let go before it costs money. Like a future, it is
    changed by one side and waited on by the other, and calls nobody.
    """

    __slots__ = ("_cond", "_at", "_waited")

    def __init__(self, at: float = 0.0) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._at = at  # time.monotonic() from which signing is allowed
        self._waited = 0.0

    def allow_at(self, when: float) -> None:
        """Allow signing from ``when`` (a ``time.monotonic()`` time) on; no effect once
        allowed (a backend may be signing already)."""
        with self._cond:
            if self._at <= time.monotonic():
                return
            self._at = when
            self._cond.notify_all()

    def wake(self) -> None:
        """Wake the waiter now, allowed or not: set the engagement's ``abort`` first, the
        waiter reads it when :meth:`wait` returns."""
        with self._cond:
            self._at = min(self._at, time.monotonic())
            self._cond.notify_all()

    def allowed(self) -> bool:
        with self._cond:
            return self._at <= time.monotonic()

    @property
    def waited(self) -> float:
        """Seconds a backend spent waiting on this permit (not part of an engagement's time)."""
        with self._cond:
            return self._waited

    def wait_unless(self, abort: Optional[threading.Event], slice_: float = 0.1) -> bool:
        """Block until signing is allowed (True) or ``abort`` is set (False). The
        scheduler wakes the permit when it sets ``abort``; ``slice_`` only bounds how
        late an abort set by anyone else (a backend's own close) is seen."""
        while not self.wait(slice_):
            if abort is not None and abort.is_set():
                return False
        return not (abort is not None and abort.is_set())

    def wait(self, timeout: float) -> bool:
        """Block until signing is allowed (True) or ``timeout`` s passed (False)."""
        start = time.monotonic()
        end = start + timeout
        with self._cond:
            try:
                while True:
                    now = time.monotonic()
                    if self._at <= now:
                        return True
                    if now >= end:
                        return False
                    self._cond.wait(min(self._at, end) - now)
            finally:
                self._waited += time.monotonic() - start


class Provider(abc.ABC):
    """A source of sessions. Use as a context manager, or call :meth:`close`."""

    #: How many sessions the scheduler engages when ``max_workers`` is not given.
    default_max_workers: int = 4

    #: Engaging costs money (an agreement is signed and invoiced): the scheduler then
    #: lets an engagement go when the providers already running will clear the queued
    #: work sooner than it would take to become ready.
    paid_engagement: bool = False

    @abc.abstractmethod
    def engage(self, *, exclude: AbstractSet[str] = frozenset(),
               abort: Optional[threading.Event] = None, permit: Optional[Permit] = None) -> Session:
        """Engage a new machine, never one whose id is in ``exclude``.

        Blocks until the session is ready. Returns early with ``ProviderError`` when
        ``abort`` is set. Raises ``ProviderError`` when no machine can be had. A backend
        with ``paid_engagement`` waits on ``permit`` (when given) before it signs
        anything; free backends may ignore it.
        """

    def scan(self, **options: Any) -> Any:
        """What this backend's market offers right now, engaging and spending nothing
        (a preflight): None for backends with no market (local, fake);
        ``GolemProvider.scan`` returns a ``MarketScan``."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing more
        """Release whatever the backend holds beyond its sessions. Idempotent."""

    def __enter__(self) -> "Provider":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def decode_download(command: Command, index: int, raw: bytes, provider: Optional[str]) -> Any:
    """Turn the bytes a download produced into the result's ``data``: parsed JSON for
    ``download_json``, the bytes otherwise. Every backend uses this so they agree."""
    if isinstance(command, DownloadJson):
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise CommandExecutionError(
                f"{command.src} is not valid JSON ({exc}); download it with download_bytes() to see it",
                command=command, index=index, provider=provider,
            ) from exc
    return raw


class SequentialSession(Session):
    """A session that runs commands one by one with :meth:`run_command`.

    It owns the rules every such backend must share: the batch deadline, cancellation
    between commands, and turning a non-zero exit of a checked ``run`` into
    ``CommandExecutionError``.
    """

    def __init__(self, info: ProviderInfo) -> None:
        self.info = info
        self.cancelled = threading.Event()

    @abc.abstractmethod
    def run_command(self, command: Command, index: int, deadline: Optional[float]) -> CommandResult:
        """Run one command, honouring ``deadline`` (a ``time.monotonic()`` value) and
        :attr:`cancelled`. Raise ``BatchTimeoutError`` or ``BatchCancelled`` when they hit,
        ``CommandExecutionError`` for a command that could not do its job."""

    def execute(self, commands: Sequence[Command], *, timeout: Optional[float] = None) -> List[CommandResult]:
        deadline = None if timeout is None else time.monotonic() + timeout
        results: List[CommandResult] = []
        provider = self.info.id
        for index, command in enumerate(commands):
            if self.cancelled.is_set():
                raise BatchCancelled("batch cancelled", provider=provider)
            if deadline is not None and time.monotonic() >= deadline:
                raise BatchTimeoutError(f"batch timed out after {timeout:g} s before {command}", provider=provider)
            try:
                result = self.run_command(command, index, deadline)
            except CommandExecutionError as exc:
                exc.command = exc.command or command
                exc.index = index if exc.index is None else exc.index
                exc.provider = exc.provider or provider
                exc.results = tuple(results)
                raise
            if isinstance(command, Run) and command.check and result.exit_code != 0:
                raise CommandExecutionError(
                    f"program exited with code {result.exit_code}",
                    command=command, index=index, exit_code=result.exit_code,
                    stdout=result.stdout, stderr=result.stderr, provider=provider, results=results,
                )
            results.append(result)
        return results

    def cancel(self) -> None:
        self.cancelled.set()
