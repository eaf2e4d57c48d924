"""The local provider: runs batches on this machine, offline. It is the default provider.

Each session is a fresh directory laid out like a Golem VM's ``/golem`` (``input``,
``output``, ``work`` and the declared volumes). Programs run in a bubblewrap sandbox
when bwrap works here, otherwise directly on the host; see :mod:`._sandbox` for what
each kind isolates and the limits of the host kind.

Usage::

    with LocalProvider(volumes=("/golem/resource",)) as provider:
        session = provider.engage()
        session.execute([Run(("/bin/sh", "-c", "date > /golem/output/now"))], timeout=10)
        session.release()

Notes:
    * Only the last 1 MiB of a program's stdout and of its stderr are kept in memory
      (``_process.OUTPUT_CAP``); earlier output is dropped and a warning logged.
    * When a ``run`` ends, whatever it left running in its process group is killed.
      In the host sandbox a program that leaves its process group (``setsid``) escapes.
    * POSIX only (process groups, ``os.killpg``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, AbstractSet, Any, Callable, Dict, Optional, Sequence, Tuple, Union

from .. import _output
from ..batch import PathLike
from ..commands import (Command, CommandResult, DownloadBytes, DownloadFile, Run, SendBytes, SendFile, SendUrl,
                        UploadUrl)
from ..errors import (
    BatchCancelled,
    BatchTimeoutError,
    CommandExecutionError,
    ConfigurationError,
    GolemTasksError,
    ProviderError,
    ProviderLost,
)
from . import _process, _sandbox
from .base import Provider, ProviderInfo, SequentialSession, decode_download

if TYPE_CHECKING:  # pragma: no cover
    import requests

logger = logging.getLogger(__name__)

#: How bwrap reports a program it could not execute (it then exits with 1).
_BWRAP_EXEC_FAILED = re.compile(r"\Abwrap: execvp (.*): (.*)\Z")


class LocalProvider(Provider):
    """Sessions in sandbox directories on this machine.

    Args:
        root: directory to create session directories in. Default: a new temporary
            directory, removed by :meth:`close` (unless ``keep``).
        sandbox: "bwrap", "host", or None to use bwrap when it works here and the
            host otherwise (the choice and its reason are logged at INFO).
        network: let bwrap-sandboxed programs use the network (the host kind always can).
        volumes: more writable directories under /golem, e.g. ``("/golem/resource",)``.
        keep: leave session directories in place, for debugging.

    Raises:
        ConfigurationError: a bad argument, or ``sandbox="bwrap"`` where bwrap does not work.

    Attributes:
        sandbox: the sandbox kind in use, "bwrap" or "host".
        root: the directory holding the session directories.
        writable_dirs: the /golem directories programs and uploads may write.
    """

    def __init__(self, root: Optional[PathLike] = None, *, sandbox: Optional[str] = None,
                 network: bool = False, volumes: Sequence[str] = (), keep: bool = False) -> None:
        self.writable_dirs = _sandbox.check_volumes(volumes)
        self.network = bool(network)
        self.keep = bool(keep)
        self.sandbox, self._bwrap, reason = _sandbox.choose(sandbox, self.network)
        logger.info("local provider runs programs in the %s sandbox: %s", self.sandbox, reason)
        # One session per CPU: local programs compete for the same cores.
        self.default_max_workers = os.cpu_count() or 1
        #: Wait for programs with a pidfd in the running thread (cheap); else with threads.
        self.pidfd = _process.pidfd_works()
        self._owns_root = root is None
        try:
            if root is None:
                self.root = Path(tempfile.mkdtemp(prefix="golem_tasks-local-"))
            else:
                self.root = Path(root)
                self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot create the sandbox root {root}: {exc}") from exc
        self._lock = threading.Lock()
        self._count = 0
        self._sessions: Dict[str, LocalSession] = {}
        self._closed = False

    def engage(self, *, exclude: AbstractSet[str] = frozenset(),
               abort: Optional[threading.Event] = None) -> "LocalSession":
        """Create a fresh sandbox directory and return its session (ids never repeat)."""
        if abort is not None and abort.is_set():
            raise ProviderError("engaging a local sandbox was aborted")
        with self._lock:
            if self._closed:
                raise ProviderError("this LocalProvider is closed; create a new one")
            self._count += 1
            while f"local-{self._count}" in exclude:
                self._count += 1
            session_id = f"local-{self._count}"
            try:
                directory = _sandbox.make_session_dir(str(self.root), session_id, self.writable_dirs)
            except OSError as exc:
                raise ProviderError(f"cannot create a sandbox directory in {self.root}: {exc}") from exc
            info = ProviderInfo(id=session_id, name=f"{session_id} ({self.sandbox})", properties={
                "sandbox": self.sandbox, "directory": directory, "writable_dirs": self.writable_dirs,
                "network": self.network or self.sandbox == "host"}, volumes=self.writable_dirs)
            session = LocalSession(self, info, directory)
            self._sessions[session_id] = session
        return session

    def _forget(self, session: "LocalSession") -> None:
        with self._lock:
            self._sessions.pop(session.info.id, None)

    def close(self) -> None:
        """Release every session still engaged and remove the temporary root. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            sessions = list(self._sessions.values())
        for session in sessions:
            session.release()
        if self.keep:
            logger.info("local provider kept its sandbox directories in %s", self.root)
        elif self._owns_root:
            _sandbox.remove_tree(str(self.root))

    def __repr__(self) -> str:
        return f"<LocalProvider sandbox={self.sandbox!r} root={str(self.root)!r}>"


