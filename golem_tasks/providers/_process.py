"""The requestor's end of a session's agent (:mod:`._agent`): start it, run commands
through it, kill what they started, stop it. And the tail of a command's output.

A session's stdout and stderr are two pipes this side creates once and reads; their
write ends travel to the agent over its socket, which hands them to every command as
its 1 and 2, so the output never passes through the agent. A command has ended, with
all it wrote in the pipes, when the agent says so: every process it started is dead by
then. Everything happens in the calling thread with one ``poll()``: no helper threads.
POSIX only.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import select
import signal
import socket
import subprocess
import tempfile
import termios
import threading
import time
from pathlib import Path
from typing import IO, Any, Callable, Dict, Mapping, Optional, Sequence

#: Bytes of stdout and of stderr kept per program (the last ones).
OUTPUT_CAP = 1024 * 1024

_READ_CHUNK = 64 * 1024
_MAX_MESSAGE = 1 << 20
_KILL = marshal.dumps({"kill": True})
_STOP = marshal.dumps({"stop": True})

#: Seconds the agent gets to start, and to answer a kill, before it counts as lost.
START_PATIENCE = 60.0
KILL_PATIENCE = 10.0

#: The agent's source, run with ``python -I -S -c``: no file needs to be visible inside.
AGENT_SOURCE = (Path(__file__).parent / "_agent.py").read_text(encoding="utf-8")

#: What every agent is told besides its own settings: the ioctl that counts a pipe's
#: unread bytes (it differs between architectures; the agent imports no termios).
_PROTOCOL = {"fionread": termios.FIONREAD}

#: Hears every chunk read from a pipe, as it is read (live output, issue 3 §4).
Listener = Callable[[bytes], None]


class AgentLost(Exception):
    """The agent died or stopped answering: the session cannot run commands any more."""


class Tail:
    """The last :data:`OUTPUT_CAP` bytes of a stream fed chunk by chunk (no thread);
    every chunk also goes to ``listener`` as it is fed."""

    def __init__(self, listener: Optional[Listener] = None) -> None:
        self.dropped = 0
        self._data = bytearray()
        self._listener = listener

    def feed(self, chunk: bytes) -> None:
        self._data += chunk
        if self._listener is not None:
            self._listener(chunk)
        if len(self._data) > 2 * OUTPUT_CAP:  # trim in bulk: appends stay cheap
            self._trim()

    def _trim(self) -> None:
        excess = len(self._data) - OUTPUT_CAP
        if excess > 0:
            del self._data[:excess]
            self.dropped += excess

    def text(self) -> str:
        """The output decoded as UTF-8 (bad bytes replaced)."""
        self._trim()
        return bytes(self._data).decode("utf-8", errors="replace")


class Outcome:
    """How a command ended.

    Attributes:
        exit_code: the program's exit code, negative for the signal that killed it;
            None when it could not start.
        failure: why it could not start (``strerror``), else None.
        in_time: False when the deadline passed and the command was killed.
    """

    def __init__(self, exit_code: Optional[int], failure: Optional[str], in_time: bool) -> None:
        self.exit_code = exit_code
        self.failure = failure
        self.in_time = in_time


def _spawn(prefix: Sequence[str], python: str, config: Mapping[str, Any], env: Mapping[str, str],
           cwd: Optional[str]) -> "tuple[socket.socket, subprocess.Popen[bytes], IO[bytes]]":
    """Start the agent script; returns our socket end, the process, its stderr file."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    settings = dict(config, fd=theirs.fileno(), **_PROTOCOL)
    argv = [*prefix, python, "-I", "-S", "-c", AGENT_SOURCE, marshal.dumps(settings).hex()]
    # A file, not a pipe: nobody reads while the agent runs, and it must never block.
    errors = tempfile.TemporaryFile(prefix="golem_tasks-agent-")
    try:
        # A session of its own: killing its group ends bwrap and so the whole sandbox.
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=errors, stderr=errors,
                                pass_fds=(theirs.fileno(),), env=dict(env), cwd=cwd, start_new_session=True)
    except BaseException:
        ours.close()
        errors.close()
        raise
    finally:
        theirs.close()
    return ours, proc, errors


def _read_errors(errors: IO[bytes]) -> str:
    with contextlib.suppress(OSError, ValueError):
        errors.seek(0)
        return errors.read().decode("utf-8", "replace").strip()
    return ""


