"""Live output of ``run`` commands: how a provider hands chunks to ``on_output``.

A worker asks for live output per command, ``batch.run(..., on_output=callback)``
(issue 3 §4); ``callback(stream, text)`` gets ``"stdout"``/``"stderr"`` chunks while
the program runs. Every provider delivers through an :class:`OutputSink`, so they all
keep the same promises:

* text is UTF-8 decoded across chunk borders (invalid bytes replaced), so the chunks
  of a stream joined together equal the result's ``stdout``/``stderr`` whenever the
  provider kept all of it;
* calls for one command never overlap, even when stdout and stderr are read by
  different threads, so a callback needs no lock of its own;
* after the batch ends (its results are at the worker's ``yield``, or it failed) the
  callback is not called again;
* a callback that raises is logged once and not called again for that command: like
  an event consumer, it cannot break the batch.
"""

from __future__ import annotations

import codecs
import logging
import threading
from typing import Callable, Dict, List, Optional, Sequence

import attrs

from .batch import OutputCallback
from .commands import Command, CommandResult, Run
from .errors import CommandExecutionError

logger = logging.getLogger(__name__)

STREAMS = ("stdout", "stderr")


class OutputSink:
    """Delivers one command's output to its callback while the command runs.

    Feed it from any thread: :meth:`feed` for raw bytes, :meth:`write` for text a
    provider already decoded. :meth:`close` ends the delivery for good.
    """

    def __init__(self, callback: OutputCallback, command: Command) -> None:
        self._callback = callback
        self._command = command
        self._lock = threading.Lock()  # one call at a time, and none after close()
        self._decoders = {name: codecs.getincrementaldecoder("utf-8")(errors="replace") for name in STREAMS}
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def feed(self, stream: str, chunk: bytes) -> None:
        """Bytes the program wrote to ``stream``; a character cut in two waits for its end."""
        with self._lock:
            if not self._closed:
                self._deliver(stream, self._decoders[stream].decode(chunk))

    def write(self, stream: str, text: str) -> None:
        """Text the program wrote to ``stream``."""
        with self._lock:
            if not self._closed:
                self._deliver(stream, text)

    def flush(self) -> None:
        """The program ended: deliver what the decoders still hold (a cut-off character)."""
        with self._lock:
            for name, decoder in self._decoders.items():
                if not self._closed:
                    self._deliver(name, decoder.decode(b"", final=True))

    def close(self) -> None:
        """No call starts after this returns (one in progress is waited for). Idempotent."""
        with self._lock:
            self._closed = True

    def _deliver(self, stream: str, text: str) -> None:
        if not text:
            return
        try:
            self._callback(stream, text)
        except Exception:  # a bad callback must not break the batch (Future._invoke_callbacks)
            self._closed = True
            logger.exception("on_output callback %r of %s failed; it gets no more output of this command",
                             self._callback, self._command)


def sink_for(command: Command) -> Optional[OutputSink]:
    """The sink of a ``run`` that asked for live output, else None."""
    callback = getattr(command, "on_output", None)
    return None if callback is None else OutputSink(callback, command)


def streamed(commands: Sequence[Command]) -> bool:
    """True when some command of the batch asked for live output."""
    return any(getattr(command, "on_output", None) is not None for command in commands)


def tee(commands: Sequence[Command], report: Callable[[int, str, str], None]) -> List[Command]:
    """``commands`` with every ``run`` also reporting its output as ``report(index, stream,
    text)`` (for the ``CommandOutput`` event), after its own ``on_output`` if it has one."""
    teed: List[Command] = []
    for index, command in enumerate(commands):
        if isinstance(command, Run):
            command = attrs.evolve(command, on_output=_Tee(command.on_output, report, index, command))
        teed.append(command)
    return teed


class _Tee:
    """Calls the command's own callback, then reports; a failing own callback is logged
    and dropped here, so the reports (events) go on."""

    __slots__ = ("own", "report", "index", "command")

    def __init__(self, own: Optional[OutputCallback], report: Callable[[int, str, str], None], index: int,
                 command: Command) -> None:
        self.own, self.report, self.index, self.command = own, report, index, command

    def __call__(self, stream: str, text: str) -> None:
        if self.own is not None:
            try:
                self.own(stream, text)
            except Exception:
                logger.exception("on_output callback %r of %s failed; it gets no more output of this command",
                                 self.own, self.command)
                self.own = None
        self.report(self.index, stream, text)


def restore(results: Sequence[CommandResult], originals: Sequence[Command]) -> List[CommandResult]:
    """``results`` pointing at the worker's own commands again, not at their :func:`tee` copies."""
    by_index: Dict[int, Command] = dict(enumerate(originals))
    return [result if result.command is by_index.get(result.index, result.command)
            else attrs.evolve(result, command=by_index.get(result.index, result.command)) for result in results]


def restore_error(error: CommandExecutionError, originals: Sequence[Command]) -> None:
    """:func:`restore` for a failed batch's error."""
    if error.index is not None and 0 <= error.index < len(originals):
        error.command = originals[error.index]
    error.results = tuple(restore(error.results, originals))