class LocalSession(SequentialSession):
    """One sandbox directory; runs one command at a time (see :class:`SequentialSession`).

    Attributes:
        directory: the host directory that programs see as /golem.
    """

    def __init__(self, provider: LocalProvider, info: ProviderInfo, directory: str) -> None:
        super().__init__(info)
        self.directory = directory
        self._provider = provider
        self._lock = threading.Lock()  # guards _proc and _released against cancel()/release()
        self._proc: Optional[subprocess.Popen] = None
        self._released = False

    def run_command(self, command: Command, index: int, deadline: Optional[float]) -> CommandResult:
        try:
            if isinstance(command, Run):
                return self._run(command, index, deadline)
            return self._transfer(command, index, deadline)
        except GolemTasksError:
            raise  # BatchTimeoutError is a TimeoutError, hence an OSError: keep it as it is
        except OSError as exc:
            raise CommandExecutionError(f"{command.describe()} failed: {exc}",
                                        command=command, index=index) from exc

    def cancel(self) -> None:
        """Kill the running program's process group now; the running batch raises
        ``BatchCancelled``. Safe from any thread, any number of times."""
        self.cancelled.set()
        with self._lock:
            if self._proc is not None:
                _process.kill_group(self._proc.pid)

    def release(self) -> None:
        """Kill anything still running and delete the sandbox directory (unless the
        provider keeps them). Idempotent. A batch running meanwhile, or executed
        afterwards, raises ``BatchCancelled``."""
        self.cancel()
        with self._lock:
            if self._released:
                return
            self._released = True
        if not self._provider.keep:
            _sandbox.remove_tree(self.directory)
        self._provider._forget(self)

    # -- run --------------------------------------------------------------------

    def _run(self, command: Run, index: int, deadline: Optional[float]) -> CommandResult:
        sink = _output.sink_for(command)
        try:
            proc = self._start(command)
            out_listener, err_listener = _listeners(sink)
            if self._provider.pidfd:
                stdout, stderr = _process.Tail(out_listener), _process.Tail(err_listener)
                try:
                    in_time = _process.collect(proc, deadline, stdout, stderr)
                finally:  # also on KeyboardInterrupt: nothing may outlive the run
                    self._finish(proc, None)
                    _process.drain(proc, stdout, stderr)
            else:
                exited = None
                try:
                    exited = _process.exit_event(proc)
                    stdout = _process.OutputTail(proc.stdout, out_listener)  # type: ignore[arg-type,assignment]
                    stderr = _process.OutputTail(proc.stderr, err_listener)  # type: ignore[arg-type,assignment]
                    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                    in_time = exited.wait(timeout)
                finally:  # also on KeyboardInterrupt: nothing may outlive the run
                    self._finish(proc, exited)
            out, err = _text(command, stdout, "stdout"), _text(command, stderr, "stderr")
            if sink is not None:
                sink.flush()
        finally:
            if sink is not None:  # a reader thread stuck on an escaped process stays silent now
                sink.close()
        return self._outcome(command, index, proc, in_time, out, err)

    def _outcome(self, command: Run, index: int, proc: subprocess.Popen, in_time: bool,
                 out: str, err: str) -> CommandResult:
        provider = self.info.id
        if self.cancelled.is_set():
            raise BatchCancelled(f"batch cancelled; killed {command}", provider=provider)
        if not in_time:
            raise BatchTimeoutError(f"batch timed out; killed {command} and every process it started",
                                    provider=provider)
        failed = _BWRAP_EXEC_FAILED.match(err.strip()) if self._provider.sandbox == "bwrap" else None
        if failed and proc.returncode == 1:
            raise _not_started(command, index, failed.group(2))
        return CommandResult(command=command, index=index, exit_code=proc.returncode,
                             stdout=out, stderr=err)

    def _start(self, command: Run) -> subprocess.Popen:
        provider = self._provider
        if provider.sandbox == "bwrap":
            argv = _sandbox.bwrap_prefix(str(provider._bwrap), self.directory, provider.writable_dirs,
                                         provider.network) + list(command.args)
        else:
            argv = _sandbox.host_argv(command.args, self.directory)
        env = _sandbox.environment(provider.sandbox, self.directory, command.env_dict)
        cwd = os.path.join(self.directory, "work")
        with self._lock:  # cancel() either sees this process or has already set `cancelled`
            if self.cancelled.is_set():
                raise BatchCancelled("batch cancelled", provider=self.info.id)
            try:
                # A new session makes the program a process-group leader: one killpg()
                # then reaches everything it started (bwrap and the sandbox included).
                self._proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    cwd=cwd, env=env, start_new_session=True)
            except OSError as exc:
                if provider.sandbox == "bwrap":
                    raise ProviderLost(f"cannot start bwrap: {exc}", provider=self.info.id) from exc
                raise _not_started(command, None, exc.strerror or str(exc)) from exc
            return self._proc

    def _finish(self, proc: subprocess.Popen, exited: Optional[threading.Event]) -> None:
        """Kill what is left of the program's process group, then reap the program."""
        # The leader is not reaped until proc.wait() below, so its pid (the group id)
        # cannot have been reused: the kill can only reach this program's processes.
        _process.kill_group(proc.pid)
        if exited is not None:
            exited.wait()  # outside the lock: cancel() must never wait for a process
        with self._lock:
            proc.wait()
            self._proc = None

    # -- transfers ----------------------------------------------------------------

    def _transfer(self, command: Command, index: int, deadline: Optional[float] = None) -> CommandResult:
        data = None
        if isinstance(command, (SendBytes, SendFile)):
            self._send(command)
        elif isinstance(command, SendUrl):
            self._send_url(command, deadline)
        elif isinstance(command, UploadUrl):
            self._upload_url(command, deadline)
        elif isinstance(command, DownloadFile):
            data = self._download_file(command)
        elif isinstance(command, DownloadBytes):
            with self._open_remote(command.src) as source:
                raw = source.read(command.limit + 1)
            if len(raw) > command.limit:
                raise CommandExecutionError(
                    f"{command.src} is larger than the download limit of {command.limit} bytes; "
                    f"pass a larger limit or use download_file()")
            data = decode_download(command, index, raw, self.info.id)
        else:
            raise CommandExecutionError(f"the local provider cannot run {type(command).__name__} commands")
        return CommandResult(command=command, index=index, data=data)

    def _writable_target(self, dst: str) -> str:
        """The host path for ``dst``, parents created, refused outside the writable dirs."""
        writable = self._provider.writable_dirs
        if not any(dst.startswith(directory + "/") for directory in writable):
            raise CommandExecutionError(
                f"cannot write {dst}: files can only be sent into {', '.join(writable)} "
                f"(declare more with LocalProvider(volumes=...))")
        target = str(_sandbox.to_host(dst, self.directory))
        self._check_inside(os.path.dirname(target), dst)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        return target

    def _send_url(self, command: SendUrl, deadline: Optional[float]) -> None:
        # Like a Golem exe-unit, the download happens outside the sandbox, so it works
        # even when the sandbox has no network.
        target = self._writable_target(command.dst)
        with _http_call("GET", command.url, deadline, stream=True) as response:
            _write_atomically(target, lambda out: shutil.copyfileobj(response.raw, out))

    def _upload_url(self, command: UploadUrl, deadline: Optional[float]) -> None:
        with self._open_remote(command.src) as source:
            _http_call("PUT", command.url, deadline, data=source).close()

    def _send(self, command: Union[SendBytes, SendFile]) -> None:
        target = self._writable_target(command.dst)
        if isinstance(command, SendBytes):
            _write_atomically(target, lambda out: out.write(command.data))
            return
        try:
            source = command.src.open("rb")
        except OSError as exc:
            raise CommandExecutionError(f"cannot read the local file {command.src}: {exc.strerror}") from exc
        with source:
            mode = os.fstat(source.fileno()).st_mode & 0o777
            _write_atomically(target, lambda out: shutil.copyfileobj(source, out), mode)

    def _download_file(self, command: DownloadFile) -> Path:
        dst = command.dst
        if not dst.is_absolute() and os.path.normpath(dst).split(os.sep)[0] == os.pardir:
            raise CommandExecutionError(
                f"refusing to download to {dst}: the relative path leaves the current directory; "
                f"give an absolute path")
        with self._open_remote(command.src) as source:
            if dst.parent != Path():
                dst.parent.mkdir(parents=True, exist_ok=True)
            mode = os.fstat(source.fileno()).st_mode & 0o777
            _write_atomically(str(dst), lambda out: shutil.copyfileobj(source, out), mode)
        return dst

    def _open_remote(self, remote: str) -> IO[bytes]:
        """Open a regular file under /golem for reading, refusing links out of the sandbox."""
        host = _sandbox.to_host(remote, self.directory)
        if host is None:
            raise CommandExecutionError(f"cannot download {remote}: the local provider serves only "
                                        f"files under /golem")
        real = self._check_inside(host, remote)
        try:
            # O_NONBLOCK: a FIFO planted by the program must not hang the download.
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError as exc:
            raise CommandExecutionError(f"{remote} does not exist on the provider") from exc
        except OSError as exc:
            raise CommandExecutionError(f"cannot read {remote}: {exc.strerror}") from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise CommandExecutionError(f"cannot download {remote}: it is not a regular file")
        return os.fdopen(fd, "rb")

    def _check_inside(self, host_path: str, remote: str) -> str:
        """``host_path`` with symlinks resolved; refused when that leaves the session."""
        real = os.path.realpath(host_path)
        top = os.path.realpath(self.directory)
        if os.path.commonpath([real, top]) != top:
            raise CommandExecutionError(
                f"refusing {remote}: it resolves to {real}, outside the sandbox (through a symlink)")
        return real