class Agent:
    """A session's agent; one command at a time (plus :meth:`kill` from any thread).

    Made by :meth:`start` (a process of its own, e.g. inside bwrap) or by
    :meth:`Zygote.spawn` (forked by the provider's zygote).
    """

    def __init__(self, sock: socket.socket, proc: "Optional[subprocess.Popen[bytes]]" = None,
                 errors: Optional[IO[bytes]] = None) -> None:
        self._sock = sock
        self._proc = proc
        self._errors = errors
        self._send_lock = threading.Lock()
        self._lost = False
        self._out_r = self._err_r = -1
        # Non-blocking for good: a message the poller announced is one recv(), with no
        # timeout to set first; waits with a deadline poll this alone.
        sock.setblocking(False)
        self._sock_poller = select.poll()
        self._sock_poller.register(sock.fileno(), select.POLLIN)
        try:
            hello = self._receive(time.monotonic() + START_PATIENCE)
        except BaseException:
            self.stop()
            raise
        if not hello.get("ready"):
            reason = hello.get("error") or self._stderr() or "it exited at once"
            self.stop()
            raise AgentLost(str(reason).strip())
        #: The port of the agent's outbound forwarder inside its sandbox (None: it has none).
        self.relay_port: Optional[int] = hello.get("relay")
        # The session's output pipes, made once: a command then costs no pipe() and no
        # descriptor passing, and wakes this side once (its exit message) instead of at
        # each pipe's end of file as well.
        self._out_r, out_w = os.pipe()
        self._err_r, err_w = os.pipe()
        try:
            for fd in (self._out_r, self._err_r):
                os.set_blocking(fd, False)
            self._send(marshal.dumps({"outputs": True}), (out_w, err_w))
        except AgentLost:
            self.stop()
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        # poll(), not a selector: no epoll descriptor to make; one poller for the session.
        self._poller = select.poll()
        for fd in (self._out_r, self._err_r, self._sock.fileno()):
            self._poller.register(fd, select.POLLIN)

    @classmethod
    def start(cls, prefix: Sequence[str], python: str, config: Mapping[str, Any],
              env: Mapping[str, str], cwd: Optional[str] = None) -> "Agent":
        """Start an agent process.

        Args:
            prefix: what runs the interpreter: the bwrap command line up to ``--``, or nothing.
            python: the interpreter that runs the agent.
            config: the agent's settings (see ``_agent.setup``).
            env: the environment of the agent itself (commands get their own).
            cwd: the agent's working directory on the host.

        Raises:
            AgentLost: it could not start (the reason from its stderr); OSError from exec.
        """
        return cls(*_spawn(prefix, python, config, env, cwd))

    def _stderr(self) -> str:
        return "" if self._errors is None else _read_errors(self._errors)

    def _receive(self, deadline: Optional[float]) -> Dict[str, Any]:
        """The agent's next message; AgentLost when it died or the deadline passed."""
        while True:
            try:
                data = self._sock.recv(_MAX_MESSAGE)
                break
            except BlockingIOError:
                pass
            except OSError as exc:
                raise self._lose(f"it did not answer ({exc})") from exc
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise self._lose("it did not answer in time")
            self._sock_poller.poll(None if left is None else max(1, int(left * 1000 + 1)))
        if not data:
            raise self._lose("it exited")
        return dict(marshal.loads(data))

    def _send(self, data: bytes, fds: Sequence[int] = ()) -> None:
        """Send one message (with ``fds`` attached), waiting while the socket is full;
        AgentLost when it cannot be sent."""
        deadline = time.monotonic() + KILL_PATIENCE
        with self._send_lock:
            while True:
                try:
                    try:
                        if fds:
                            socket.send_fds(self._sock, [data], list(fds))
                        else:
                            self._sock.send(data)
                        return
                    except BlockingIOError:
                        left = deadline - time.monotonic()
                    if left <= 0:
                        raise self._lose("its socket stayed full")
                    select.select([], [self._sock], [], left)
                except (OSError, ValueError) as exc:  # ValueError: select on a socket stop() closed
                    raise self._lose(f"cannot reach it ({exc})") from exc

    def _lose(self, why: str) -> AgentLost:
        self._lost = True
        details = self._stderr() if self._proc is not None and self._proc.poll() is not None else ""
        return AgentLost(why + (f": {details}" if details else ""))

    @property
    def alive(self) -> bool:
        return not self._lost and (self._proc is None or self._proc.poll() is None)

    def run(self, argv: Sequence[str], env: Mapping[str, str], cwd: str, deadline: Optional[float],
            out: Tail, err: Tail, cancelled: Optional[threading.Event] = None) -> Outcome:
        """Run one command, feeding its output to ``out``/``err`` as it comes.

        At ``deadline`` the command and all it started are killed (``in_time`` False).
        Interrupted (Ctrl-C), it kills them before the exception goes on.

        Raises:
            AgentLost: the agent died or stopped answering.
        """
        self._send(marshal.dumps({"run": list(argv), "env": dict(env), "cwd": cwd}))
        if cancelled is not None and cancelled.is_set():
            # A cancel that came before the run request reached the agent killed nothing
            # there: kill now, after the request, so the command cannot outlive it.
            self.kill()
        tails = {self._out_r: out, self._err_r: err}
        sock = self._sock.fileno()
        ended: Optional[Dict[str, Any]] = None
        in_time = True
        killed_at: Optional[float] = None  # when we asked the agent to kill (deadline passed)
        try:
            while ended is None:
                limit = deadline if killed_at is None else killed_at + KILL_PATIENCE
                timeout = None if limit is None else limit - time.monotonic()
                if timeout is not None and timeout <= 0:
                    if killed_at is not None:
                        raise self._lose("it did not answer a kill")
                    if any(fd == sock for fd, _ in self._poller.poll(0)):
                        # Its end is already here: it ended before this thread got to
                        # the deadline (a starved thread looks late), so it was in time.
                        ended = self._receive(time.monotonic() + KILL_PATIENCE)
                        continue
                    in_time = False
                    killed_at = time.monotonic()
                    self.kill()
                    continue
                for fd, _ in self._poller.poll(None if timeout is None else max(1, int(timeout * 1000 + 1))):
                    if fd == sock:
                        ended = self._receive(time.monotonic() + KILL_PATIENCE)
                    else:
                        self._read(fd, tails[fd])
        except BaseException:
            if ended is None and not self._lost:
                # Ctrl-C or an error while waiting: nothing the command started may outlive it.
                with contextlib.suppress(AgentLost):
                    self.kill()
                    self._receive(time.monotonic() + KILL_PATIENCE)
                    # What it wrote is not the next command's output, nor for anyone now.
                    self._drain({fd: Tail() for fd in tails})
            raise
        # Every process the command started is dead: all it wrote is in the pipes, and
        # the agent looked whether any of it is still unread.
        if ended.get("unread", True):
            self._drain(tails)
        if "failed" in ended:
            return Outcome(None, str(ended.get("reason")), in_time)
        return Outcome(int(ended.get("exit", -signal.SIGKILL)), None, in_time)

    def _read(self, fd: int, tail: Tail) -> int:
        """Feed one chunk of ``fd`` to ``tail``; its length (0: it had none)."""
        try:
            chunk = os.read(fd, _READ_CHUNK)
        except BlockingIOError:
            return 0
        if not chunk:
            # The agent died (only it holds the write ends); its socket says so next.
            self._poller.unregister(fd)
            return 0
        tail.feed(chunk)
        return len(chunk)

    def _drain(self, tails: Mapping[int, Tail]) -> None:
        """Read what is left in the pipes once nothing writes to them any more: a
        pipe that gives less than a whole chunk is empty."""
        for fd, _ in self._poller.poll(0):
            if fd in tails:
                while self._read(fd, tails[fd]) == _READ_CHUNK:
                    pass

    def kill(self) -> None:
        """Kill the running command and everything it started. Any thread, any time."""
        with contextlib.suppress(AgentLost):
            self._send(_KILL)

    def stop(self) -> None:
        """Kill everything the session runs and end the agent (and its sandbox). Idempotent."""
        if not self._lost:
            self._lost = True
            with contextlib.suppress(AgentLost):
                self._send(_STOP)
                self._receive(time.monotonic() + KILL_PATIENCE)  # once everything is dead
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # an agent that did not answer sees EOF
        self._sock.close()
        for fd in (self._out_r, self._err_r):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._out_r = self._err_r = -1
        if self._proc is not None:
            try:
                self._proc.wait(timeout=KILL_PATIENCE)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        if self._errors is not None:
            self._errors.close()


