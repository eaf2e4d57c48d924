"""One engaged fake machine: an in-memory filesystem whose ``run`` commands are
answered by the rules of :mod:`golem_tasks._fake`."""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ._driver import worker_name
from ._fake import BatchCall, Call, FakeState, RunOutput, encode_content, make_error
from ._output import sink_for
from .commands import (Command, CommandResult, DownloadBytes, DownloadFile, Run, SendBytes,
                       SendFile, SendUrl, UploadUrl, _remote_path)
from .errors import BatchCancelled, BatchTimeoutError, CommandExecutionError, ProviderLost
from .providers.base import ProviderInfo, SequentialSession, decode_download


class FakeSession(SequentialSession):
    """One engaged fake machine, made by ``FakeProvider.engage``.

    Transfers go to and from :attr:`files`, ``run`` commands are answered by the
    provider's rules. Use :meth:`read`, :meth:`read_json` and :meth:`write` (or the
    dict itself) in handlers and assertions.

    Attributes:
        files: the in-memory filesystem, ``{absolute path: bytes}``.
        released: ``release()`` was called.
        lost: the session is lost; every later command raises ``ProviderLost``.
        commands_started: how many commands it started.
    """

    def __init__(self, info: ProviderInfo, state: FakeState, files: Mapping[str, bytes]) -> None:
        super().__init__(info)
        self.files: Dict[str, bytes] = dict(files)
        self.released = False
        self.lost = False
        self.commands_started = 0
        self.in_command = False
        self._state = state
        # Set by cancel(), lose() and the provider's close(): ends any latency or hang.
        self._wake = threading.Event()
        self._busy = False
        self._batch = 0
        self._timeout: Optional[float] = None
        self._done: List[CommandResult] = []
        self._last_call: Optional[int] = None

    @property
    def id(self) -> str:
        return self.info.id

    def read(self, path: str) -> bytes:
        """The content of ``path``; KeyError when the session has no such file."""
        return self.files[path]

    def read_json(self, path: str) -> Any:
        return json.loads(self.files[path].decode("utf-8"))

    def write(self, path: str, content: Any) -> None:
        """Write bytes, a str (UTF-8) or a JSON-able object to ``path``."""
        self.files[_remote_path(path)] = encode_content(content)

    # -- the Session interface ---------------------------------------------------------

    def execute(self, commands: Sequence[Command], *,
                timeout: Optional[float] = None) -> List[CommandResult]:
        commands = tuple(commands)
        self._begin(timeout)
        try:
            gone = self._gone()
            if gone is not None:
                raise gone
            results = super().execute(commands, timeout=timeout)
        except BaseException as exc:
            self._finish(commands, timeout, error=exc)
            raise
        self._finish(commands, timeout, results=results)
        return results

    def cancel(self) -> None:
        super().cancel()
        self._wake.set()

    def release(self) -> None:
        with self._state.lock:
            self.released = True
            self._state.sessions_changed.notify_all()

    def __repr__(self) -> str:
        flags = "".join(f" {name}" for name in ("released", "lost") if getattr(self, name))
        return f"<FakeSession {self.id} files={len(self.files)}{flags}>"

    def maybe_lose(self) -> None:
        """Become lost once this session has run the commands ``lose_provider`` allowed
        (under the fake's lock)."""
        allowed = self._state.losses.get(self.id)
        if allowed is None:
            return
        if self.commands_started > allowed or (self.commands_started == allowed and not self.in_command):
            self.lose()

    def lose(self) -> None:
        """Make the session lost now, interrupting the command it is running."""
        self.lost = True
        self._wake.set()

    def run_command(self, command: Command, index: int, deadline: Optional[float]) -> CommandResult:
        with self._state.lock:
            self.commands_started += 1
            self.in_command = True
            self.maybe_lose()
            fault = self._state.command_starting(self.id, self.commands_started)
        try:
            gone = self._gone(command)
            if gone is not None:
                raise gone
            self._pause(self._state.latency * self._state.slowdowns.get(self.id, 1.0), command, deadline)
            if fault is not None:
                raise make_error(fault, f"injected failure of {command}", self.id)
            result = self._perform(command, index, deadline)
        except BaseException as exc:
            if isinstance(exc, ProviderLost):
                self.lost = True
            self._record(index, command, None, exc)
            raise
        self._record(index, command, result, None)
        self._done.append(result)
        return result

    # -- bookkeeping -------------------------------------------------------------------

    def _begin(self, timeout: Optional[float]) -> None:
        with self._state.lock:
            # Misuse by a scheduler is a bug to see at once, not a failure to retry.
            if self.released:
                raise RuntimeError(f"FakeSession {self.id} used after release()")
            if self._busy:
                raise RuntimeError(f"FakeSession {self.id} executes two batches at once")
            self._busy = True
            self._state.batches_started += 1
            self._batch = self._state.batches_started
        self._timeout = timeout
        self._done = []
        self._last_call = None

    def _finish(self, commands: Tuple[Command, ...], timeout: Optional[float],
                results: Sequence[CommandResult] = (),
                error: Optional[BaseException] = None) -> None:
        if isinstance(error, CommandExecutionError):
            results = error.results
            if error.exit_code is not None and self._last_call is not None:
                # A checked run that exited non-zero was recorded with its result; the
                # base class raised afterwards, so give that Call its error too.
                self._state.attach_error(self._last_call, error)
        elif error is not None:
            results = self._done
        record = BatchCall(self._batch, self.id, commands, timeout, tuple(results), error)
        with self._state.lock:
            if self._state.record:
                self._state.batches.append(record)
            self.in_command = False
            self._busy = False

    def _record(self, index: int, command: Command, result: Optional[CommandResult],
                error: Optional[BaseException]) -> None:
        call = Call(self.id, self._batch, index, command, result, error)
        with self._state.lock:
            self.in_command = False
            self._last_call = self._state.record_call(call)

    # -- doing the work ----------------------------------------------------------------

    def _pause(self, seconds: float, command: Command, deadline: Optional[float]) -> None:
        """Take ``seconds`` (math.inf: hang), ending early on cancel, loss or the deadline."""
        if seconds <= 0:
            return
        end = time.monotonic() + seconds
        timed_out = deadline is not None and deadline <= end
        if timed_out:
            end = deadline  # type: ignore[assignment]
        wait = None if math.isinf(end) else max(0.0, end - time.monotonic())
        if self._wake.wait(wait):
            raise self._interruption(command)
        if timed_out:
            raise BatchTimeoutError(f"batch timed out after {self._timeout:g} s during {command}",
                                    provider=self.id)

    def _interruption(self, command: Command) -> BaseException:
        if self.cancelled.is_set():
            return BatchCancelled(f"batch cancelled during {command}", provider=self.id)
        gone = self._gone(command)
        assert gone is not None, "woken without being cancelled, lost or closed"
        return gone

    def _gone(self, command: Optional[Command] = None) -> Optional[ProviderLost]:
        """The error for a session that cannot work any more: lost, or its provider closed."""
        during = f" (during {command})" if command is not None else ""
        if self.lost:
            return ProviderLost(f"fake provider {self.id} is lost{during}", provider=self.id)
        if self._state.closed:
            return ProviderLost(f"the FakeProvider is closed{during}", provider=self.id)
        return None

    def _perform(self, command: Command, index: int, deadline: Optional[float]) -> CommandResult:
        if isinstance(command, Run):
            return self._run(command, index, deadline)
        if isinstance(command, SendFile):
            try:
                data = command.src.read_bytes()
            except OSError as exc:
                raise CommandExecutionError(f"cannot read local file {command.src}: {exc}") from exc
            self.files[command.dst] = data
            return CommandResult(command=command, index=index)
        if isinstance(command, SendBytes):
            self.files[command.dst] = command.data
            return CommandResult(command=command, index=index)
        if isinstance(command, SendUrl):
            with self._state.lock:
                served = self._state.urls.get(command.url)
            if served is None:
                raise CommandExecutionError(f"GET {command.url} answered HTTP 404 (the FakeProvider serves "
                                            f"only the URLs given as FakeProvider(urls={{...}}))")
            self.files[command.dst] = served
            return CommandResult(command=command, index=index)
        if isinstance(command, UploadUrl):
            data = self._remote_file(command.src)
            with self._state.lock:
                self._state.uploads[command.url] = data
            return CommandResult(command=command, index=index)
        if isinstance(command, DownloadFile):
            return self._download_file(command, index)
        if isinstance(command, DownloadBytes):
            raw = self._remote_file(command.src)
            if len(raw) > command.limit:
                raise CommandExecutionError(
                    f"{command.src} is {len(raw)} bytes, over the limit of {command.limit}")
            data = decode_download(command, index, raw, self.id)
            return CommandResult(command=command, index=index, data=data)
        raise CommandExecutionError(f"FakeSession cannot run a {type(command).__name__}")

    def _remote_file(self, path: str) -> bytes:
        try:
            return self.files[path]
        except KeyError:
            have = ", ".join(sorted(self.files)) or "no files"
            raise CommandExecutionError(
                f"{path} does not exist on {self.id} (it has: {have})") from None

    def _download_file(self, command: DownloadFile, index: int) -> CommandResult:
        raw = self._remote_file(command.src)
        try:
            command.dst.write_bytes(raw)
        except OSError as exc:
            raise CommandExecutionError(f"cannot write local file {command.dst}: {exc}") from exc
        return CommandResult(command=command, index=index, data=command.dst)

    def _run(self, command: Run, index: int, deadline: Optional[float]) -> CommandResult:
        where = f"session {self.id}, batch {self._batch}, command #{index}"
        rule = self._state.match(command, " ".join(command.args), where)
        if rule is None:
            handler = self._state.handler
            output = RunOutput() if handler is None else as_output(handler(command, self), handler)
            return _result(command, index, output)
        self._pause(rule.delay, command, deadline)
        if rule.error is not None:
            raise make_error(rule.error, f"scripted failure of {command}", self.id)
        if rule.handler is None:
            output = rule.output
        else:
            output = as_output(rule.handler(command, self), rule.handler)
        # Written even for a non-zero exit: a real program may leave files behind too.
        self.files.update(rule.files)
        return _result(command, index, output)