def _http_call(method: str, url: str, deadline: Optional[float], **kwargs: Any) -> "requests.Response":
    """One HTTP request for a URL transfer; an answer other than 2xx fails the command."""
    import requests  # only URL transfers need it: keeps `import golem_tasks` light
    left = None if deadline is None else max(0.1, deadline - time.monotonic())
    # (connect, read) timeouts: a dead server must not outlive the batch's deadline.
    timeout = (min(10.0, left), left) if left is not None else (10.0, 300.0)
    try:
        response = requests.request(method, url, timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        raise CommandExecutionError(f"{method} {url} failed: {exc}") from exc
    if not 200 <= response.status_code < 300:
        response.close()
        raise CommandExecutionError(f"{method} {url} answered HTTP {response.status_code} {response.reason}")
    response.raw.decode_content = True  # a gzip-encoded answer is stored decoded, as curl --compressed does
    return response


def _listeners(sink: Optional[_output.OutputSink]) -> Tuple[Optional[_process.Listener],
                                                             Optional[_process.Listener]]:
    if sink is None:
        return None, None
    return functools.partial(sink.feed, "stdout"), functools.partial(sink.feed, "stderr")


def _text(command: Run, tail: Union[_process.OutputTail, _process.Tail], name: str) -> str:
    text = tail.text()
    if tail.dropped:
        logger.warning("%s: dropped the first %d bytes of %s (only the last %d are kept)",
                       command, tail.dropped, name, _process.OUTPUT_CAP)
    return text


def _not_started(command: Run, index: Optional[int], reason: str) -> CommandExecutionError:
    return CommandExecutionError(
        f"cannot start {command.args[0]!r}: {reason} (is it installed, on PATH and executable?)",
        command=command, index=index, exit_code=127)


def _write_atomically(target: str, fill: Callable[[IO[bytes]], object], mode: int = 0o644) -> None:
    """Write a new file at ``target``: fill a temporary file in the same directory, then
    rename it over ``target``, so an existing symlink there is replaced, never followed."""
    directory, name = os.path.split(target)
    fd, temporary = tempfile.mkstemp(dir=directory or ".", prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            fill(out)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
