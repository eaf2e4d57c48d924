"""A stateful fake yagna daemon on ``responses`` callbacks, for the GolemProvider tests.

It answers the market, activity and payment calls a requestor makes, with bodies shaped
like yagna 0.17.6 sends them (every exchange is checked against the official specs at
the end of each test, see ``daemon`` in test_golem_provider_helpers.py). Long polls
really wait (up to their ``timeout``) for something to happen, so the provider's
threads behave as they would against the real daemon. Providers are :class:`Node`
objects whose behaviour each test sets; any call can be made to fail with
:meth:`FakeDaemon.fail`.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

import attrs


from .fake_exeunit import ExeUnit, RunHandler, now_text, script_of
from .fake_payments import Answer, PaymentRoutes, _json
from .yagna_samples import API_URL, NODE, offer_properties
from .yagna_samples import agreement as sample_agreement

GSB_GONE = {"message": "GSB error: GSB failure: Bad request: endpoint address not found"}
MAX_WAIT = 5.0  # no fake long poll waits longer, whatever it is asked


@attrs.define
class Node:
    """One fake provider and how it behaves."""

    id: str
    name: str
    properties: Dict[str, Any] = attrs.field(factory=offer_properties)
    reject_counter: Optional[str] = None      # answer counters with ProposalRejectedEvent
    draft_drops: Tuple[str, ...] = ()          # offer properties its drafts leave out
    approve: str = "approve"                   # "approve" | "reject" | "never" (see approve_now)
    deploy_error: Optional[str] = None
    deploy_gate: Optional[threading.Event] = None  # deploys wait for it
    invoice: Optional[str] = "0.01"            # issued on terminate; None: never
    handler: Optional[RunHandler] = None

    def offer(self) -> Dict[str, Any]:
        """The offer's properties, with this node's name and payment addresses."""
        properties = dict(self.properties, **{"golem.node.id.name": self.name})
        properties.setdefault("golem.node.debug.subnet", "public")  # as every real provider says
        for key in [k for k in properties if k.startswith("golem.com.payment.platform.")]:
            properties[key] = self.id
        return properties


def node(number: int, **options: Any) -> Node:
    return Node(id="0x" + f"{number:02x}" * 20, name=f"provider-{number}", **options)


class FakeDaemon(PaymentRoutes):
    """See the module docstring. ``calls`` counts ``"METHOD route"`` keys."""

    def __init__(self, rsps: Any, nodes: List[Node], tmp: Optional[Path] = None) -> None:
        self.nodes = {n.id: n for n in nodes}
        self.lock = threading.Condition()
        self.ids = itertools.count(1)
        self.tmp = Path(tmp or tempfile.mkdtemp())
        self.injected: List[List[Any]] = []
        self.calls: Dict[str, int] = {}
        self.urls: Dict[str, bytes] = {}
        self.uploads: Dict[str, bytes] = {}
        self.allocations: Dict[str, Dict[str, Any]] = {}
        self.released: List[str] = []
        self.subscriptions: Dict[str, List[Dict[str, Any]]] = {}
        self.unsubscribed: List[str] = []
        self.proposals: Dict[str, Dict[str, Any]] = {}
        self.counters: List[Dict[str, Any]] = []
        #: Hold each counter-proposal's reply until a poll has read the provider's answer
        #: to it, so the requestor meets the answer before it knows the counter's id.
        self.answer_before_counter_reply = False
        self.rejected: List[Tuple[str, str]] = []
        self.agreements: Dict[str, Dict[str, Any]] = {}
        self.activities: Dict[str, Dict[str, Any]] = {}
        self.debit_notes: Dict[str, Dict[str, Any]] = {}
        self.invoices: Dict[str, Dict[str, Any]] = {}
        self.payment_events: Dict[str, List[Dict[str, Any]]] = {"debitNote": [], "invoice": []}
        self.accepted: Dict[str, str] = {}
        self.agreement_events: List[Dict[str, Any]] = []
        self.scans: Dict[str, List[Dict[str, Any]]] = {}
        self.routes = self._routes()
        for method in ("GET", "POST", "DELETE"):
            rsps.add_callback(method, re.compile(re.escape(API_URL) + r"/.*"), callback=self._dispatch)

    # ------------------------------------------------------------ test controls
    def fail(self, method: str, pattern: str, status: int, body: Any = None, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` to a path matching ``pattern`` answer
        ``status`` (with an ErrorMessage body unless given)."""
        with self.lock:
            self.injected.append([method, re.compile(pattern), status, body, times])

    def kill(self, activity_id: str) -> None:
        """The provider's exe-unit dies: state Terminated, GSB errors from then on."""
        with self.lock:
            self.activities[activity_id]["state"] = "Terminated"
            self.lock.notify_all()

    def approve_now(self, agreement_id: str) -> None:
        """The provider approves a pending agreement (for nodes with ``approve="never"``)."""
        with self.lock:
            self.agreements[agreement_id]["state"] = "Approved"
            self.lock.notify_all()

    def pending(self) -> List[str]:
        """Agreements confirmed and not decided yet."""
        with self.lock:
            return [a_id for a_id, a in self.agreements.items() if a["state"] == "Pending"]

    def exeunit(self, activity_id: str) -> ExeUnit:
        return self.activities[activity_id]["unit"]

    def count(self, key: str) -> int:
        return self.calls.get(key, 0)

    # ---------------------------------------------------------------- plumbing
    def _routes(self) -> List[Tuple[str, "re.Pattern[str]", str, Callable[..., Answer]]]:
        table = [
            ("GET", r"/version/get", self._version), ("GET", r"/me", self._me),
            ("POST", r"/payment-api/v1/allocations", self._allocate),
            ("DELETE", r"/payment-api/v1/allocations/(?P<id>[^/]+)", self._release_allocation),
            ("GET", r"/payment-api/v1/demandDecorations", self._decorations),
            ("GET", r"/payment-api/v1/(?P<kind>debitNote|invoice)Events", self._payment_events),
            ("GET", r"/payment-api/v1/debitNotes/(?P<id>[^/]+)", self._get_debit_note),
            ("GET", r"/payment-api/v1/invoices/(?P<id>[^/]+)", self._get_invoice),
            ("POST", r"/payment-api/v1/(?P<kind>debitNotes|invoices)/(?P<id>[^/]+)/accept", self._accept),
            ("POST", r"/market-api/v1/demands", self._subscribe),
            ("DELETE", r"/market-api/v1/demands/(?P<sub>[^/]+)", self._unsubscribe),
            ("GET", r"/market-api/v1/demands/(?P<sub>[^/]+)/events", self._offers),
            ("POST", r"/market-api/v1/demands/(?P<sub>[^/]+)/proposals/(?P<id>[^/]+)/reject", self._reject),
            ("POST", r"/market-api/v1/demands/(?P<sub>[^/]+)/proposals/(?P<id>[^/]+)", self._counter),
            ("POST", r"/market-api/v1/agreements", self._create_agreement),
            ("POST", r"/market-api/v1/agreements/(?P<id>[^/]+)/confirm", self._confirm),
            ("POST", r"/market-api/v1/agreements/(?P<id>[^/]+)/wait", self._wait),
            ("POST", r"/market-api/v1/agreements/(?P<id>[^/]+)/(?P<how>terminate|cancel)", self._terminate),
            ("GET", r"/market-api/v1/agreements/(?P<id>[^/]+)", self._get_agreement),
            ("GET", r"/market-api/v1/agreementEvents", self._agreement_events),
            ("POST", r"/market-api/v1/scan", self._begin_scan),
            ("GET", r"/market-api/v1/scan/(?P<id>[^/]+)/events", self._collect_scan),
            ("DELETE", r"/market-api/v1/scan/(?P<id>[^/]+)", self._end_scan),
            ("POST", r"/activity-api/v1/activity", self._create_activity),
            ("DELETE", r"/activity-api/v1/activity/(?P<id>[^/]+)", self._destroy),
            ("POST", r"/activity-api/v1/activity/(?P<id>[^/]+)/exec", self._exec),
            ("GET", r"/activity-api/v1/activity/(?P<id>[^/]+)/exec/(?P<batch>[^/]+)", self._results),
            ("GET", r"/activity-api/v1/activity/(?P<id>[^/]+)/state", self._state),
        ]
        return [(method, re.compile(path + "$"), path, handler) for method, path, handler in table]

    def _dispatch(self, request: Any) -> Answer:
        parts = urlsplit(request.url)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        body = json.loads(request.body) if request.body else None
        for method, pattern, route, handler in self.routes:
            match = pattern.match(parts.path)
            if method == request.method and match:
                with self.lock:
                    self.calls[f"{method} {route}"] = self.calls.get(f"{method} {route}", 0) + 1
                injected = self._injected(method, parts.path)
                if injected is not None:
                    return injected
                return handler(query=query, body=body, raw=request.body, **match.groupdict())
        return _json(404, {"message": f"no route for {request.method} {parts.path}"})

    def _injected(self, method: str, path: str) -> Optional[Answer]:
        with self.lock:
            for entry in self.injected:
                if entry[0] == method and entry[1].search(path) and entry[4] > 0:
                    entry[4] -= 1
                    status, body = entry[2], entry[3]
                    if isinstance(body, str):  # e.g. the daemon's plain-text 401
                        return status, {"Content-Type": "text/plain"}, body
                    return _json(status, body if body is not None else {"message": f"injected {status}"})
        return None

    def _wait_until(self, ready: Callable[[], bool], query: Dict[str, str], due: float = math.inf) -> bool:
        """Wait like a long poll: until ``ready()`` or the ``timeout`` query value; ``due``
        is a monotonic time at which ``ready()`` turns true by itself."""
        end = time.monotonic() + min(float(query.get("timeout", 0)), MAX_WAIT)
        with self.lock:
            while not ready():
                remaining = min(end, due) - time.monotonic()
                if remaining <= 0 and time.monotonic() >= end:
                    return False
                self.lock.wait(max(remaining, 0.001))
            return True

    # --------------------------------------------------------------- identity
    def _version(self, **_: Any) -> Answer:
        return _json(200, {"current": {"version": "0.17.6", "name": "v0.17.6", "seen": False,
                                       "releaseTs": "2025-10-04T10:00:00", "insertionTs": "2025-10-04T10:00:00",
                                       "updateTs": "2025-10-04T10:00:00"}, "pending": None})

    def _me(self, **_: Any) -> Answer:
        return _json(200, {"identity": NODE, "name": "requestor", "role": "manager"})

    # ----------------------------------------------------------------- market
    def _subscribe(self, body: Dict[str, Any], **_: Any) -> Answer:
        sub = f"SUB{next(self.ids)}"
        with self.lock:
            self.subscriptions[sub] = []
            for provider in self.nodes.values():
                self._proposal(sub, provider, "Initial")
            self.lock.notify_all()
        return _json(201, sub)

    def _proposal(self, sub: str, provider: Node, state: str, prev: Optional[str] = None) -> str:
        proposal_id = f"{'P' if state == 'Initial' else 'D'}{next(self.ids)}"
        properties = provider.offer()
        if state == "Draft":
            properties = {k: v for k, v in properties.items() if k not in provider.draft_drops}
        proposal = {"properties": properties, "constraints": "(golem.srv.comp.expiration>0)",
                    "proposalId": proposal_id, "issuerId": provider.id, "state": state, "timestamp": now_text()}
        if prev is not None:
            proposal["prevProposalId"] = prev
        self.proposals[proposal_id] = {"sub": sub, "node": provider.id, "state": state, "countered": False}
        event = {"eventType": "ProposalEvent", "eventDate": now_text(), "proposal": proposal}
        self.subscriptions[sub].append(event)
        return proposal_id

    def _unsubscribe(self, sub: str, **_: Any) -> Answer:
        with self.lock:
            if self.subscriptions.pop(sub, None) is None:
                return _json(404, {"message": f"Subscription [{sub}] not found"})
            self.unsubscribed.append(sub)
            self.lock.notify_all()
        return 204, {}, ""

    def _offers(self, sub: str, query: Dict[str, str], **_: Any) -> Answer:
        self._wait_until(lambda: sub not in self.subscriptions or bool(self.subscriptions[sub]), query)
        with self.lock:
            if sub not in self.subscriptions:
                return _json(404, {"message": f"Subscription [{sub}] expired"})
            count = int(query.get("maxEvents", 20))
            events, self.subscriptions[sub][:] = self.subscriptions[sub][:count], self.subscriptions[sub][count:]
            self.lock.notify_all()
        return _json(200, events)

    def _counter(self, sub: str, id: str, body: Dict[str, Any], **_: Any) -> Answer:
        with self.lock:
            proposal = self.proposals.get(id)
            if proposal is None or proposal["countered"]:
                return _json(410, {"message": f"Proposal [{id}] already countered"})
            proposal["countered"] = True
            counter_id = f"C{next(self.ids)}"
            self.counters.append({"id": counter_id, "proposal": id, "node": proposal["node"], "demand": body})
            provider = self.nodes[proposal["node"]]
            if sub in self.subscriptions:
                if provider.reject_counter:
                    self.subscriptions[sub].append({
                        "eventType": "ProposalRejectedEvent", "eventDate": now_text(), "proposalId": counter_id,
                        "reason": {"message": provider.reject_counter}})
                else:
                    self._proposal(sub, provider, "Draft", prev=counter_id)
                answer = self.subscriptions[sub][-1]
                self.lock.notify_all()
                if self.answer_before_counter_reply:
                    self.lock.wait_for(lambda: answer not in self.subscriptions.get(sub, ()), MAX_WAIT)
            self.lock.notify_all()
        return _json(200, counter_id)

    def _reject(self, sub: str, id: str, body: Dict[str, Any], **_: Any) -> Answer:
        self.rejected.append((id, body["message"]))
        return 204, {}, ""

    def _create_agreement(self, body: Dict[str, Any], **_: Any) -> Answer:
        proposal = self.proposals.get(body["proposalId"])
        if proposal is None or proposal["state"] != "Draft":
            return _json(400, {"message": "No negotiation with Provider took place"})
        agreement_id = f"AG{next(self.ids)}"
        self.agreements[agreement_id] = {"node": proposal["node"], "state": "Proposal", "reason": None}
        return _json(200, agreement_id)

    def _confirm(self, id: str, **_: Any) -> Answer:
        self.agreements[id]["state"] = "Pending"
        return 204, {}, ""

    def _wait(self, id: str, query: Dict[str, str], **_: Any) -> Answer:
        agreement = self.agreements[id]
        behaviour = self.nodes[agreement["node"]].approve
        if behaviour == "reject":
            agreement["state"] = "Rejected"
            # Like yagna 0.17.6: the 410 says "Rejected"; the reason is in the event.
            self.agreement_events.append({"eventType": "AgreementRejectedEvent", "eventDate": now_text(),
                                          "agreementId": id, "reason": {"message": "No capacity available"}})
            return _json(410, {"message": "Rejected"})
        if agreement["state"] == "Approved":
            return 204, {}, ""
        if behaviour == "never" or agreement["state"] == "Cancelled":
            if self._wait_until(lambda: agreement["state"] == "Approved", query):
                return 204, {}, ""
            return _json(408, {"message": "Timeout"})
        agreement["state"] = "Approved"
        return 204, {}, ""

    def _get_agreement(self, id: str, **_: Any) -> Answer:
        agreement = self.agreements[id]
        body = sample_agreement(state=agreement["state"])
        body["agreementId"] = id
        return _json(200, body)

    def _agreement_events(self, **_: Any) -> Answer:
        return _json(200, list(self.agreement_events))

    def _terminate(self, id: str, how: str, body: Dict[str, Any], **_: Any) -> Answer:
        agreement = self.agreements[id]
        if agreement["state"] in ("Terminated", "Cancelled"):
            return _json(410, {"message": f"Agreement [{id}] already {agreement['state']}"})
        if how == "cancel" and agreement["state"] == "Approved":
            return _json(409, {"message": f"Agreement [{id}] is Approved: terminate it instead"})
        agreement["state"], agreement["reason"] = ("Terminated" if how == "terminate" else "Cancelled"), body
        amount = self.nodes[agreement["node"]].invoice
        if how == "terminate" and amount is not None:
            self.invoice(id, amount)
        return 200, {}, ""

    def _begin_scan(self, body: Dict[str, Any], **_: Any) -> Answer:
        scan_id = str(next(self.ids))
        with self.lock:  # like yagna: the whole offer store, then whatever comes later
            self.scans[scan_id] = [{"offerId": f"O{next(self.ids)}", "providerId": n.id, "properties": n.offer(),
                                    "constraints": "(golem.srv.comp.expiration>0)", "timestamp": now_text()}
                                   for n in self.nodes.values()]
        return _json(201, scan_id)

    def _collect_scan(self, id: str, query: Dict[str, str], **_: Any) -> Answer:
        self._wait_until(lambda: id not in self.scans or bool(self.scans[id]), query)
        with self.lock:
            if id not in self.scans:
                return _json(404, {"message": f"scan {id} not found"})
            offers, self.scans[id] = self.scans[id], []
        return _json(200, offers)

    def _end_scan(self, id: str, **_: Any) -> Answer:
        with self.lock:
            self.scans.pop(id, None)
            self.lock.notify_all()
        return 201, {}, ""

    # --------------------------------------------------------------- activity
    def _create_activity(self, body: Dict[str, Any], **_: Any) -> Answer:
        agreement = self.agreements.get(body["agreementId"])
        if agreement is None or agreement["state"] != "Approved":
            return _json(400, {"message": "agreement not approved"})
        activity_id = f"AC{next(self.ids)}"
        provider = self.nodes[agreement["node"]]
        unit = ExeUnit(self.tmp / activity_id, handler=provider.handler, deploy_error=provider.deploy_error,
                       urls=self.urls, uploads=self.uploads, deploy_gate=provider.deploy_gate)
        self.activities[activity_id] = {"agreement": body["agreementId"], "node": provider.id, "unit": unit,
                                        "state": "Alive"}
        return _json(200, {"activityId": activity_id})

    def _destroy(self, id: str, **_: Any) -> Answer:
        with self.lock:
            self.activities[id]["state"] = "Terminated"
            self.lock.notify_all()
        return _json(200, None)

    def _exec(self, id: str, raw: bytes, **_: Any) -> Answer:
        activity = self.activities[id]
        if activity["state"] == "Terminated":
            return _json(500, GSB_GONE)
        batch_id = f"BA{next(self.ids)}"
        activity["unit"].execute(batch_id, script_of(raw))
        return _json(200, batch_id)

    def _results(self, id: str, batch: str, query: Dict[str, str], **_: Any) -> Answer:
        activity = self.activities[id]
        unit = activity["unit"]
        if batch not in unit.batches:
            return _json(404, {"message": f"batch_id = {batch}"})
        run = unit.batches[batch]
        index = int(query["commandIndex"]) if "commandIndex" in query else run.total - 1

        def ready() -> bool:
            return activity["state"] == "Terminated" or time.monotonic() >= run.ready_at(index)
        done = self._wait_until(ready, query, due=run.ready_at(index))
        if activity["state"] == "Terminated":
            return _json(500, GSB_GONE)
        if not done and "commandIndex" in query:
            return _json(408, {"message": "Timeout"})
        shown = [r for r in run.visible(time.monotonic()) if r["index"] <= index]
        if "commandIndex" in query:  # output only for the awaited index; it is "finished"
            shown = [dict(r, stdout=None, stderr=None) if r["index"] != index else dict(r, isBatchFinished=True)
                     for r in shown]
        return _json(200, shown)

    def _state(self, id: str, **_: Any) -> Answer:
        activity = self.activities[id]
        state = "Terminated" if activity["state"] == "Terminated" else activity["unit"].state
        return _json(200, {"state": [state, None]})