def as_output(value: Any, handler: Any) -> RunOutput:
    """Read what a handler returned: None, a str (its stdout), a RunOutput, or anything
    with ``exit_code`` (and maybe ``stdout``/``stderr``), such as a CommandResult."""
    if value is None:
        return RunOutput()
    if isinstance(value, str):
        return RunOutput(stdout=value)
    if isinstance(value, RunOutput):
        return value
    if hasattr(value, "exit_code"):
        return RunOutput(stdout=getattr(value, "stdout", ""), stderr=getattr(value, "stderr", ""),
                         exit_code=value.exit_code)
    raise TypeError(f"handler {worker_name(handler)}() returned {type(value).__name__}; "
                    f"return None, a str (stdout) or RunOutput(stdout=..., exit_code=...)")


def _result(command: Run, index: int, output: RunOutput) -> CommandResult:
    _play_output(command, output)
    return CommandResult(command=command, index=index, exit_code=output.exit_code,
                         stdout=output.stdout, stderr=output.stderr)


def _play_output(command: Run, output: RunOutput) -> None:
    """Hand the scripted output to the command's ``on_output`` line by line, stdout
    first, as a real provider would while the program runs (so users can unit-test
    their callbacks without a network)."""
    sink = sink_for(command)
    if sink is None:
        return
    try:
        for stream, text in (("stdout", output.stdout), ("stderr", output.stderr)):
            for line in text.splitlines(keepends=True):
                sink.write(stream, line)
    finally:
        sink.close()
