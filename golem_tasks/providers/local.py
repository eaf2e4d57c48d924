"""The local provider: runs batches on this machine, offline. It is the default provider.

Each engaged session is a sandbox set up once, like a Golem VM: a fresh directory laid
out as ``/golem`` (``input``, ``output``, ``work`` and the declared volumes), mounts of
host directories, optionally an image's root file system, and a small agent process
(:mod:`._agent`) that starts each command. Programs run in a bubblewrap sandbox when
bwrap works here, otherwise directly on the host; see :mod:`._sandbox` for what each
kind isolates and the limits of the host kind.

Usage::

    with LocalProvider(volumes=("/golem/resource",)) as provider:
        session = provider.engage()
        session.execute([Run(("/bin/sh", "-c", "date > /golem/output/now"))], timeout=10)
        session.release()

Notes:
    * Only the last 1 MiB of a program's stdout and of its stderr are kept in memory
      (``_process.OUTPUT_CAP``); earlier output is dropped and a warning logged.
    * When a ``run`` ends, times out or is cancelled, everything it started is killed,
      ``setsid`` children included (the agent is their subreaper).
    * Linux only (bubblewrap, ``prctl``, ``posix_spawn``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import stat
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, AbstractSet, Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

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
from . import _process, _sandbox, images
from ._outbound_proxy import OutboundProxy
from .outbound import check_outbound
from ._sandbox import GOLEM_ROOT
from .base import Permit, Provider, ProviderInfo, SequentialSession, decode_download
from .mounts import Mount, MountsArg, check_mounts

__all__ = ["LocalProvider", "LocalSession", "Mount"]

if TYPE_CHECKING:  # pragma: no cover
    import requests

logger = logging.getLogger(__name__)


#: The interpreter that runs agents (the real file: a venv's link may sit in a hidden /tmp).
_PYTHON = os.path.realpath(sys.executable)

#: The agents' own environment; commands get theirs with each run.
_AGENT_ENV = {"PATH": _sandbox.VM_PATH, "LANG": "C.UTF-8"}

#: Settings every agent gets on top of its own; tests set ``{"pidfd": False}`` to run the
#: agent's SIGCHLD fallback for kernels without pidfd_open.
_AGENT_OVERRIDES: Dict[str, Any] = {}

#: The host sandbox's warning is logged once per process.
_host_warning = threading.Lock()
_host_warned = False


def _warn_host_once(reason: str) -> None:
    global _host_warned
    with _host_warning:
        if _host_warned:
            return
        _host_warned = True
    logger.warning("the local provider runs commands in the host sandbox, which isolates nothing: they see "
                   "this machine's files, processes and network and can signal this program (%s). "
                   "Install bubblewrap (apt-get install bubblewrap) to sandbox them.", reason)


class LocalProvider(Provider):
    """Sessions in sandboxes on this machine, each with its own /golem and agent process.

    Args:
        root: directory to create session directories in. Default: a new temporary
            directory, removed by :meth:`close` (unless ``keep``).
        sandbox: "bwrap", "host", or None to use bwrap when it works here and the
            host otherwise (the choice and its reason are logged; the host sandbox
            with a warning, once per process).
        network: let bwrap-sandboxed programs use the network (the host kind always can).
        outbound: URLs commands may reach (``["https://pypi.org"]``), the same list a
            Golem demand's manifest carries: their hosts and ports, through a filtering
            proxy named by ``http_proxy``/``https_proxy``; any other host is refused with
            a 403 naming the manifest. In bwrap that is enforced (no other network); in
            the host sandbox it is only advice to programs that honour the variables.
            Not together with ``network=True``.
        volumes: more writable directories under /golem, e.g. ``("/golem/resource",)``.
        mounts: host directories shown at chosen paths: a mapping of sandbox path to
            host directory (read-only), or :class:`Mount` values (``writable=True`` to
            let commands and sends change it).
        pass_env: names of variables passed from this process's environment to every
            command, e.g. ``("HTTP_PROXY",)``; nothing else of it is passed.
        image: a GVMI file or a root file system directory to run commands in (bwrap
            only). A registry tag or hash is not available offline: it is logged and
            commands run on this machine's root file system.
        image_cache: where unpacked images are kept (default ``~/.cache/golem_tasks/images``).
        min_mem_gib: the memory a job asks of providers: each command process may
            allocate at most this much (``RLIMIT_DATA``).
        min_cpu_threads: the threads a job asks of providers: each session's commands
            run on this many CPUs (``sched_setaffinity``), sessions spread over the CPUs.
        keep: leave session directories in place, for debugging.

    Raises:
        ConfigurationError: a bad argument, or ``sandbox="bwrap"`` where bwrap does not work.

    Attributes:
        sandbox: the sandbox kind in use, "bwrap" or "host".
        root: the directory holding the session directories.
        writable_dirs: the directories under /golem programs and uploads may write.
        mounts: the mounts, checked.
        image: the image commands run in, None for this machine's root file system.
    """

    def __init__(self, root: Optional[PathLike] = None, *, sandbox: Optional[str] = None,
                 network: bool = False, volumes: Sequence[str] = (), mounts: MountsArg = None,
                 pass_env: Sequence[str] = (), image: Optional[PathLike] = None,
                 image_cache: Optional[PathLike] = None, min_mem_gib: Optional[float] = None,
                 min_cpu_threads: Optional[int] = None, keep: bool = False,
                 outbound: Optional[Sequence[str]] = None) -> None:
        self.outbound = check_outbound(outbound)
        if self.outbound and network:
            raise ConfigurationError("network=True opens the whole network, outbound= only its URLs: "
                                     "give one of them (outbound= alone for the declared hosts)")
        self._proxy: Optional[OutboundProxy] = None
        if isinstance(pass_env, str):
            raise ConfigurationError(f"pass_env must be a sequence of names, got the string {pass_env!r}: "
                                     f"use pass_env=({pass_env!r},)")
        self.pass_env = tuple(pass_env)
        self.writable_dirs = _sandbox.check_volumes(volumes)
        self.memory_limit = _memory_limit(min_mem_gib)
        self.cpu_threads = _threads(min_cpu_threads)
        self.network = bool(network)
        self.keep = bool(keep)
        self.image: Optional[images.Image] = None
        spec = None if image is None else os.fspath(image)
        if spec is not None and not images.looks_like_path(spec):
            logger.info("image %s is a registry name; the local provider runs commands on this machine's "
                        "root file system (pass a GVMI file or a directory to run in an image)", spec)
            spec = None
        self.sandbox, self._bwrap, reason = _sandbox.choose(sandbox, self.network)
        if spec is not None and self.sandbox != "bwrap":
            raise ConfigurationError(f"image={spec!r} needs the bwrap sandbox, but {reason}; "
                                     f"install bubblewrap (apt-get install bubblewrap)")
        if spec is not None:
            cache = None if image_cache is None else os.fspath(image_cache)
            self.image = images.open_image(spec, cache)
        image_volumes = [v for v in (self.image.volumes if self.image else ()) if v.startswith("/golem/")]
        self.writable_dirs = _sandbox.check_volumes(self.writable_dirs + tuple(image_volumes))
        self.mounts = check_mounts(mounts, reserved=self.writable_dirs)
        if self.sandbox == "host":
            logger.info("local provider runs programs in the host sandbox: %s", reason)
            _warn_host_once(reason)
        else:
            logger.info("local provider runs programs in the %s sandbox: %s", self.sandbox, reason)
        # One session per CPU: local programs compete for the same cores.
        self.default_max_workers = os.cpu_count() or 1
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
        if self.outbound:
            # A short directory of its own: a unix socket path holds at most 107 bytes.
            self._proxy = OutboundProxy(self.outbound, unix_path=os.path.join(
                tempfile.mkdtemp(prefix="golem_tasks-outbound-"), "proxy.sock"))
        self._zygote_lock = threading.Lock()
        self._zygote_process: Optional[_process.Zygote] = None
        if self.sandbox == "host":
            try:  # now, once: the first engage need not wait for an interpreter to start
                self._zygote()
            except (OSError, _process.AgentLost) as exc:
                self.close()
                raise ConfigurationError(f"cannot start the host sandbox's agent: {exc}") from exc

    @property
    def workdir(self) -> str:
        """The working directory of commands, as they see it."""
        if self.image is not None and self.image.workdir:
            return self.image.workdir
        return GOLEM_ROOT + "/work"

    def engage(self, *, exclude: AbstractSet[str] = frozenset(), abort: Optional[threading.Event] = None,
               permit: Optional[Permit] = None) -> "LocalSession":
        """Create a fresh sandbox and return its session (ids never repeat). A sandbox
        costs nothing, so ``permit`` is not waited on."""
        if abort is not None and abort.is_set():
            raise ProviderError("engaging a local sandbox was aborted")
        with self._lock:
            if self._closed:
                raise ProviderError("this LocalProvider is closed; create a new one")
            self._count += 1
            while f"local-{self._count}" in exclude:
                self._count += 1
            number = self._count
        session_id = f"local-{number}"
        try:
            directory = _sandbox.make_session_dir(str(self.root), session_id, self.writable_dirs)
        except OSError as exc:
            raise ProviderError(f"cannot create a sandbox directory in {self.root}: {exc}") from exc
        layout = _sandbox.Layout(directory, self.writable_dirs, self.mounts)
        try:
            agent = self._start_agent(layout, number)
        except BaseException:
            _sandbox.remove_tree(directory)
            raise
        info = ProviderInfo(id=session_id, name=f"{session_id} ({self.sandbox})", properties={
            "sandbox": self.sandbox, "directory": directory, "writable_dirs": self.writable_dirs,
            "network": self.network or self.sandbox == "host", "outbound": self.outbound,
            "image": self.image.hash or self.image.root if self.image else None},
            volumes=layout.writable_dirs())
        session = LocalSession(self, info, layout, agent)
        with self._lock:
            closed = self._closed
            if not closed:
                self._sessions[session_id] = session
        if closed:
            session.release()
            raise ProviderError("this LocalProvider was closed while a session was engaged")
        return session

    def _start_agent(self, layout: _sandbox.Layout, number: int) -> _process.Agent:
        config: Dict[str, Any] = {"pidns": self.sandbox == "bwrap", "memory": self.memory_limit,
                                  "cpus": _cpus(self.cpu_threads, number), **_AGENT_OVERRIDES}
        try:
            if self.sandbox == "host":
                os.makedirs(os.path.join(layout.session_dir, "home"), exist_ok=True)
                return self._zygote().spawn(config)
            image_root = self.image.root if self.image else None
            socket_path = self._proxy.unix_path if self._proxy is not None else None
            prefix = _sandbox.bwrap_argv(str(self._bwrap), layout, self.network, image_root, socket_path)
            if socket_path is not None:
                config["relay"] = _sandbox.RELAY_SOCKET
            if image_root is not None:
                config["chroot"] = _sandbox.IMAGE_ROOT
            return _process.Agent.start(prefix, _PYTHON, config, _AGENT_ENV)
        except (OSError, _process.AgentLost) as exc:
            raise ProviderError(f"cannot start the {self.sandbox} sandbox: {exc}") from exc

    def _zygote(self) -> _process.Zygote:
        with self._zygote_lock:
            if self._zygote_process is None:
                # cwd "/": the zygote lives as long as the provider and is no session's
                # process, so it holds no directory of the sandboxes open.
                self._zygote_process = _process.Zygote(_PYTHON, _AGENT_ENV, "/")
            return self._zygote_process

    def proxy_env(self, agent: _process.Agent) -> Dict[str, str]:
        """The proxy variables of a session's commands: its agent's forwarder in bwrap,
        the proxy itself on the host; {} without ``outbound=``."""
        if self._proxy is None:
            return {}
        port = agent.relay_port if self.sandbox == "bwrap" else self._proxy.port
        url = f"http://127.0.0.1:{port}"
        names = ("http_proxy", "https_proxy", "all_proxy")
        return {**{n: url for n in names}, **{n.upper(): url for n in names}, "no_proxy": "", "NO_PROXY": ""}

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
        with self._zygote_lock:
            zygote, self._zygote_process = self._zygote_process, None
        if zygote is not None:
            zygote.stop()
        proxy, self._proxy = self._proxy, None
        if proxy is not None:
            proxy.close()
            shutil.rmtree(os.path.dirname(str(proxy.unix_path)), ignore_errors=True)
        if self.keep:
            logger.info("local provider kept its sandbox directories in %s", self.root)
        elif self._owns_root:
            _sandbox.remove_tree(str(self.root))

    def __repr__(self) -> str:
        return f"<LocalProvider sandbox={self.sandbox!r} root={str(self.root)!r}>"


class LocalSession(SequentialSession):
    """One sandbox with its agent; runs one command at a time (see :class:`SequentialSession`).

    Attributes:
        directory: the host directory that programs see as /golem.
    """

    def __init__(self, provider: LocalProvider, info: ProviderInfo, layout: _sandbox.Layout,
                 agent: _process.Agent) -> None:
        super().__init__(info)
        self.directory = layout.session_dir
        self._layout = layout
        self._provider = provider
        self._agent = agent
        self._lock = threading.Lock()  # guards _running and _released against cancel()/release()
        self._idle = threading.Condition(self._lock)
        self._running = False
        self._released = False
        # What every command sees, worked out once: a command with no env= and no
        # pass_env= gets exactly this (see _sandbox.environment).
        self._host = provider.sandbox == "host"
        self._workdir = layout.rewrite(provider.workdir) if self._host else provider.workdir
        self._proxy_env = provider.proxy_env(agent)
        self._env = {**_sandbox.environment(provider.sandbox, layout, self._workdir, {},
                                            provider.image.env if provider.image else None), **self._proxy_env}

    @property
    def usable(self) -> bool:
        return not self._released and self._agent.alive

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
        """Kill the running program and all it started now; the running batch raises
        ``BatchCancelled``. Safe from any thread, any number of times."""
        self.cancelled.set()
        with self._lock:
            if self._running:
                self._agent.kill()

    def release(self) -> None:
        """Kill anything still running, tear the sandbox down and delete the session
        directory (unless the provider keeps them). Idempotent. A batch running
        meanwhile, or executed afterwards, raises ``BatchCancelled``."""
        self.cancel()
        with self._lock:
            if self._released:
                return
            self._released = True
            # A run in another thread was just killed: let it take the agent's answer.
            self._idle.wait_for(lambda: not self._running, timeout=_process.KILL_PATIENCE)
        self._agent.stop()
        if not self._provider.keep:
            _sandbox.remove_tree(self.directory)
        self._provider._forget(self)

    # -- run --------------------------------------------------------------------

    def _run(self, command: Run, index: int, deadline: Optional[float]) -> CommandResult:
        provider = self._provider
        layout = self._layout
        argv = [layout.rewrite(arg) for arg in command.args] if self._host else list(command.args)
        env = self._env
        if provider.pass_env or command.env_dict:
            env = _sandbox.environment(provider.sandbox, layout, self._workdir, command.env_dict,
                                       provider.image.env if provider.image else None, provider.pass_env)
            env.update(self._proxy_env)  # outbound=: the filtering proxy wins over any other
        sink = _output.sink_for(command)
        try:
            out_listener, err_listener = _listeners(sink)
            stdout, stderr = _process.Tail(out_listener), _process.Tail(err_listener)
            with self._lock:  # cancel() either sees this run or has already set `cancelled`
                if self.cancelled.is_set():
                    raise BatchCancelled("batch cancelled", provider=self.info.id)
                self._running = True
            try:
                outcome = self._agent.run(argv, env, self._workdir, deadline, stdout, stderr, cancelled=self.cancelled)
            except _process.AgentLost as exc:
                if self.cancelled.is_set():
                    raise BatchCancelled(f"batch cancelled; killed {command}", provider=self.info.id) from exc
                raise ProviderLost(f"the {provider.sandbox} sandbox's agent was lost: {exc}",
                                   provider=self.info.id) from exc
            finally:
                with self._lock:
                    self._running = False
                    self._idle.notify_all()
            out, err = _text(command, stdout, "stdout"), _text(command, stderr, "stderr")
            if sink is not None:
                sink.flush()
        finally:
            if sink is not None:
                sink.close()
        if self.cancelled.is_set():
            raise BatchCancelled(f"batch cancelled; killed {command}", provider=self.info.id)
        if not outcome.in_time:
            raise BatchTimeoutError(f"batch timed out; killed {command} and every process it started",
                                    provider=self.info.id)
        if outcome.failure is not None:
            raise _not_started(command, index, outcome.failure)
        return CommandResult(command=command, index=index, exit_code=int(outcome.exit_code or 0),
                             stdout=out, stderr=err)

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
        writable = self._layout.writable_dirs()
        if not any(dst.startswith(directory + "/") for directory in writable):
            raise CommandExecutionError(
                f"cannot write {dst}: files can only be sent into {', '.join(writable)} "
                f"(declare more with LocalProvider(volumes=...) or writable LocalProvider(mounts=...))")
        target = str(self._layout.to_host(dst))
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
        host = self._layout.to_host(remote)
        if host is None:
            raise CommandExecutionError(f"cannot download {remote}: the local provider serves only "
                                        f"files under /golem and in mounts")
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
        found = self._layout.root_of(remote)
        top = os.path.realpath(found[1] if found else self.directory)
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


def _memory_limit(min_mem_gib: Optional[float]) -> Optional[int]:
    if min_mem_gib is None:
        return None
    if isinstance(min_mem_gib, bool) or not isinstance(min_mem_gib, (int, float)) or not min_mem_gib > 0:
        raise ConfigurationError(f"min_mem_gib must be a positive number of GiB or None, got {min_mem_gib!r}")
    return int(min_mem_gib * 2**30)


def _threads(min_cpu_threads: Optional[int]) -> Optional[int]:
    if min_cpu_threads is None:
        return None
    if isinstance(min_cpu_threads, bool) or not isinstance(min_cpu_threads, int) or min_cpu_threads < 1:
        raise ConfigurationError(f"min_cpu_threads must be a positive whole number or None, "
                                 f"got {min_cpu_threads!r}")
    return min_cpu_threads


def _cpus(threads: Optional[int], number: int) -> Optional[List[int]]:
    """The CPUs of session ``number`` (1, 2, ...): ``threads`` of them, sessions taking
    turns over the CPUs this process may use; None when that is all of them anyway."""
    if threads is None or not hasattr(os, "sched_getaffinity"):
        return None
    usable = sorted(os.sched_getaffinity(0))
    if threads >= len(usable):
        return None
    start = (number - 1) * threads
    return [usable[(start + i) % len(usable)] for i in range(threads)]


def _listeners(sink: Optional[_output.OutputSink]) -> Tuple[Optional[_process.Listener],
                                                             Optional[_process.Listener]]:
    if sink is None:
        return None, None
    return functools.partial(sink.feed, "stdout"), functools.partial(sink.feed, "stderr")


def _text(command: Run, tail: _process.Tail, name: str) -> str:
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
