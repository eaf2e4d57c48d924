"""Test workers without Golem: a scripted, recording, fault-injecting fake provider.

:class:`FakeProvider` is a :class:`~golem_tasks.providers.base.Provider` whose machines
are in memory: uploads and downloads go to a per-session dict, ``run`` commands are
answered by rules you script. :func:`run_worker` drives one worker against it with no
scheduler and no threads. The pytest plugin adds a ``fake_provider`` fixture.
"""

from __future__ import annotations

import math
import re
import threading
from typing import AbstractSet, Any, Callable, Dict, List, Mapping, Optional, Sequence, Type, Union

from ._driver import check_worker, drive, start
from ._fake import (BatchCall, Call, ErrorSpec, FakeState, Handler, Matcher, Rule, RunOutput,
                    check_error_spec, encode_content, encode_files, make_error)
from ._fake_session import FakeSession
from .batch import Batch
from .commands import Command, CommandResult, Run
from .context import WorkContext
from .errors import CommandExecutionError, ConfigurationError, ProviderError
from .providers.base import Permit, Provider, ProviderInfo
from .providers.gpu import GpuInfo
from .providers.outbound import check_outbound

__all__ = ("BatchCall", "Call", "FakeProvider", "FakeSession", "Rule", "RunOutput", "run_worker")

SessionRef = Union[str, int, FakeSession]

# Show the public path in reprs, tracebacks and docs (as httpx does for its names).
for _public in (BatchCall, Call, FakeSession, Rule, RunOutput):
    _public.__module__ = __name__
del _public


