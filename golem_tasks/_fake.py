"""The shared state behind :class:`golem_tasks.testing.FakeProvider`: rules, records,
injected faults.

:class:`FakeState` is everything one fake provider shares between its sessions and
threads, behind one lock; the sessions themselves are in ``_fake_session``. Users meet
these through ``golem_tasks.testing``; nothing else in the library imports them.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from typing import (Any, Callable, Dict, List, Mapping, NamedTuple, Optional,
                    Pattern, Sequence, Tuple, Type, Union)

import attrs

from ._driver import worker_name
from .commands import Command, CommandResult, Run, _remote_path
from .errors import BatchError, ProviderError, UnexpectedCommand


#: What ``on_run`` matches a command line against: the exact line, a regex that
#: must match all of it, or a predicate returning a bool or ``(bool, reason)``.
Matcher = Union[str, Pattern[str], Callable[[str], Any]]
#: ``handler(command, session)`` answers a run: None, a str (stdout) or a RunOutput.
#: ``handler(command, session)``: the session is the FakeSession running the command.
Handler = Callable[[Run, Any], Any]
#: An exception instance (copied for each use) or an exception class.
ErrorSpec = Union[BaseException, Type[BaseException]]


@attrs.frozen
class RunOutput:
    """What a faked ``run`` printed and how it exited; what a handler returns."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0


class Call(NamedTuple):
    """One command a fake session started, recorded when it finished.

    ``result`` is None when the command raised; both are set for a checked ``run``
    that exited non-zero (what it printed, and the error the worker got).
    """

    session_id: str
    batch: int  #: the batch's number, as in :attr:`BatchCall.number`
    # Shadows tuple.index() on purpose: the name matches CommandResult.index.
    index: int  # type: ignore[assignment]
    command: Command
    result: Optional[CommandResult]
    error: Optional[BaseException]


class BatchCall(NamedTuple):
    """One batch a fake session executed, recorded when it finished.

    ``results`` holds the results of the commands that completed before any error.
    """

    number: int  #: 1, 2, ... in the order batches started, across the whole provider
    session_id: str
    commands: Tuple[Command, ...]
    timeout: Optional[float]
    results: Tuple[CommandResult, ...]
    error: Optional[BaseException]


