"""Running a program as a process group: wait for it without polling, kill all of it,
and keep the tail of its output.

The program is started with ``start_new_session=True``, so it leads a new process
group and one ``killpg`` reaches everything it started (forks, orphans, and with
bwrap the whole sandbox). POSIX only.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from typing import IO, Callable, Optional

#: Bytes of stdout and of stderr kept per program (the last ones).
OUTPUT_CAP = 1024 * 1024

_READ_CHUNK = 64 * 1024


#: Hears every chunk read from a pipe, as it is read (live output, issue 3 §4).
Listener = Callable[[bytes], None]


class OutputTail:
    """Reads a pipe to its end in a thread, keeping only the last :data:`OUTPUT_CAP` bytes
    and handing every chunk to ``listener`` as it arrives.

    Attributes:
        dropped: how many bytes from the start were dropped.
    """

    def __init__(self, pipe: IO[bytes], listener: Optional[Listener] = None) -> None:
        self.dropped = 0
        self._cap = OUTPUT_CAP
        self._data = bytearray()
        self._listener = listener
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True,
                                        name="golem_tasks-output")
        self._thread.start()

    def _read(self, pipe: IO[bytes]) -> None:
        with pipe, contextlib.suppress(OSError):
            while True:
                chunk = os.read(pipe.fileno(), _READ_CHUNK)
                if not chunk:
                    return
                self._data += chunk
                if self._listener is not None:
                    self._listener(chunk)
                if len(self._data) > 2 * self._cap:  # trim in bulk: appends stay cheap
                    self._trim()

    def _trim(self) -> None:
        excess = len(self._data) - self._cap
        if excess > 0:
            del self._data[:excess]
            self.dropped += excess

    def text(self) -> str:
        """The output decoded as UTF-8 (bad bytes replaced); call once the group is dead."""
        # Everything holding the pipe was killed, so EOF is near. Only a process that
        # left the group (setsid, host sandbox only) can keep it open: do not wait for it.
        self._thread.join(timeout=1.0)
        self._trim()
        return bytes(self._data).decode("utf-8", errors="replace")


def exit_event(proc: subprocess.Popen) -> threading.Event:
    """An event set when ``proc`` exits.

    ``proc`` is left unreaped (``WNOWAIT``): until the caller reaps it with
    ``proc.wait()``, its pid, which is also its process group id, cannot be reused, so
    :func:`kill_group` cannot hit a stranger's group.
    """
    exited = threading.Event()

    def wait() -> None:
        try:
            if hasattr(os, "waitid"):
                os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            else:  # pragma: no cover - platforms without waitid(): reaps, see above
                proc.wait()
        except OSError:
            pass  # already reaped (e.g. SIGCHLD ignored): it has exited either way
        finally:
            exited.set()

    threading.Thread(target=wait, daemon=True, name="golem_tasks-wait").start()
    return exited


def kill_group(pgid: int) -> None:
    """SIGKILL every process of the group; a group already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


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
        self._trim()
        return bytes(self._data).decode("utf-8", errors="replace")


def pidfd_works() -> bool:
    """pidfd_open (Linux >= 5.3, Python >= 3.9) may still be refused by a seccomp filter."""
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


def collect(proc: subprocess.Popen, deadline: Optional[float], out: Tail, err: Tail) -> bool:
    """Read the program's output and wait for its exit in the calling thread.

    A pidfd becomes readable when the program exits without reaping it, so one
    select() covers both pipes and the exit: no helper threads, which makes a short
    command several times cheaper than with :class:`OutputTail`. ``cancel()`` needs no
    wake-up channel: it kills the group, and the exit ends the wait.

    Returns False when ``deadline`` passed first. The caller kills the group and
    reaps the program afterwards; :func:`drain` then reads what is left.
    """
    pidfd = os.pidfd_open(proc.pid)
    selector = selectors.DefaultSelector()
    try:
        selector.register(proc.stdout, selectors.EVENT_READ, out)  # type: ignore[arg-type]
        selector.register(proc.stderr, selectors.EVENT_READ, err)  # type: ignore[arg-type]
        selector.register(pidfd, selectors.EVENT_READ, None)
        while True:
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                return False
            for key, _ in selector.select(timeout):
                if key.data is None:
                    return True
                chunk = os.read(key.fd, _READ_CHUNK)
                if chunk:
                    key.data.feed(chunk)
                else:
                    selector.unregister(key.fileobj)
    finally:
        selector.close()
        os.close(pidfd)


def drain(proc: subprocess.Popen, out: Tail, err: Tail, patience: float = 1.0) -> None:
    """Read what is left in the pipes once the group is dead. Only a process that left
    the group (setsid, host sandbox only) can keep a pipe open: do not wait for it."""
    deadline = time.monotonic() + patience
    with selectors.DefaultSelector() as selector:
        for pipe, tail in ((proc.stdout, out), (proc.stderr, err)):
            if pipe is not None and not pipe.closed:
                selector.register(pipe, selectors.EVENT_READ, tail)
        while selector.get_map() and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                chunk = os.read(key.fd, _READ_CHUNK)
                if chunk:
                    key.data.feed(chunk)
                else:
                    selector.unregister(key.fileobj)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