def _whole(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return value


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigurationError(f"{name} must be a number of seconds >= 0, got {value!r}")
    return float(value)


def _session_id(which: SessionRef) -> str:
    if isinstance(which, FakeSession):
        return which.id
    if isinstance(which, int) and not isinstance(which, bool):
        return f"fake-{_whole('the session number', which)}"
    if isinstance(which, str):
        return which
    raise TypeError(f"name a session by id ('fake-2'), number (2) or object, got {which!r}")


class FakeProvider(Provider):
    """A provider whose machines live in memory, for unit tests.

    * Each :meth:`engage` gives a new :class:`FakeSession` with id ``fake-1``, ``fake-2``,
      ... (never reused, ``exclude`` honoured) and its own in-memory filesystem:
      ``send_*`` write to it, ``download_*`` read from it, so transfers need no script.
    * ``run`` commands are matched against :meth:`on_run` rules, first match wins.
      An unmatched run raises :class:`~golem_tasks.errors.UnexpectedCommand` (listing
      every rule and why it did not match), or goes to ``handler``, or succeeds with
      no output when ``strict=False``.
    * Faults on demand: :meth:`fail_command`, :meth:`lose_provider`, :meth:`fail_engage`,
      ``latency``, and ``on_run(..., hang=True)``.
    * Everything is recorded: :attr:`calls`, :attr:`batches`, :attr:`sessions`, :attr:`runs`.
    * Deterministic (no randomness) and thread-safe.

    Usage::

        from golem_tasks.testing import FakeProvider, run_worker

        def worker(ctx, word):
            batch = ctx.batch()
            batch.send_json({"word": word}, "/golem/input/task.json")
            batch.run("python3", "/golem/input/job.py")
            batch.download_json("/golem/output/result.json")
            results = yield batch
            return results[-1].data

        with FakeProvider() as fake:
            fake.on_run("python3 /golem/input/job.py",
                        files={"/golem/output/result.json": {"n": 5}})
            assert run_worker(worker, "hello", provider=fake) == {"n": 5}
            assert fake.runs == ["python3 /golem/input/job.py"]

    To fail twice and then succeed (a retry test), script the same command in order::

        fake.on_run("python3 job.py", exit_code=1, stderr="flaky", times=2)
        fake.on_run("python3 job.py", stdout="ok")

    Args:
        handler: ``handler(command, session)`` answers every run no rule matches; it
            returns None, a str (stdout) or a :class:`RunOutput`, or raises.
        latency: seconds every command takes (interrupted by ``cancel()``; the batch
            timeout applies).
        strict: when True (default) an unmatched run with no ``handler`` raises
            ``UnexpectedCommand``; when False it succeeds with empty output.
        assert_all_used: check :meth:`assert_all_rules_used` when the ``with`` block
            (or the pytest fixture's test) ends without an error.
        files: initial filesystem of every session, ``{path: bytes | str | JSON-able}``.
        urls: what ``send_url`` downloads, ``{url: bytes | str | JSON-able}``; an unknown URL
            fails the command like an HTTP 404 would. ``upload_url`` puts land in
            :attr:`uploads`.
        properties: extra ``ProviderInfo.properties`` of every session.
        max_sessions: engage raises ``ProviderError`` after this many sessions.
        record: False keeps no ``calls`` or ``batches`` (constant memory for long runs).
        volumes: ``ProviderInfo.volumes`` of every session: the directories a batch may
            send into or download from (empty: unknown, nothing is checked).
        gpu: ``ProviderInfo.gpu`` of every session (a :class:`GpuInfo`), to test workers
            that read the card they got.
        outbound: URLs commands may reach, as for the other providers: checked (a bad
            one raises ``ConfigurationError``), kept in :attr:`outbound` and in every
            session's ``properties["outbound"]``; nothing is reached, so nothing is filtered.
    """

    def __init__(self, handler: Optional[Handler] = None, *, latency: float = 0.0,
                 strict: bool = True, assert_all_used: bool = True,
                 files: Optional[Mapping[str, Any]] = None,
                 urls: Optional[Mapping[str, Any]] = None,
                 properties: Optional[Mapping[str, Any]] = None,
                 max_sessions: Optional[int] = None, record: bool = True,
                 volumes: Sequence[str] = (), gpu: Optional[GpuInfo] = None,
                 outbound: Optional[Sequence[str]] = None) -> None:
        #: The checked ``outbound=`` URLs (outbound hook, outbound13).
        self.outbound = check_outbound(outbound)
        if handler is not None and not callable(handler):
            raise TypeError(f"handler must be callable(command, session), got {handler!r}")
        latency = _seconds("latency", latency)
        self._state = FakeState(latency=latency, strict=strict, handler=handler, record=bool(record))
        #: Whether the `with` block and the pytest fixture check assert_all_rules_used().
        self.assert_all_used = assert_all_used
        self._files = encode_files(files)
        self._state.urls = {url: encode_content(value) for url, value in (urls or {}).items()}
        self._properties = {"fake": True, **({"outbound": self.outbound} if self.outbound else {}),
                            **(properties or {})}
        if isinstance(volumes, str):
            raise TypeError(f"volumes must be a sequence of directories, got the str {volumes!r}")
        self._volumes = tuple(volumes)
        if gpu is not None and not isinstance(gpu, GpuInfo):
            raise TypeError(f"gpu must be a GpuInfo, got {gpu!r}")
        self._gpu = gpu
        if max_sessions is not None:
            _whole("max_sessions", max_sessions)
        self._max_sessions = max_sessions
        self._next_number = 1
        self._engage_attempts = 0
        self._engage_faults: Dict[int, ErrorSpec] = {}
        self._engage_always: Optional[ErrorSpec] = None

    # -- scripting ---------------------------------------------------------------------

    def on_run(self, pattern: Matcher, *, stdout: str = "", stderr: str = "", exit_code: int = 0,
               files: Optional[Mapping[str, Any]] = None, error: Optional[ErrorSpec] = None,
               handler: Optional[Handler] = None, latency: float = 0.0, hang: bool = False,
               times: Optional[int] = None) -> Rule:
        """Script how ``run`` commands matching ``pattern`` behave. Rules are tried in
        the order they were added and the first that matches answers.

        Args:
            pattern: matched against the command line, ``" ".join(args)``: a str must
                equal it; a compiled regex must match all of it (``re.fullmatch``); a
                callable ``pattern(line)`` returns a bool or ``(bool, reason)``.
            stdout, stderr, exit_code: what the run prints and returns. A non-zero exit
                of a checked run raises ``CommandExecutionError`` at the worker's yield.
            files: ``{path: bytes | str | JSON-able}`` the run writes to the session.
            error: an exception (instance or class) to raise instead, e.g.
                ``ProviderLost``, which also makes the session lost.
            handler: ``handler(command, session)`` computes the answer instead (None,
                a str for stdout, or a RunOutput); excludes stdout/stderr/exit_code/files/error.
            latency: extra seconds the run takes. ``hang=True``: it runs until cancelled,
                lost or timed out.
            times: answer at most this many runs (then the next rule is tried).

        Returns:
            The :class:`Rule`; its ``call_count`` says how often it answered.
        """
        if not isinstance(pattern, (str, re.Pattern)) and not callable(pattern):
            raise TypeError(f"pattern must be a str, a compiled regex or a callable, "
                            f"got {pattern!r}")
        if handler is not None and (stdout or stderr or exit_code or files or error is not None):
            raise ConfigurationError("on_run(handler=...) computes the answer itself: "
                                     "drop stdout/stderr/exit_code/files/error")
        if error is not None:
            check_error_spec(error)
        if times is not None:
            _whole("times", times)
        delay = math.inf if hang else _seconds("latency", latency)
        rule = Rule(pattern, output=RunOutput(stdout, stderr, exit_code), files=encode_files(files),
                    error=error, handler=handler, delay=delay, times=times)
        with self._state.lock:
            self._state.rules.append(rule)
        return rule

    def fail_command(self, n: int, error: ErrorSpec = CommandExecutionError, *,
                     session: Optional[SessionRef] = None) -> None:
        """Make the ``n``-th command fail with ``error`` instead of running.

        ``n`` counts from 1 every command (of any kind) the provider starts, across all
        its sessions in the order they start; with ``session=`` only that session's
        (the deterministic choice when several sessions run in parallel threads).
        The command does not run and no rule is used. ``error`` is an exception class
        or instance (copied for the raise); a ``ProviderLost`` also loses the session.
        """
        check_error_spec(error)
        key = (None if session is None else _session_id(session), _whole("n", n))
        with self._state.lock:
            self._state.command_faults[key] = error

    def lose_provider(self, which: SessionRef, *, after_commands: int = 0) -> None:
        """Lose a session: after it has started ``after_commands`` commands, its running
        and later commands raise ``ProviderLost``.

        ``which`` is a session id (``"fake-2"``), its number (``2``) or the session; it
        may be one not engaged yet. With ``after_commands=0`` an engaged session is lost
        at once, interrupting the command it is running (its latency or hang).
        """
        _whole("after_commands", after_commands, minimum=0)
        session_id = _session_id(which)
        with self._state.lock:
            self._state.losses[session_id] = after_commands
            for session in self._state.sessions:
                if session.id == session_id:
                    session.maybe_lose()

    def slow_down(self, which: SessionRef, factor: float) -> None:
        """Make one session's commands take ``factor`` times the provider's ``latency``
        (a straggler, for speculation tests); it may be one not engaged yet."""
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 0:
            raise ConfigurationError(f"slow_down() factor must be a positive number, got {factor!r}")
        with self._state.lock:
            self._state.slowdowns[_session_id(which)] = float(factor)

    def fail_engage(self, n: Optional[int] = None, *, error: ErrorSpec = ProviderError) -> None:
        """Make the ``n``-th call of :meth:`engage` (counting from 1, failed calls
        included) raise ``error``; with ``n=None`` every later call does."""
        check_error_spec(error)
        with self._state.lock:
            if n is None:
                self._engage_always = error
            else:
                self._engage_faults[_whole("n", n)] = error

    # -- the Provider interface --------------------------------------------------------

    def engage(self, *, exclude: AbstractSet[str] = frozenset(), abort: Optional[threading.Event] = None,
               permit: Optional[Permit] = None) -> FakeSession:
        """A new fake session. A subclass that sets ``paid_engagement`` plays a paid
        market: it waits on ``permit`` first, as the Golem backend does before signing."""
        if permit is not None and self.paid_engagement:
            permit.wait_unless(abort)  # an abort is then refused below, as an aborted engage
        with self._state.lock:
            self._engage_attempts += 1
            attempt = self._engage_attempts
            if self._state.closed:
                raise ProviderError("the FakeProvider is closed")
            if abort is not None and abort.is_set():
                raise ProviderError("engage aborted")
            fault = self._engage_faults.pop(attempt, self._engage_always)
            if fault is not None:
                raise make_error(fault, f"engage #{attempt} failed (injected by fail_engage)", None)
            if self._max_sessions is not None and len(self._state.sessions) >= self._max_sessions:
                raise ProviderError(
                    f"FakeProvider(max_sessions={self._max_sessions}) has no more machines")
            return self._new_session(exclude)

    def _new_session(self, exclude: AbstractSet[str]) -> FakeSession:
        while f"fake-{self._next_number}" in exclude:
            self._next_number += 1
        session_id = f"fake-{self._next_number}"
        self._next_number += 1
        info = ProviderInfo(id=session_id, name=session_id, properties=self._properties, volumes=self._volumes,
                            gpu=self._gpu)
        session = FakeSession(info, self._state, self._files)
        self._state.sessions.append(session)
        session.maybe_lose()
        self._state.sessions_changed.notify_all()
        return session

    def close(self) -> None:
        """Close the provider: engage fails from now on, and every session's running
        command (hanging or waiting out its latency) and later commands raise
        ``ProviderLost``. Sessions are not released: the scheduler must do that.
        Idempotent."""
        with self._state.lock:
            self._state.closed = True
            sessions = list(self._state.sessions)
        for session in sessions:
            session._wake.set()

    def __enter__(self) -> "FakeProvider":
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self.close()
        if exc_type is None and self.assert_all_used:
            self.assert_all_rules_used()

    # -- records -----------------------------------------------------------------------

    @property
    def calls(self) -> List[Call]:
        """Every command run so far, as :class:`Call` tuples in the order they finished."""
        with self._state.lock:
            return list(self._state.calls)

    @property
    def batches(self) -> List[BatchCall]:
        """Every batch executed so far, as :class:`BatchCall` tuples in the order they finished."""
        with self._state.lock:
            return list(self._state.batches)

    @property
    def sessions(self) -> List[FakeSession]:
        """Every session engaged so far, in order (see ``released`` and ``lost``)."""
        with self._state.lock:
            return list(self._state.sessions)

    @property
    def rules(self) -> List[Rule]:
        with self._state.lock:
            return list(self._state.rules)

    @property
    def uploads(self) -> Dict[str, bytes]:
        """What ``upload_url`` commands put, ``{url: bytes}`` (the last put per URL)."""
        with self._state.lock:
            return dict(self._state.uploads)

    @property
    def engage_attempts(self) -> int:
        """How many times :meth:`engage` was called, failures included."""
        with self._state.lock:
            return self._engage_attempts

    def commands(self, kind: Type[Command] = Command) -> List[Command]:
        """The commands of :attr:`calls` that are instances of ``kind``."""
        return [call.command for call in self.calls if isinstance(call.command, kind)]

    @property
    def runs(self) -> List[str]:
        """The command lines (``" ".join(args)``) of every ``run`` so far."""
        return [" ".join(call.command.args) for call in self.calls if isinstance(call.command, Run)]

    def wait_for_commands(self, count: int = 1, timeout: Optional[float] = 30.0) -> bool:
        """Block until ``count`` commands have started (e.g. before cancelling one from
        another thread). Returns False if ``timeout`` passed first."""
        with self._state.command_started:
            return self._state.command_started.wait_for(
                lambda: self._state.commands_started >= count, timeout)

    def wait_for_sessions(self, count: int = 1, timeout: Optional[float] = 30.0) -> bool:
        """Block until ``count`` sessions have been engaged (released ones included), e.g.
        to hold a fragment until a second provider is engaged. Returns False if ``timeout``
        passed first."""
        with self._state.sessions_changed:
            return self._state.sessions_changed.wait_for(lambda: len(self._state.sessions) >= count, timeout)

    def wait_for_released(self, timeout: Optional[float] = 30.0) -> bool:
        """Block until every session engaged so far is released (e.g. after
        ``shutdown(wait=False)``). Returns False if ``timeout`` passed first."""
        with self._state.sessions_changed:
            return self._state.sessions_changed.wait_for(
                lambda: all(session.released for session in self._state.sessions), timeout)

    # -- assertions --------------------------------------------------------------------

    def assert_all_rules_used(self) -> None:
        """Raise AssertionError naming each rule never used (or used fewer than its
        ``times``): a scripted answer nobody asked for usually means a broken test."""
        unused = [rule for rule in self.rules if not rule.fully_used]
        if unused:
            listed = "\n".join(f"  {rule.describe()}: answered {rule.call_count} runs"
                               for rule in unused)
            raise AssertionError(f"{len(unused)} scripted rule(s) not used up:\n{listed}")

    def assert_all_released(self) -> None:
        """Raise AssertionError naming each engaged session not released."""
        held = [session.id for session in self.sessions if not session.released]
        if held:
            raise AssertionError(f"sessions never released: {', '.join(held)}")

    def __repr__(self) -> str:
        state = self._state
        return (f"<FakeProvider sessions={len(state.sessions)} rules={len(state.rules)} "
                f"commands={state.commands_started}{' closed' if state.closed else ''}>")


def run_worker(worker: Callable[..., Any], *args: Any, provider: Optional[Provider] = None,
               batch_timeout: Optional[float] = None) -> Any:
    """Run ``worker(ctx, *args)`` on one session of ``provider`` and return its result.

    No scheduler and no threads: one session is engaged, each yielded batch runs on it
    (its errors are thrown into the worker at the ``yield``), the session is released.
    An error the worker does not handle is raised here, unwrapped. Pass keyword
    arguments with ``functools.partial(worker, key=value)``.

    Args:
        provider: any provider; by default a fresh :class:`FakeProvider` (closed after).
        batch_timeout: the timeout of batches that do not set their own.
    """
    check_worker(worker)
    owned = provider is None
    used = FakeProvider() if provider is None else provider
    try:
        session = used.engage()
        try:
            def execute(batch: Batch) -> List[CommandResult]:
                timeout = batch_timeout if batch.timeout is None else batch.timeout
                return session.execute(batch.commands, timeout=timeout)

            return drive(start(worker, WorkContext(session.info), *args), execute)
        finally:
            session.release()
    finally:
        if owned:
            used.close()
