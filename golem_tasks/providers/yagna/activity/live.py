"""Live output of a running batch, read from the daemon's event stream and handed to the
``on_output`` callbacks of its ``run`` commands (issue 3 §4).

``GET /activity/{id}/exec/{batch}`` with ``Accept: text/event-stream`` sends runtime
events (``started``, ``stdout``, ``stderr``, ``finished``) as the exe-unit produces them
(yagna-protocol.md §3.4), for commands captured as ``stream``. The daemon does not
replay: what a program printed before the subscription is lost. So the polled results
stay the authority: when the batch ends, the part of a command's final output its
callback was not given yet is handed over then, provided what it was given is the
beginning of that output (it is, unless the subscription came late).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import defaultdict
from typing import Callable, DefaultDict, Dict, List, Mapping, Optional, Sequence, Tuple

from ...._output import STREAMS, OutputSink, sink_for, streamed
from ....commands import CommandResult, Run
from ....errors import ApiError, CommandExecutionError
from .models import ExeScriptCommandResult, RuntimeEvent
from .api import ActivityApi, RuntimeEventStream
from .plan import EXIT_MARK, Step

logger = logging.getLogger(__name__)

#: Seconds to wait for the reading thread once its stream is closed. It is only slow
#: when the stream is still being opened; it delivers nothing after the batch anyway.
JOIN_PATIENCE = 5.0

_MARK_REST = re.compile(r"-?\d*\n?")


class LiveOutput:
    """Reads one batch's event stream in a thread until :meth:`finish`.

    Use :meth:`watch`, which returns None when no command of the batch wants output.
    """

    def __init__(self, api: ActivityApi, activity_id: str, batch_id: str, steps: Sequence[Step], *,
                 provider: str, read_timeout: float = 40.0) -> None:
        self._api, self._activity_id, self._batch_id = api, activity_id, batch_id
        self._steps = list(steps)
        self._provider = provider
        self._read_timeout = read_timeout
        self._sinks: Dict[int, OutputSink] = {}
        self._marks: Dict[int, Callable[[str], str]] = {}
        for index, step in enumerate(self._steps):
            sink = sink_for(step.command)
            if sink is not None:
                self._sinks[index] = sink
                if isinstance(step.command, Run) and not step.command.check:
                    self._marks[index] = ExitMarkFilter()
        self._last = max(self._sinks, default=-1)
        self._given: DefaultDict[Tuple[int, str], List[str]] = defaultdict(list)
        self._lock = threading.Lock()  # one delivery at a time; none once cut
        self._cut = False
        self._stream: Optional[RuntimeEventStream] = None
        self._thread = threading.Thread(target=self._watch, name="golem_tasks-live-output", daemon=True)
        self._thread.start()

    @classmethod
    def watch(cls, api: ActivityApi, activity_id: str, batch_id: str, steps: Sequence[Step], *,
              provider: str) -> Optional["LiveOutput"]:
        """Start watching the batch just sent, or None when nobody asked for its output."""
        if not streamed([step.command for step in steps]):
            return None
        return cls(api, activity_id, batch_id, steps, provider=provider)

    def finish(self, results: Mapping[int, ExeScriptCommandResult]) -> None:
        """The batch ended: stop reading, hand over what the stream missed of ``results``
        (the polled results; empty when the batch failed or was stopped), and end every
        callback's delivery. Returns with the reading thread gone."""
        with self._lock:
            self._cut = True
            stream = self._stream
        if stream is not None:
            stream.close()
        self._thread.join(JOIN_PATIENCE)
        try:
            for index, sink in self._sinks.items():
                result = results.get(index)
                if result is not None:
                    self._catch_up(index, sink, result)
        finally:
            for sink in self._sinks.values():
                sink.close()

    # -------------------------------------------------------------- the thread
    def _watch(self) -> None:
        try:
            stream = self._api.open_exec_batch_stream(self._activity_id, self._batch_id,
                                                      read_timeout=self._read_timeout)
        except ApiError as exc:
            self._missed(exc)
            return
        with self._lock:
            self._stream = stream
            if self._cut:
                stream.close()  # finish() came first; the loop below then ends at once
        try:
            for event in stream:
                if not self._take(event):
                    break
        except ApiError as exc:
            if not self._cut:
                self._missed(exc)
        finally:
            stream.close()

    def _take(self, event: RuntimeEvent) -> bool:
        """Deliver one event; False once the stream has nothing more for the callbacks."""
        if event.kind in STREAMS:
            text = event.output
            if text and event.index in self._sinks:
                self._give(event.index, event.kind, text)
        elif event.kind == "finished":
            # The batch stops at the first failure; past the last watched run nothing is ours.
            return event.index < self._last and event.return_code in (0, None)
        return not self._cut

    def _give(self, index: int, stream: str, text: str) -> None:
        with self._lock:
            if self._cut:
                return
            mark = self._marks.get(index)
            if mark is not None and stream == "stderr":
                text = mark(text)
            self._given[(index, stream)].append(text)
            self._sinks[index].write(stream, text)

    def _missed(self, exc: ApiError) -> None:
        logger.info("live output of batch %s on provider %s stops early (%s); the rest comes with its results",
                    self._batch_id, self._provider, exc)

    # ------------------------------------------------------------- catching up
    def _catch_up(self, index: int, sink: OutputSink, result: ExeScriptCommandResult) -> None:
        step = self._steps[index]
        try:
            final = step.finish(result, index) if result.ok else CommandResult(
                command=step.command, index=index, stdout=result.stdout or "", stderr=result.stderr or "")
        except CommandExecutionError:
            return  # the result itself is broken; the batch reports that
        for stream in STREAMS:
            text = getattr(final, stream)
            given = "".join(self._given.get((index, stream), ()))
            if len(text) > len(given) and text.startswith(given):
                sink.write(stream, text[len(given):])


class ExitMarkFilter:
    """Keeps the exit-code report of a ``check=False`` run (``\\n<EXIT_MARK><code>\\n``
    at the very end of its stderr, see ``plan``) away from the callback: text that
    may be the start of it is held back; the final result hands over what was not."""

    def __init__(self) -> None:
        self._pending = ""

    def __call__(self, text: str) -> str:
        text = self._pending + text
        cut = len(text)
        last = text.rfind("\n")
        # The report holds two line ends: it may start at the last one or the one before.
        for start in (text.rfind("\n", 0, last) if last > 0 else -1, last):
            if start >= 0 and _may_be_mark(text[start:]):
                cut = start
                break
        self._pending = text[cut:]
        return text[:cut]


def _may_be_mark(text: str) -> bool:
    head = "\n" + EXIT_MARK
    if len(text) <= len(head):
        return head.startswith(text)
    return text.startswith(head) and _MARK_REST.fullmatch(text[len(head):]) is not None
