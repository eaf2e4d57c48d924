"""SIGTERM and SIGHUP during a job clean up exactly as Ctrl-C does (issue 9 item 3).

``kill``, systemd, CI cancellation and container stops send SIGTERM; a closed terminal
sends SIGHUP. Python's default for both is to die at once, with no ``finally`` run, so
agreements stayed approved and the allocation held. While a job runs in the main
thread, :func:`job_signals` turns them into :class:`Terminated`, a
``KeyboardInterrupt``: every Ctrl-C cleanup path applies (the job is cancelled, the
``with Golem`` block terminates agreements, accepts due invoices, releases the
allocation). When the job ends the previous handlers are back.

If ``Terminated`` ends the program, the process then ends as the signal would have
ended it (status -15 / 143 for SIGTERM): the signal is delivered again, with its
default action, once the interpreter has cleaned up. Handlers someone else installed
(a Python function, or SIG_IGN as ``nohup`` sets for SIGHUP) are left alone.

Also here: a Golem still open when the interpreter exits is shut down, before the
interpreter waits for the threads such a Golem keeps (:func:`track`).
"""

from __future__ import annotations

import atexit
import concurrent.futures.thread  # noqa: F401 - its exit hook must be registered before ours
import contextlib
import logging
import os
import signal
import sys
import threading
import weakref
from types import FrameType
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

logger = logging.getLogger(__name__)

#: The signals that mean "stop" and become :class:`Terminated`.
SIGNALS: Tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))

Handler = Union[Callable[[int, Optional[FrameType]], Any], int, signal.Handlers, None]


class Terminated(KeyboardInterrupt):
    """The process got SIGTERM or SIGHUP while a job ran; the job was stopped as by
    Ctrl-C. Catch ``KeyboardInterrupt`` to handle both.

    Attributes:
        signum: the signal's number.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum

    def __reduce__(self) -> Any:
        return (type(self), (self.signum,))


class _Installed:
    """The handlers in place while jobs run in the main thread (one owner: this module)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.previous: Dict[int, Handler] = {}
        self.raised = False

    def enter(self) -> None:
        with self.lock:
            self.depth += 1
            if self.depth > 1:
                return
            self.raised = False
            for signum in SIGNALS:
                current = signal.getsignal(signum)
                if current == signal.SIG_DFL:  # only the default: a program's own handler stays
                    self.previous[signum] = current
                    signal.signal(signum, _raise_terminated)

    def exit(self) -> None:
        with self.lock:
            self.depth -= 1
            if self.depth > 0:
                return
            for signum, handler in self.previous.items():
                if signal.getsignal(signum) is _raise_terminated:
                    signal.signal(signum, handler)
            self.previous.clear()


_installed = _Installed()


def _raise_terminated(signum: int, frame: Optional[FrameType]) -> None:
    # Once: a second signal while the first one's cleanup runs would cut that cleanup
    # short and leak what it is releasing. SIGKILL is there for the impatient.
    if _installed.raised:
        logger.warning("%s received again; still cleaning up after the first one", signal.Signals(signum).name)
        return
    _installed.raised = True
    logger.warning("%s received: stopping the job and cleaning up as for Ctrl-C", signal.Signals(signum).name)
    raise Terminated(signum)


@contextlib.contextmanager
def job_signals() -> Iterator[None]:
    """Around a job: in the main thread, SIGTERM and SIGHUP raise :class:`Terminated`
    there until the job ends; elsewhere (signals reach only the main thread) it does
    nothing. Nested and interleaved jobs share one installation."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _installed.enter()
    try:
        yield
    finally:
        _installed.exit()


def _redeliver() -> None:
    """At exit: if an unhandled :class:`Terminated` ended the program, die of its signal
    with the default action, so the parent sees -15 (143), not 1 or SIGINT's 130."""
    error = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    if not isinstance(error, Terminated) or _interactive():
        return  # an interactive session showed the error and went on: it did not die of it
    # Callbacks registered before this module was imported (logging's among them) would
    # run after this one: do what matters of them here, flush logs and the std streams.
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed pipe must not stop the exit status
            pass
    signal.signal(error.signum, signal.SIG_DFL)
    os.kill(os.getpid(), error.signum)


def _interactive() -> bool:
    """A REPL, ``python -i`` or an IPython/Jupyter session: they record every error shown
    in ``sys.last_value`` and carry on."""
    if hasattr(sys, "ps1") or sys.flags.interactive:
        return True
    shell = sys.modules.get("IPython")
    return shell is not None and getattr(shell, "get_ipython", lambda: None)() is not None


atexit.register(_redeliver)  # registered first, so it runs after every later atexit callback

# -- Golems still open at exit ---------------------------------------------------------

_open: "weakref.WeakSet[Any]" = weakref.WeakSet()
_open_lock = threading.Lock()


def track(golem: Any) -> None:
    """Shut ``golem`` down at interpreter exit if it is still open then (held weakly:
    a Golem that is garbage collected is not kept alive)."""
    with _open_lock:
        _open.add(golem)


def _shutdown_open() -> None:
    with _open_lock:
        golems = list(_open)
        _open.clear()
    for golem in golems:
        if getattr(golem, "_shutdown", True):
            continue
        logger.warning("a Golem was still open at exit; shutting it down (use `with Golem(...)`)")
        try:
            golem.shutdown(wait=True, cancel_futures=True)
        except Exception:  # the interpreter is exiting: report, do not stop the others
            logger.exception("shutting down a Golem at exit failed")


def _register_exit_hook() -> None:
    # Before the interpreter joins non-daemon threads (the pool's workers would wait
    # for work forever), so not a plain atexit callback; threading runs these in
    # reverse order of registration, this one before concurrent.futures' own.
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        try:
            register(_shutdown_open)
            return
        except RuntimeError:  # already shutting down
            pass
    atexit.register(_shutdown_open)


_register_exit_hook()
