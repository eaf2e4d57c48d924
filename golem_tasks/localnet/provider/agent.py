"""A provider agent played over the daemon's provider-side REST API.

ya-provider is not obtainable offline (research/yagna-offline.md, section 5), so it is
played here: publish an offer, answer the requestor's proposals, approve or reject
agreements, follow their termination. One thread runs the offer's event loop, one
follows agreement events. Given a GSB URL and a sandbox, the agent also runs
activities (:mod:`.activities`: an exe-unit per activity) and bills them
(:mod:`.payments`: debit notes, then an invoice when the agreement ends).

Usage::

    agent = ProviderAgent(api_url, app_key, node_id=node, name="provider-0")
    with agent:
        ...   # a requestor on the same daemon now sees the offer
"""

from __future__ import annotations

import datetime
import logging
import threading
import uuid
from typing import Any, Callable, Dict, List, Optional

import attrs

from ...errors import ApiError
from ...providers.local import LocalProvider
from .rest import Rest
from .activities import ActivityService
from ..exeunit.faults import NONE, Faults
from .negotiator import Negotiator
from .billing import Billing

logger = logging.getLogger(__name__)

MARKET = "/market-api/v1"

#: Server-side long-poll for the offer's events; DELETE of the offer ends a poll at once.
_OFFER_POLL = 5.0
#: Long-poll for agreement events: the loop notices stop() within this time.
_AGREEMENT_POLL = 1.0
#: Pause after a failed poll (daemon restarting, connection refused).
_RETRY_PAUSE = 0.5


def _now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


@attrs.frozen
class AgentEvent:
    """Something the agent did, for logs and tests: ``kind`` is one of ``countered``,
    ``proposal-rejected``, ``approved``, ``agreement-rejected``, ``terminated``."""

    kind: str
    id: str
    detail: str = ""


@attrs.define
class Agreement:
    """An agreement the agent approved: its id and the requestor's demand properties."""

    id: str
    requestor: str
    demand: Dict[str, Any]
    terminated: bool = False


