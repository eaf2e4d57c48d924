"""Child processes that die with the LocalNet that started them, even when it is SIGKILLed.

The daemon runs in a session of its own (so :meth:`YagnaDaemon.stop` can signal its
whole group), so nothing else ends it if its parent is killed without a chance to
clean up. Linux's ``PR_SET_PDEATHSIG`` (``prctl(2)``) makes the kernel send a signal
to the child when its parent dies. The "parent" is the *thread* that forked it, not
the process: a child spawned from a short-lived thread (a start-up helper, a worker
of the caller's pool) would be killed when that thread ends. So children are spawned
from a :class:`Spawner`, whose one thread lives until :meth:`Spawner.close`, after
the children were stopped.

Elsewhere (macOS, no ``prctl``) processes are spawned as before and stopping them
stays :meth:`stop`'s job alone.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Dict, Optional

#: ``PR_SET_PDEATHSIG`` from ``<linux/prctl.h>``.
PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> Optional[Callable[[], None]]:
    """A ``preexec_fn`` that makes the child get ``sig`` when its parent thread dies,
    or None where the kernel cannot do that."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
    except (OSError, AttributeError):
        return None
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def preexec() -> None:
        if prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(sig), 0, 0, 0) != 0:
            return  # best effort: stop() still ends the child
        # The parent may have died between the fork and the prctl: no signal then.
        if os.getppid() != parent:
            os._exit(1)

    return preexec


class Spawner:
    """Starts processes from one thread that outlives them (see the module docstring).

    Usage::

        spawner = Spawner("yagna")
        process = spawner.popen(["yagna", "service", "run"], start_new_session=True)
        ...  # stop and wait for the process
        spawner.close()
    """

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"golem_tasks-localnet-{name}")

    def popen(self, args: Any, **kwargs: Any) -> "subprocess.Popen[Any]":
        """``subprocess.Popen(args, **kwargs)``, killed if this process dies."""
        kwargs.setdefault("preexec_fn", die_with_parent())
        future: "Future[subprocess.Popen[Any]]" = self._pool.submit(_popen, args, kwargs)
        return future.result()

    def close(self) -> None:
        """End the spawning thread: call it once the processes it started have ended."""
        self._pool.shutdown(wait=True)


def _popen(args: Any, kwargs: Dict[str, Any]) -> "subprocess.Popen[Any]":
    # A plain function gives mypy one Popen type; Popen itself is generic in its mode.
    return subprocess.Popen(args, **kwargs)
