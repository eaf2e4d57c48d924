"""One ExeScript batch inside the local exe-unit: results, waiting, runtime events.

The waiting rules are those of yagna's exe-unit (``exe-unit/src/handlers/rpc.rs``,
``state.rs``), including its quirk: a wait for the *last* command is only woken when
that command finishes, so a batch that stopped early on an error answers a results
call without ``commandIndex`` only after the caller's whole timeout
(research/yagna-provider-side.md). Requestors that watch ``isBatchFinished`` are fine.
"""

from __future__ import annotations

import datetime
import queue
import threading
from typing import Any, Dict, Iterator, List, Optional


def utc_now() -> str:
    """RFC 3339 with ``Z``, as chrono's ``DateTime<Utc>`` expects."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def naive_utc_now() -> str:
    """chrono's ``NaiveDateTime``: ISO 8601 without an offset (used by runtime events)."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None).isoformat()


def command_name(command: Dict[str, Any]) -> str:
    """``"run"`` for ``{"run": {...}}``."""
    return next(iter(command))


class Batch:
    """The state of one batch: per-command results and subscribers to its events."""

    def __init__(self, batch_id: str, commands: List[Dict[str, Any]]) -> None:
        self.id = batch_id
        self.commands = commands
        self._results: List[Optional[Dict[str, Any]]] = [None] * len(commands)
        self._progress: List[Optional[str]] = [None] * len(commands)
        self._finished_index = -1  # highest index reported finished (the "notifier")
        self._cond = threading.Condition()
        self._subscribers: List["queue.Queue[Optional[Dict[str, Any]]]"] = []
        self.done = threading.Event()

    # -- producer side ---------------------------------------------------------------

    def started(self, index: int) -> None:
        self._emit(index, {"started": {"command": self.commands[index]}})

    def output(self, index: int, stream: str, text: Any) -> None:
        """A chunk of ``stdout``/``stderr`` for subscribers that stream it."""
        self._emit(index, {stream: text})

    def finished(
        self,
        index: int,
        return_code: int,
        message: Optional[str],
        stdout: Any = None,
        stderr: Any = None,
    ) -> None:
        result = {
            "result": "Ok" if return_code == 0 else "Error",
            "stdout": stdout,
            "stderr": stderr,
            "message": message,
            "eventDate": utc_now(),
        }
        with self._cond:
            self._results[index] = result
            self._finished_index = max(self._finished_index, index)
            self._cond.notify_all()
        self._emit(index, {"finished": {"return_code": return_code, "message": message}})

    def close(self) -> None:
        """No more commands will run (the batch ended or was stopped)."""
        self.done.set()
        with self._cond:
            self._cond.notify_all()

    # -- consumer side -----------------------------------------------------------------

    def wait(self, command_index: Optional[int], timeout: float) -> bool:
        """Wait until command ``command_index`` (default: the last) finished; False on timeout."""
        target = len(self.commands) - 1 if command_index is None else command_index
        with self._cond:
            return self._cond.wait_for(
                lambda: self._finished_index >= target, timeout=max(0.0, timeout)
            )

    def results(self, command_index: Optional[int] = None) -> List[Dict[str, Any]]:
        """Finished results up to ``command_index``; output only at that index (or all)."""
        last = len(self.commands) - 1 if command_index is None else command_index
        found = []
        with self._cond:
            for index, result in enumerate(self._results):
                if index > last or result is None:
                    break
                output = command_index is None or command_index == index
                found.append(
                    {
                        "index": index,
                        "result": result["result"],
                        "stdout": result["stdout"] if output else None,
                        "stderr": result["stderr"] if output else None,
                        "message": result["message"],
                        "isBatchFinished": index == last or result["result"] == "Error",
                        "eventDate": result["eventDate"],
                    }
                )
        return found

    def running_command(self) -> Optional[Dict[str, Any]]:
        """``ExeScriptCommandState`` of the first unfinished command, if the batch runs."""
        if self.done.is_set():
            return None
        with self._cond:
            for index, result in enumerate(self._results):
                if result is None:
                    command = self.commands[index]
                    name = command_name(command)
                    body = command[name] or {}
                    params: Optional[List[str]] = None
                    if name == "run":
                        params = [body.get("entry_point", "")] + list(body.get("args") or [])
                    elif name == "transfer":
                        params = [body.get("from", ""), body.get("to", "")]
                    elif name == "start":
                        params = list(body.get("args") or [])
                    return {
                        "command": name.capitalize(),
                        "progress": self._progress[index],
                        "params": params,
                    }
        return None

    def subscribe(self, until: threading.Event) -> Iterator[Dict[str, Any]]:
        """Runtime events from now on (no replay, as in yagna) until ``until`` is set."""
        events: "queue.Queue[Optional[Dict[str, Any]]]" = queue.Queue()
        with self._cond:
            self._subscribers.append(events)
        try:
            while not until.is_set():
                try:
                    event = events.get(timeout=0.5)
                except queue.Empty:
                    continue
                if event is not None:
                    yield event
        finally:
            with self._cond:
                self._subscribers.remove(events)

    def _emit(self, index: int, kind: Dict[str, Any]) -> None:
        event = {"batch_id": self.id, "index": index, "timestamp": naive_utc_now(), "kind": kind}
        with self._cond:
            for subscriber in self._subscribers:
                subscriber.put(event)