class ProviderAgent:
    """One local provider identity: its market side, and its activities and billing
    when given ``gsb_url`` and ``sandbox``.

    Args:
        api_url: the daemon's REST URL.
        app_key: an app key of the provider identity.
        node_id: that identity (``0x...``), used as payee address.
        name: ``golem.node.id.name``.
        negotiator: the rules for proposals and agreements (its ``offer`` is published).
        gsb_url: the daemon's GSB router; with ``sandbox``, activities are served.
        sandbox: the local sandbox the exe-units run commands in (owned by the caller).
        on_terminated: called with the :class:`Agreement` after it ends (and is invoiced).
        faults: test knobs: slower or failing commands (:class:`.exeunit.faults.Faults`).
    """

    def __init__(
        self,
        api_url: str,
        app_key: str,
        *,
        node_id: str,
        name: str,
        negotiator: Optional[Negotiator] = None,
        gsb_url: Optional[str] = None,
        sandbox: Optional[LocalProvider] = None,
        on_terminated: Optional[Callable[[Agreement], None]] = None,
        faults: Faults = NONE,
    ) -> None:
        self.api_url = api_url
        self.app_key = app_key
        self.node_id = node_id
        self.name = name
        self.negotiator = negotiator or Negotiator()
        self.on_terminated = on_terminated
        #: appSessionId for approvals, so agreement events are this agent's only.
        self.session_id = f"{name}-{uuid.uuid4().hex[:8]}"
        self.offer_id: Optional[str] = None
        self.agreements: Dict[str, Agreement] = {}
        self.events: List[AgentEvent] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: List[threading.Thread] = []
        self._market = Rest(api_url, app_key, who=name)
        self.billing: Optional[Billing] = None
        self.activities: Optional[ActivityService] = None
        if gsb_url is not None and sandbox is not None:
            self.billing = Billing(api_url, app_key, offer=self.negotiator.offer, name=name,
                                   terms=self._terms)
            self.activities = ActivityService(
                api_url,
                app_key,
                session_id=self.session_id,
                gsb_url=gsb_url,
                node_id=node_id,
                name=name,
                sandbox=sandbox,
                billing=self.billing,
                demand_of=self._demand_of,
                faults=faults,
            )

    def _demand_of(self, agreement_id: str) -> Optional[Dict[str, Any]]:
        with self._lock:
            agreement = self.agreements.get(agreement_id)
            return dict(agreement.demand) if agreement else None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> "ProviderAgent":
        """Publish the offer and start the event loops."""
        self._stopping.clear()
        self._subscribe()
        if self.billing is not None and self.activities is not None:
            self.billing.start()
            self.activities.start()
        for target, label in ((self._offer_loop, "offers"), (self._agreement_loop, "agreements")):
            thread = threading.Thread(target=target, name=f"{self.name}-{label}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Withdraw the offer and stop the loops (within about a second). Idempotent."""
        self.request_stop()
        self.join()

    def request_stop(self) -> None:
        """Withdraw the offer and tell the loops to end; :meth:`join` waits for them.

        Split from :meth:`stop` so that many agents stop in parallel.
        """
        self._stopping.set()
        if self.billing is not None and self.activities is not None:
            self.activities.request_stop()
            self.billing.request_stop()
        offer_id, self.offer_id = self.offer_id, None
        if offer_id:
            try:  # also ends the pending long poll at once
                self._market.delete(f"{MARKET}/offers/{offer_id}", ok=(204, 404, 410))
            except ApiError as exc:
                logger.debug("%s: offer not withdrawn: %s", self.name, exc)

    def join(self) -> None:
        """Wait for the loops to end (after :meth:`request_stop`)."""
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        if self.billing is not None and self.activities is not None:
            self.activities.join()
            self.billing.join()
        self._market.close()

    def __enter__(self) -> "ProviderAgent":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def live_agreements(self) -> int:
        with self._lock:
            return sum(1 for a in self.agreements.values() if not a.terminated)

    def _record(self, kind: str, id: str, detail: str = "") -> None:
        logger.info("%s: %s %s %s", self.name, kind, id, detail)
        with self._lock:
            self.events.append(AgentEvent(kind, id, detail))

    def _terms(self, agreement_id: str) -> Dict[str, Any]:
        with self._lock:
            agreement = self.agreements.get(agreement_id)
            return dict(agreement.demand) if agreement is not None else {}

    # -- offers and proposals ------------------------------------------------------

    def _subscribe(self) -> None:
        offer = self.negotiator.offer
        body = {
            "properties": offer.properties(node_id=self.node_id, name=self.name),
            "constraints": offer.constraints(),
        }
        self.offer_id = str(self._market.post(f"{MARKET}/offers", json=body))
        logger.info("%s: offer %s published", self.name, self.offer_id)

    def _offer_loop(self) -> None:
        with Rest(self.api_url, self.app_key, who=self.name) as rest:
            self._follow_offer(rest)

    def _follow_offer(self, rest: Rest) -> None:
        while not self._stopping.is_set():
            offer_id = self.offer_id
            if offer_id is None:
                return
            try:
                events = rest.get(
                    f"{MARKET}/offers/{offer_id}/events",
                    params={"timeout": _OFFER_POLL, "maxEvents": 20},
                    poll=_OFFER_POLL,
                )
            except ApiError as exc:
                if self._stopping.is_set():
                    return
                if exc.status == 404:  # offer subscriptions live 1 h: publish again
                    logger.info("%s: offer %s expired; publishing again", self.name, offer_id)
                    self._resubscribe()
                else:
                    logger.warning("%s: offer events: %s", self.name, exc)
                    self._stopping.wait(_RETRY_PAUSE)
                continue
            for event in events or ():
                try:
                    self._on_offer_event(rest, offer_id, event)
                except ApiError as exc:
                    # Expected, so not worth a warning: we are stopping, or the requestor
                    # withdrew its demand while we answered (it left, or it is shutting down).
                    quiet = self._stopping.is_set() or _subscription_gone(exc)
                    logger.log(logging.DEBUG if quiet else logging.WARNING, "%s: handling %s: %s",
                               self.name, event.get("eventType"), exc)

    def _resubscribe(self) -> None:
        try:
            self._subscribe()
        except ApiError as exc:
            logger.warning("%s: offer not published: %s", self.name, exc)
            self._stopping.wait(_RETRY_PAUSE)

    def _on_offer_event(self, rest: Rest, offer_id: str, event: Dict[str, Any]) -> None:
        kind = event.get("eventType")
        if kind == "ProposalEvent":
            self._on_proposal(rest, offer_id, event["proposal"])
        elif kind == "AgreementEvent":
            self._on_agreement(rest, event["agreement"])
        elif kind == "ProposalRejectedEvent":
            logger.info(
                "%s: requestor rejected %s: %s",
                self.name,
                event.get("proposalId"),
                event.get("reason"),
            )

    def _on_proposal(self, rest: Rest, offer_id: str, proposal: Dict[str, Any]) -> None:
        proposal_id = proposal["proposalId"]
        offer_properties = self.negotiator.offer.properties(node_id=self.node_id, name=self.name)
        decision = self.negotiator.on_proposal(
            proposal["properties"], offer_properties, live_agreements=self.live_agreements
        )
        if decision.reject is not None:
            rest.post(
                f"{MARKET}/offers/{offer_id}/proposals/{proposal_id}/reject",
                json={"message": decision.reject},
            )
            self._record("proposal-rejected", proposal_id, decision.reject)
            return
        body = {"properties": decision.counter, "constraints": self.negotiator.offer.constraints()}
        rest.post(f"{MARKET}/offers/{offer_id}/proposals/{proposal_id}", json=body)
        self._record("countered", proposal_id)

    def _on_agreement(self, rest: Rest, agreement: Dict[str, Any]) -> None:
        agreement_id = agreement["agreementId"]
        demand = agreement["demand"]
        reason = self.negotiator.on_agreement(
            demand["properties"], live_agreements=self.live_agreements
        )
        if reason is not None:
            rest.post(f"{MARKET}/agreements/{agreement_id}/reject", json={"message": reason})
            self._record("agreement-rejected", agreement_id, reason)
            return
        with self._lock:  # counted before approval so a second agreement meets full capacity
            self.agreements[agreement_id] = Agreement(
                agreement_id, demand.get("requestorId", ""), dict(demand["properties"])
            )
        try:
            rest.post(
                f"{MARKET}/agreements/{agreement_id}/approve",
                params={"appSessionId": self.session_id, "timeout": 10},
                poll=10,
            )
        except ApiError:
            with self._lock:
                self.agreements.pop(agreement_id, None)
            raise
        self._record("approved", agreement_id)

    # -- agreement events ----------------------------------------------------------

    def _agreement_loop(self) -> None:
        with Rest(self.api_url, self.app_key, who=self.name) as rest:
            self._follow_agreements(rest)

    def _follow_agreements(self, rest: Rest) -> None:
        after = _now_iso()
        while not self._stopping.is_set():
            try:
                events = rest.get(
                    f"{MARKET}/agreementEvents",
                    params={
                        "afterTimestamp": after,
                        "timeout": _AGREEMENT_POLL,
                        "appSessionId": self.session_id,
                    },
                    poll=_AGREEMENT_POLL,
                )
            except ApiError as exc:
                if not self._stopping.is_set():
                    logger.warning("%s: agreement events: %s", self.name, exc)
                    self._stopping.wait(_RETRY_PAUSE)
                continue
            for event in events or ():
                after = event.get("eventDate", after)
                if event.get("eventType") == "AgreementTerminatedEvent":
                    self._on_terminated(event)

    def _on_terminated(self, event: Dict[str, Any]) -> None:
        agreement_id = event.get("agreementId", "")
        with self._lock:
            agreement = self.agreements.get(agreement_id)
            if agreement is None or agreement.terminated:
                return
            agreement.terminated = True
        self._record("terminated", agreement_id, str(event.get("reason") or ""))
        if self.billing is not None and self.activities is not None:
            self.activities.stop_agreement(agreement_id)
            try:
                self.billing.invoice(agreement_id)
            except ApiError as exc:
                logger.warning("%s: invoice for %s not sent: %s", self.name, agreement_id, exc)
        if self.on_terminated is not None:
            try:
                self.on_terminated(agreement)
            except Exception:  # one failed invoice must not stop the loop
                logger.exception("%s: after termination of %s", self.name, agreement_id)


def _subscription_gone(exc: ApiError) -> bool:
    """The daemon's answer about a withdrawn subscription: 404/410, or the 500
    "Subscription [...] wasn't found" yagna 0.17.6 gives a call that races the withdrawal."""
    return exc.status in (404, 410) or "wasn't found" in str(exc).lower()