class Zygote:
    """The host sandbox's agent factory: one interpreter per provider that forks an
    agent per session, so an engage costs a fork instead of an interpreter start."""

    def __init__(self, python: str, env: Mapping[str, str], cwd: Optional[str] = None) -> None:
        self._sock, self._proc, self._errors = _spawn((), python, {"zygote": True}, env, cwd)
        self._lock = threading.Lock()
        self._sock.settimeout(START_PATIENCE)
        try:
            hello = self._sock.recv(_MAX_MESSAGE)
        except OSError:
            hello = b""
        if not hello or not marshal.loads(hello).get("ready"):
            reason = _read_errors(self._errors) or "it exited at once"
            self.stop()
            raise AgentLost(reason)

    def spawn(self, config: Mapping[str, Any]) -> Agent:
        """A new session agent with ``config``; AgentLost when the zygote is gone."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with self._lock:
                socket.send_fds(self._sock, [marshal.dumps({"spawn": {**config, **_PROTOCOL}})], [theirs.fileno()])
        except OSError as exc:
            ours.close()
            raise AgentLost(f"the zygote is gone ({exc}): {_read_errors(self._errors)}") from exc
        finally:
            theirs.close()
        return Agent(ours)

    def stop(self) -> None:
        """End the zygote (its agents end with their own sockets). Idempotent."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        try:
            self._proc.wait(timeout=KILL_PATIENCE)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        self._errors.close()
