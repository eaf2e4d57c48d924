"""``/activity-api/v1``, requestor side: activities, batches, results (protocol §3)."""

from __future__ import annotations

import contextlib
import json
import socket
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

import requests

from .models import ActivityState, ExeScriptCommandResult, RuntimeEvent
from .exescript import script_text
from .._http.retry import CallKind
from .._http.sse import iter_lines, iter_messages
from .._http.transport import Transport, check_timeout, json_string, list_of, path_id

PREFIX = "/activity-api/v1"


def _activity_id(data: Any) -> str:
    # The object form is what this client sends; the bare-string form is also legal.
    return json_string(data["activityId"] if isinstance(data, Mapping) else data)


class ActivityApi:
    """One method per activity endpoint; reached as ``YagnaClient.activity``."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def create_activity(self, agreement_id: str, *, timeout: float = 30.0) -> str:
        """Start an activity on an approved agreement (A1); return its id.

        The daemon waits up to ``timeout`` s for the exe-unit to come up.
        """
        return self._t.call(CallKind.CREATE, "POST", f"{PREFIX}/activity",
                            params={"timeout": check_timeout(timeout)}, body={"agreementId": agreement_id},
                            server_timeout=timeout, parse=_activity_id)

    def exec_script(self, activity_id: str, commands: Sequence[Mapping[str, Any]]) -> str:
        """Send a batch of ExeScript commands (A2); return the batch id.

        Never repeated once sent: a second batch would run the commands twice.
        """
        return self._t.call(CallKind.CREATE, "POST", f"{PREFIX}/activity/{path_id(activity_id)}/exec",
                            body={"text": script_text(commands)}, parse=json_string)

    def get_exec_batch_results(self, activity_id: str, batch_id: str, *, timeout: float = 5.0,
                               command_index: Optional[int] = None) -> List[ExeScriptCommandResult]:
        """The results of a batch so far (A3).

        Without ``command_index`` the daemon waits up to ``timeout`` s for the last
        command, then answers every finished result (a partial list is normal; the batch
        is done when a result has ``is_batch_finished``). With ``command_index=k`` it
        waits for command k and answers results up to k, output only for k; ``[]`` means
        k did not finish within ``timeout`` (the daemon's 408).
        """
        params = {"timeout": check_timeout(timeout), "commandIndex": command_index}
        answers: Optional[Dict[int, Any]] = {408: []} if command_index is not None else None
        path = f"{PREFIX}/activity/{path_id(activity_id)}/exec/{path_id(batch_id)}"
        return self._t.call(CallKind.POLL, "GET", path, params=params, server_timeout=timeout,
                            answers=answers, parse=list_of(ExeScriptCommandResult.from_json))

    def stream_exec_batch_results(self, activity_id: str, batch_id: str, *,
                                  read_timeout: float = 40.0) -> Iterator[RuntimeEvent]:
        """Live events of a running batch over SSE (A3 with ``Accept: text/event-stream``).

        The request is sent now; the events come as the iterator is consumed. There is
        no replay (events before the request are lost) and the daemon keeps the stream
        open after the batch ends, so stop on the last ``finished`` event (or any with a
        non-zero ``return_code``) and close the iterator. Treat the polled results as
        authoritative. ``read_timeout`` should exceed the daemon's 15 s ping interval.
        """
        return iter(self.open_exec_batch_stream(activity_id, batch_id, read_timeout=read_timeout))

    def open_exec_batch_stream(self, activity_id: str, batch_id: str, *,
                               read_timeout: float = 40.0) -> "RuntimeEventStream":
        """:meth:`stream_exec_batch_results` as an object another thread can
        :meth:`~RuntimeEventStream.close` while one iterates it."""
        path = f"{PREFIX}/activity/{path_id(activity_id)}/exec/{path_id(batch_id)}"
        response = self._t.open_stream(CallKind.READ, path, read_timeout=read_timeout)
        return RuntimeEventStream(self._t, response, f"GET {path}")

    def get_state(self, activity_id: str) -> ActivityState:
        """The activity's state (A4): ``Ready`` to run commands, ``Terminated`` when gone."""
        return self._t.call(CallKind.READ, "GET", f"{PREFIX}/activity/{path_id(activity_id)}/state",
                            parse=ActivityState.from_json)

    def destroy_activity(self, activity_id: str, *, timeout: float = 10.0) -> None:
        """End the activity (A7); its provider stops the exe-unit."""
        self._t.call(CallKind.CLEANUP, "DELETE", f"{PREFIX}/activity/{path_id(activity_id)}",
                     params={"timeout": check_timeout(timeout)}, server_timeout=timeout)


class RuntimeEventStream:
    """An open SSE stream of runtime events. One thread iterates it; :meth:`close`,
    from any thread, ends that iteration at once, even one blocked waiting for the next
    event (the socket is shut down: closing the response alone would not wake a read
    in progress), and the connection is not reused."""

    def __init__(self, transport: Transport, response: requests.Response, where: str) -> None:
        self._t = transport
        self._response = response
        self._where = where
        self._closed = False

    def __iter__(self) -> Iterator[RuntimeEvent]:
        where = self._where
        try:
            for message in iter_messages(iter_lines(self._response.iter_content(chunk_size=None))):
                if self._closed:
                    return
                if message.event == "runtime":
                    yield self._t.parse(where, lambda text: RuntimeEvent.from_json(json.loads(text)),
                                        message.data)
        except requests.RequestException as exc:
            if not self._closed:
                raise self._t.translate(exc, where) from exc
        except (OSError, ValueError, AttributeError):
            if not self._closed:  # only close() breaks the response from under urllib3 like this
                raise
        finally:
            self._response.close()

    def close(self) -> None:
        """End the stream now. Idempotent; safe from any thread."""
        self._closed = True
        sock = getattr(getattr(self._response.raw, "connection", None), "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        else:  # nothing to wake (not connected, or a test double): just release it
            self._response.close()