def encode_content(value: Any) -> bytes:
    """File content for the fake filesystem: bytes as they are, str as UTF-8, anything
    else as JSON (so ``files={"/golem/output/r.json": {"ok": True}}`` just works)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    try:
        return json.dumps(value).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"file content must be bytes, str or JSON-serialisable, got {value!r:.80}"
        ) from exc


def encode_files(files: Optional[Mapping[str, Any]]) -> Dict[str, bytes]:
    return {_remote_path(path): encode_content(value) for path, value in (files or {}).items()}


def check_error_spec(error: Any) -> None:
    if isinstance(error, BaseException):
        return
    if isinstance(error, type) and issubclass(error, BaseException):
        return
    raise TypeError(f"error must be an exception instance or class, got {error!r}")


def make_error(spec: ErrorSpec, message: str, provider: Optional[str]) -> BaseException:
    """A fresh exception from ``spec``: scripted errors fire many times, and the session
    fills in ``command``/``index``/``results`` on the instance it raises."""
    if isinstance(spec, type):
        if issubclass(spec, (BatchError, ProviderError)):
            return spec(message, provider=provider)
        return spec(message)
    try:
        error = copy.copy(spec)
    except Exception:  # an exception that cannot be copied: raise the very instance
        error = spec
    if isinstance(error, (BatchError, ProviderError)) and error.provider is None:
        error.provider = provider
    return error


def _first_difference(a: str, b: str) -> int:
    for position, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return position
    return min(len(a), len(b))


def mismatch(pattern: Matcher, line: str) -> Optional[str]:
    """None when ``pattern`` matches the command ``line``, otherwise why it does not."""
    if isinstance(pattern, str):
        if pattern == line:
            return None
        at = _first_difference(pattern, line)
        ours, theirs = pattern[at:at + 30], line[at:at + 30]
        return f"differs at character {at}: rule has {ours!r}, command has {theirs!r}"
    if isinstance(pattern, re.Pattern):
        if pattern.fullmatch(line):
            return None
        hint = " (it matches part of it: add '.*' to allow more)" if pattern.search(line) else ""
        return f"regex does not match the whole command line{hint}"
    verdict = pattern(line)
    matched, reason = verdict if isinstance(verdict, tuple) else (verdict, None)
    if matched:
        return None
    return reason or f"returned {verdict!r}"


def describe_pattern(pattern: Matcher) -> str:
    if isinstance(pattern, str):
        return repr(pattern)
    if isinstance(pattern, re.Pattern):
        return f"re.compile({pattern.pattern!r})"
    return f"{worker_name(pattern)}()"


class Rule:
    """One scripted answer to ``run`` commands; made by ``FakeProvider.on_run``.

    Attributes:
        pattern: what it matches (see :data:`Matcher`).
        times: how many runs it answers; None for any number.
        call_count: how many runs it has answered so far.
    """

    def __init__(self, pattern: Matcher, *, output: RunOutput, files: Mapping[str, bytes],
                 error: Optional[ErrorSpec], handler: Optional[Handler], delay: float,
                 times: Optional[int]) -> None:
        self.pattern = pattern
        self.output = output
        self.files = dict(files)
        self.error = error
        self.handler = handler
        self.delay = delay
        self.times = times
        self.call_count = 0

    @property
    def used_up(self) -> bool:
        return self.times is not None and self.call_count >= self.times

    @property
    def fully_used(self) -> bool:
        """Used at least once, or exactly ``times`` times when that was given."""
        return self.call_count >= (1 if self.times is None else self.times)

    def explain(self, line: str) -> Optional[str]:
        """None when this rule answers ``line`` now, otherwise why it does not."""
        if self.used_up:
            return f"used up (answered {self.call_count} of times={self.times})"
        return mismatch(self.pattern, line)

    def describe(self) -> str:
        text = describe_pattern(self.pattern)
        if self.times is not None:
            text += f" (times={self.times}, used {self.call_count})"
        return text

    def __repr__(self) -> str:
        return f"<Rule {self.describe()} call_count={self.call_count}>"


class FakeState:
    """What the sessions of one fake provider share. Every field is guarded by ``lock``
    (the scheduler runs sessions in many threads)."""

    def __init__(self, *, latency: float, strict: bool, handler: Optional[Handler],
                 record: bool = True) -> None:
        self.lock = threading.Lock()
        #: False keeps no calls or batches, so long runs (benchmarks) use constant memory.
        self.record = record
        #: Notified whenever a command starts, for ``FakeProvider.wait_for_commands``.
        self.command_started = threading.Condition(self.lock)
        #: Notified when a session is engaged or released, for ``FakeProvider.wait_for_sessions``
        #: and ``wait_for_released``: tests synchronise on engagement instead of sleeping.
        self.sessions_changed = threading.Condition(self.lock)
        self.latency = latency
        self.strict = strict
        self.handler = handler
        self.closed = False
        self.rules: List[Rule] = []
        #: (session id or None for provider-wide, command number) -> error to raise
        self.command_faults: Dict[Tuple[Optional[str], int], ErrorSpec] = {}
        #: session id -> how many commands it runs before it is lost
        self.losses: Dict[str, int] = {}
        #: session id -> factor on ``latency`` for that session's commands
        self.slowdowns: Dict[str, float] = {}
        self.commands_started = 0
        self.batches_started = 0
        self.calls: List[Call] = []
        self.batches: List[BatchCall] = []
        #: Every FakeSession engaged so far; each keeps its own counters.
        self.sessions: List[Any] = []
        #: What send_url serves and what upload_url received, ``{url: bytes}``.
        self.urls: Dict[str, bytes] = {}
        self.uploads: Dict[str, bytes] = {}

    def command_starting(self, session_id: str, number: int) -> Optional[ErrorSpec]:
        """Count a starting command, the ``number``-th of session ``session_id``; return
        the fault injected for it, if any. The caller holds :attr:`lock`."""
        self.commands_started += 1
        everywhere = self.command_faults.pop((None, self.commands_started), None)
        here = self.command_faults.pop((session_id, number), None)
        self.command_started.notify_all()
        return everywhere if everywhere is not None else here

    def match(self, command: Run, line: str, where: str) -> Optional[Rule]:
        """The first rule that answers ``line`` (counted as used), or None when the
        fallback answers it. Raises UnexpectedCommand when nothing may answer it."""
        if not self.rules and (self.handler is not None or not self.strict):
            return None  # nothing scripted: the fallback answers, no lock needed to know
        with self.lock:
            reasons = []
            for rule in self.rules:
                reason = rule.explain(line)
                if reason is None:
                    rule.call_count += 1
                    return rule
                reasons.append(reason)
            if self.handler is not None or not self.strict:
                return None
            message = unexpected_message(line, where, self.rules, reasons)
            raise UnexpectedCommand(message, command=command, reasons=reasons)

    def record_call(self, call: Call) -> int:
        """Record a finished command; returns its position in :attr:`calls`. The caller
        holds :attr:`lock`."""
        if not self.record:
            return -1
        self.calls.append(call)
        return len(self.calls) - 1

    def attach_error(self, position: int, error: BaseException) -> None:
        with self.lock:
            if position >= 0 and self.calls[position].error is None:
                self.calls[position] = self.calls[position]._replace(error=error)


def unexpected_message(line: str, where: str, rules: Sequence[Rule], reasons: Sequence[str]) -> str:
    lines = ["FakeProvider got a run command that no rule matches:", f"  {line}    ({where})"]
    if rules:
        lines.append("Rules (matched against the command line; the first match wins):")
        for number, (rule, reason) in enumerate(zip(rules, reasons), 1):
            lines.append(f"  {number}. {rule.describe()}: {reason}")
    else:
        lines.append("No rules are scripted.")
    lines.append("Script it with fake.on_run(...), or build FakeProvider(strict=False) "
                 "to answer unscripted runs with exit code 0.")
    return "\n".join(lines)
