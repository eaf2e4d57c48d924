"""A local exe-unit: one activity's service on the daemon's GSB.

It does what yagna's ``exe-unit service-bus <activity> /local/activity`` does for the
daemon (research/yagna-provider-side.md):

* registers ``/public/exeunit/<activity>`` and answers ``Exec``,
  ``GetExecBatchResults``, ``StreamExecBatchResults``, ``GetRunningCommand``,
  ``GetActivityState`` and ``GetActivityUsage``;
* reports every state change to ``/local/activity/SetActivityState``;
* reports usage to ``/local/activity/SetActivityUsage`` once a second: that report is
  the heartbeat, without it the daemon marks the activity Unresponsive after 5 s and
  destroys it after 10 s.

Commands run in a :class:`.runtime.Runtime` over the local sandbox.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ...providers.local import LocalProvider
from .batch import Batch
from .gsb_wire import CALL_REPLY_BAD_REQUEST
from .gsb import GsbClient, GsbError, Stream
from .faults import NONE, Faults
from .runtime import Runtime, StatePair
from .script_rules import violation
from .transfer import Transfers

logger = logging.getLogger(__name__)

LOCAL_ACTIVITY = "/local/activity"

#: Seconds between usage reports (yagna's exe-unit: 1 s).
HEARTBEAT = 1.0


def _err(kind: str, message: Optional[str] = None) -> Dict[str, Any]:
    """``Err`` of yagna's ``RpcMessageError``: camelCase variants (``notFound``...)."""
    return {"Err": kind if message is None else {kind: message}}


