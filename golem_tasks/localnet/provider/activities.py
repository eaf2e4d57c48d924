"""The provider's activity side: start an exe-unit per activity, stop it on destroy.

ya-provider follows ``GET /activity-api/v1/events`` (``CreateActivity`` /
``DestroyActivity``, filtered by the app session its agreements were approved with) and
spawns an exe-unit per activity; this does the same in-process with
:class:`.exeunit.ExeUnit`. When an exe-unit cannot start or loses the daemon, the
activity is marked Terminated over REST, as ya-provider does for a dead exe-unit.
"""

from __future__ import annotations

import datetime
import logging
import threading
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from ...errors import ApiError
from ...providers.local import LocalProvider
from .rest import Rest
from ..exeunit.faults import NONE, Faults
from ..exeunit.unit import ExeUnit
from .billing import Billing
from .outbound import sandbox_access, script_of

logger = logging.getLogger(__name__)

ACTIVITY = "/activity-api/v1"
#: The demand property naming the VM image: ``hash:sha3:<hash>:<url>``.
TASK_PACKAGE = "golem.srv.comp.task_package"

#: Long poll for activity events; the loop notices stop() within this time.
_POLL = 1.0
_RETRY_PAUSE = 0.5


class ActivityService:
    """Exe-units for one provider identity.

    Args:
        api_url, app_key: the daemon and the provider's key.
        session_id: the appSessionId the agent approved agreements with.
        gsb_url: the daemon's GSB router, where exe-units register.
        node_id, name: the provider identity.
        sandbox: the local sandbox provider exe-units deploy into.
        billing: told when activities start and end.
        demand_of: the demand properties of an agreement the agent approved (None if unknown).
        faults: test knobs for the exe-units (:class:`.exeunit.faults.Faults`).
    """

    def __init__(
        self,
        api_url: str,
        app_key: str,
        *,
        session_id: str,
        gsb_url: str,
        node_id: str,
        name: str,
        sandbox: LocalProvider,
        billing: Billing,
        demand_of: Optional[Callable[[str], Optional[Dict[str, Any]]]] = None,
        faults: Faults = NONE,
    ) -> None:
        self.faults = faults
        self.demand_of = demand_of
        self.api_url = api_url
        self.app_key = app_key
        self.session_id = session_id
        self.gsb_url = gsb_url
        self.node_id = node_id
        self.name = name
        self.sandbox = sandbox
        self.billing = billing
        self.units: Dict[str, ExeUnit] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "ActivityService":
        self._thread = threading.Thread(
            target=self._loop, name=f"{self.name}-activities", daemon=True
        )
        self._thread.start()
        return self

    def request_stop(self) -> None:
        self._stopping.set()

    def join(self) -> None:
        """Wait for the loop, then stop every exe-unit still running."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for unit in self._take(lambda unit: True):
            self._stop_unit(unit, "provider shutting down")

    def live(self) -> List[ExeUnit]:
        with self._lock:
            return list(self.units.values())

    def stop_agreement(self, agreement_id: str) -> None:
        """Stop the exe-units of an agreement that ended."""
        for unit in self._take(lambda unit: unit.agreement_id == agreement_id):
            self._stop_unit(unit, "agreement terminated")

    def crash(self, activity_id: Optional[str] = None) -> List[str]:
        """Kill exe-units as if their processes died (all of them, or one activity's).

        As ya-provider does for a dead exe-unit, the activity is then marked
        ``Terminated`` over REST with reason ``execution aborted``. Returns the
        activity ids. For tests of requestor recovery.
        """
        units = self._take(lambda u: activity_id is None or u.activity_id == activity_id)
        with Rest(self.api_url, self.app_key, who=self.name) as rest:
            for unit in units:
                unit.crash()
                self.billing.activity_ended(unit)
                self._terminated_over_rest(
                    rest, unit.activity_id, "execution aborted", "exit code None"
                )
        return [unit.activity_id for unit in units]

    def _take(self, which: Any) -> List[ExeUnit]:
        with self._lock:
            chosen = [u for u in self.units.values() if which(u)]
            for unit in chosen:
                del self.units[unit.activity_id]
        return chosen

    # -- events ----------------------------------------------------------------------

    def _loop(self) -> None:
        with Rest(self.api_url, self.app_key, who=self.name) as rest:
            self._follow(rest)

    def _follow(self, rest: Rest) -> None:
        after = datetime.datetime.now(datetime.timezone.utc).isoformat()
        seen: Set[Tuple[str, str]] = set()
        while not self._stopping.is_set():
            params = {
                "afterTimestamp": after,
                "timeout": _POLL,
                "appSessionId": self.session_id,
                "maxEvents": 100,
            }
            try:
                # An empty long poll answers 408 {"message":"Timeout"} here, not []
                # as in the market.
                events = rest.get(f"{ACTIVITY}/events", params=params, poll=_POLL, ok=(200, 408))
            except ApiError as exc:
                if not self._stopping.is_set():
                    logger.warning("%s: activity events: %s", self.name, exc)
                    self._stopping.wait(_RETRY_PAUSE)
                continue
            for event in events if isinstance(events, list) else ():
                after = event.get("eventDate", after)
                kind = next(iter(event.get("eventType") or {"?": None}))
                key = (str(event.get("activityId")), kind)
                if key in seen:  # afterTimestamp may repeat events sharing the last date
                    continue
                seen.add(key)
                if kind == "CreateActivity":
                    self._create(rest, event)
                elif kind == "DestroyActivity":
                    self._destroy(str(event["activityId"]))

    def _create(self, rest: Rest, event: Dict[str, Any]) -> None:
        activity_id, agreement_id = str(event["activityId"]), str(event["agreementId"])
        demand = (self.demand_of(agreement_id) if self.demand_of else None) or {}
        package = demand.get(TASK_PACKAGE)
        unit = ExeUnit(
            activity_id,
            agreement_id,
            gsb_url=self.gsb_url,
            node_id=self.node_id,
            sandbox=self.sandbox,
            on_lost=lambda u: self._lost(u),
            task_package=str(package) if package else None,
            outbound=sandbox_access(demand),
            script=script_of(demand),
            faults=self.faults,
        )
        try:
            unit.start()
        except Exception as exc:  # noqa: BLE001 - any failure: report it as ya-provider does
            logger.error("%s: exe-unit for %s did not start: %s", self.name, activity_id, exc)
            self._terminated_over_rest(rest, activity_id, "creation failed", str(exc))
            return
        with self._lock:
            self.units[activity_id] = unit
        self.billing.activity_started(unit)
        logger.info("%s: exe-unit for activity %s started", self.name, activity_id)

    def _destroy(self, activity_id: str) -> None:
        for unit in self._take(lambda u: u.activity_id == activity_id):
            self._stop_unit(unit, "activity destroyed")

    def _stop_unit(self, unit: ExeUnit, reason: str) -> None:
        unit.stop(reason)
        self.billing.activity_ended(unit)
        logger.info(
            "%s: exe-unit for activity %s stopped (%s)", self.name, unit.activity_id, reason
        )

    def _lost(self, unit: ExeUnit) -> None:
        # Called from the exe-unit's GSB reader thread: stop it elsewhere.
        threading.Thread(target=self._destroy, args=(unit.activity_id,), daemon=True).start()

    def _terminated_over_rest(self, rest: Rest, activity_id: str, reason: str, error: str) -> None:
        body = {"state": ["Terminated", None], "reason": reason, "errorMessage": error}
        try:
            rest.put(f"{ACTIVITY}/activity/{activity_id}/state", json=body)
        except ApiError as exc:
            logger.warning("%s: could not mark %s terminated: %s", self.name, activity_id, exc)