class ExeUnit:
    """Serves one activity until :meth:`stop`.

    Args:
        activity_id, agreement_id: the activity and its agreement.
        gsb_url: the daemon's GSB router.
        node_id: the provider identity (caller of our GSB calls).
        sandbox: where ``deploy`` engages the session.
        on_lost: called once if the GSB connection drops (daemon gone) while serving.
        task_package: the agreement's image (``golem.srv.comp.task_package``), if any.
        outbound: the URLs of the agreement's manifest, and whether it asks for any URL.
        script: the manifest's ``compManifest.script``: batches with a command it does not
            allow are refused (:mod:`.script_rules`); None allows every command.
        faults: test knobs for the runtime (:class:`.faults.Faults`).
    """

    def __init__(
        self,
        activity_id: str,
        agreement_id: str,
        *,
        gsb_url: str,
        node_id: str,
        sandbox: LocalProvider,
        on_lost: Optional[Callable[["ExeUnit"], None]] = None,
        task_package: Optional[str] = None,
        outbound: Tuple[Tuple[str, ...], bool] = ((), False),
        script: Optional[Mapping[str, Any]] = None,
        faults: Faults = NONE,
    ) -> None:
        self.script = script
        self.activity_id = activity_id
        self.agreement_id = agreement_id
        self.started_at = time.monotonic()
        self.on_lost = on_lost
        self.service_id = f"/public/exeunit/{activity_id}"
        self._bus = GsbClient(gsb_url, caller=node_id, on_disconnect=self._disconnected)
        # Reports to /local/activity and GFTP transfers each use a connection of their
        # own: on the connection that also serves the requestor's calls, a call out stalls
        # 20-40 ms inside yagna (research/yagna-provider-side.md, "40 ms stalls"), and a
        # transfer stalled there once between its first message and the next.
        self._local = GsbClient(gsb_url, caller=node_id)
        self._transfer_bus = GsbClient(gsb_url, caller=node_id)
        self._transfers = Transfers(self._transfer_bus)
        self.runtime = Runtime(sandbox, self._transfers, self._report_state, task_package, outbound, faults)
        self._batches: Dict[str, Batch] = {}
        self._stopping = threading.Event()
        self._heartbeat: Optional[threading.Thread] = None
        self._state_lock = threading.Lock()

    @property
    def state(self) -> StatePair:
        return list(self.runtime.state)

    def usage(self) -> List[float]:
        """``[golem.usage.cpu_sec, golem.usage.duration_sec]`` so far."""
        return [round(self.runtime.cpu_seconds, 3), round(time.monotonic() - self.started_at, 3)]

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> "ExeUnit":
        """Connect, register and report ``Initialized`` (what create-activity waits for)."""
        try:
            self._local.connect()
            self._report_usage()
            self._transfer_bus.connect()
            self._bus.connect()
            self._bus.register(self.service_id, self._handle)
            self._send_state(["Initialized", None])
        except BaseException:
            self._bus.close()
            self._local.close()
            self._transfer_bus.close()
            raise
        self._heartbeat = threading.Thread(
            target=self._beat, name=f"exeunit-{self.activity_id[:8]}", daemon=True
        )
        self._heartbeat.start()
        return self

    def stop(self, reason: str = "activity destroyed") -> None:
        """Kill running commands, release the sandbox, report ``Terminated``. Idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self.runtime.stop()
        for batch in list(self._batches.values()):
            batch.close()
        self._join_heartbeat()
        try:
            self._send_state(["Terminated", None], reason)
        except GsbError as exc:
            logger.warning("exe-unit %s: final state not reported: %s", self.activity_id, exc)
        self._bus.close()
        self._local.close()
        self._transfer_bus.close()
        self._transfers.close()

    def crash(self) -> None:
        """Die like a killed exe-unit process: commands killed, connection dropped, no
        final state report (the provider agent reports ``Terminated`` over REST)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._bus.close()
        with self._state_lock:  # a report in flight lands before the connection drops
            self._local.close()
        self.runtime.stop()
        for batch in list(self._batches.values()):
            batch.close()
        self._join_heartbeat()
        self._transfer_bus.close()
        self._transfers.close()

    def _join_heartbeat(self) -> None:
        if self._heartbeat is not None and self._heartbeat is not threading.current_thread():
            self._heartbeat.join()

    def _disconnected(self) -> None:
        if not self._stopping.is_set():
            logger.warning("exe-unit %s lost its GSB connection", self.activity_id)
            if self.on_lost is not None:
                self.on_lost(self)

    # -- reporting -----------------------------------------------------------------

    def _report_state(self, state: StatePair, reason: Optional[str] = None) -> None:
        """The runtime's callback: report a state pair and wait for it, as yagna's
        exe-unit does, so the daemon knows the state before a command's result is out.

        Once stopping nothing is reported: a batch killed by stop() must not report
        ``Ready`` after ``Terminated``. Failures are logged.
        """
        if self._stopping.is_set():
            return
        try:
            self._send_state(state, reason)
        except GsbError as exc:
            logger.warning("exe-unit %s: state %s not reported: %s", self.activity_id, state, exc)

    def _send_state(self, state: StatePair, reason: Optional[str] = None) -> None:
        payload = {
            "activityId": self.activity_id,
            "state": {"state": state, "reason": reason, "errorMessage": None},
            "timeout": None,
            "credentials": None,
        }
        with self._state_lock:  # transitions reach the daemon in order
            if self._stopping.is_set() and state[0] != "Terminated":
                return
            reply = self._local.call(f"{LOCAL_ACTIVITY}/SetActivityState", payload)
        if isinstance(reply, dict) and "Err" in reply:
            logger.warning(
                "exe-unit %s: SetActivityState %s: %s", self.activity_id, state, reply["Err"]
            )

    def _report_usage(self) -> None:
        payload = {
            "activityId": self.activity_id,
            "usage": {"currentUsage": self.usage(), "timestamp": int(time.time())},
            "timeout": None,
        }
        self._local.call(f"{LOCAL_ACTIVITY}/SetActivityUsage", payload)

    def _beat(self) -> None:
        while not self._stopping.wait(HEARTBEAT):
            try:
                self._report_usage()
            except GsbError as exc:
                if not self._stopping.is_set():
                    logger.warning("exe-unit %s: usage not reported: %s", self.activity_id, exc)

    # -- GSB handlers --------------------------------------------------------------

    def _handle(self, address: str, caller: str, payload: Any) -> Any:
        message = address.rsplit("/", 1)[-1]
        body = payload if isinstance(payload, dict) else {}
        if body.get("activityId", body.get("activity_id", self.activity_id)) != self.activity_id:
            return _err("forbidden", f"activity {body.get('activityId')} is not served here")
        handler = {
            "Exec": self._exec,
            "GetExecBatchResults": self._results,
            "StreamExecBatchResults": self._stream,
            "GetRunningCommand": self._running,
            "GetActivityState": lambda b: {
                "Ok": {"state": self.state, "reason": None, "errorMessage": None}
            },
            "GetActivityUsage": lambda b: {
                "Ok": {"currentUsage": self.usage(), "timestamp": int(time.time())}
            },
        }.get(message)
        if handler is None:
            return _err("badRequest", f"unsupported message {message}")
        return handler(body)

    def _exec(self, body: Dict[str, Any]) -> Any:
        batch_id = str(body["batchId"])
        if batch_id in self._batches:
            return _err("badRequest", f"Batch {batch_id} already exists")
        if self._stopping.is_set():
            return _err("service", "activity terminated")
        commands = [dict(c) for c in body.get("exeScript") or []]
        refused = violation(self.script, commands)
        if refused is not None:
            return _err("badRequest", f"Manifest violation in ExeScript: {refused}")
        batch = Batch(batch_id, commands)
        self._batches[batch_id] = batch
        threading.Thread(
            target=self.runtime.run_batch, args=(batch,), name=f"batch-{batch_id[:8]}", daemon=True
        ).start()
        return {"Ok": batch_id}

    def _results(self, body: Dict[str, Any]) -> Any:
        batch = self._batches.get(str(body.get("batchId")))
        if batch is None:
            return _err("notFound", f"batch_id = {body.get('batchId')}")
        if not batch.commands:
            return {"Ok": []}
        index = body.get("commandIndex")
        finished = batch.wait(index, float(body.get("timeout") or 0.0))
        if not finished and index is not None:
            return _err("timeout")
        return {"Ok": batch.results(index)}

    def _stream(self, body: Dict[str, Any]) -> Any:
        batch = self._batches.get(str(body.get("batch_id") or body.get("batchId")))
        if batch is None:
            raise GsbError(f"Unknown batch: {body.get('batch_id')}", code=CALL_REPLY_BAD_REQUEST)
        # Like yagna: live events only, and the stream stays open until the activity ends.
        return Stream({"Ok": event} for event in batch.subscribe(self._stopping))

    def _running(self, body: Dict[str, Any]) -> Any:
        commands = [
            c for c in (b.running_command() for b in self._batches.values()) if c is not None
        ]
        if commands:
            return {"Ok": commands}
        return _err("notFound", f"No running command within activity: {self.activity_id}")
