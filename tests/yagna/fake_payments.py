"""The payment half of the fake daemon: allocations, demand decorations, debit notes,
invoices and their persistent events (yagna-protocol.md §5). Mixed into FakeDaemon,
whose lock, ids and long-poll wait it uses."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any, Dict, List, Optional, Tuple

from golem_tasks.providers.yagna._http.json import parse_timestamp

from .fake_exeunit import now_text
from .yagna_samples import NODE, PLATFORM, TS

Answer = Tuple[int, Dict[str, str], str]


def _json(status: int, data: Any) -> Answer:
    return status, {"Content-Type": "application/json"}, json.dumps(data)


class PaymentRoutes:
    """Payment state and routes; see FakeDaemon for the attributes it shares."""

    lock: Any
    ids: Any
    activities: Dict[str, Dict[str, Any]]
    agreements: Dict[str, Dict[str, Any]]
    released: List[str]
    _wait_until: Any  # FakeDaemon's long-poll wait
    def debit_note(self, activity_id: str, amount: str, usage: Optional[List[float]] = None) -> str:
        activity = self.activities[activity_id]
        note_id = f"DN{next(self.ids)}"
        with self.lock:
            self.debit_notes[note_id] = {
                "debitNoteId": note_id, "issuerId": activity["node"], "recipientId": NODE,
                "payeeAddr": activity["node"], "payerAddr": NODE, "paymentPlatform": PLATFORM,
                "timestamp": TS, "agreementId": activity["agreement"], "activityId": activity_id,
                "totalAmountDue": amount, "usageCounterVector": usage or [1.0, 1.0], "status": "RECEIVED"}
            self._payment_event("debitNote", "DebitNoteReceivedEvent", note_id)
        return note_id

    def invoice(self, agreement_id: str, amount: str, payer: str = NODE) -> str:
        invoice_id = f"IN{next(self.ids)}"
        agreement = self.agreements[agreement_id]
        with self.lock:
            self.invoices[invoice_id] = {
                "invoiceId": invoice_id, "issuerId": agreement["node"], "recipientId": NODE,
                "payeeAddr": agreement["node"], "payerAddr": payer, "paymentPlatform": PLATFORM,
                "timestamp": TS, "agreementId": agreement_id,
                "activityIds": [a for a, v in self.activities.items() if v["agreement"] == agreement_id],
                "amount": amount, "paymentDueDate": "2025-10-05T12:00:00Z", "status": "RECEIVED"}
            self._payment_event("invoice", "InvoiceReceivedEvent", invoice_id)
        return invoice_id

    def _payment_event(self, kind: str, event_type: str, document_id: str) -> None:
        key = "debitNoteId" if kind == "debitNote" else "invoiceId"
        time.sleep(0.000002)  # distinct eventDates, as the daemon's clock gives
        self.payment_events[kind].append({"eventType": event_type, "eventDate": now_text(), key: document_id})
        self.lock.notify_all()


    def _allocate(self, body: Dict[str, Any], **_: Any) -> Answer:
        allocation_id = f"AL{next(self.ids)}"
        total = body["totalAmount"]
        data = {"allocationId": allocation_id, "address": NODE, "paymentPlatform": body["paymentPlatform"],
                "totalAmount": total, "spentAmount": "0", "remainingAmount": total, "timestamp": now_text(),
                "timeout": body["timeout"], "makeDeposit": False}
        self.allocations[allocation_id] = data
        return _json(201, data)

    def _release_allocation(self, id: str, **_: Any) -> Answer:
        self.released.append(id)
        return _json(200, None)

    def _decorations(self, query: Dict[str, str], **_: Any) -> Answer:
        return _json(200, {"properties": [{"key": f"golem.com.payment.platform.{PLATFORM}.address", "value": NODE},
                                          {"key": "golem.com.payment.protocol.version", "value": "3"}],
                           "constraints": [f"(golem.com.payment.platform.{PLATFORM}.address=*)",
                                           "(golem.com.payment.protocol.version>1)"]})

    def _payment_events(self, kind: str, query: Dict[str, str], **_: Any) -> Answer:
        after = parse_timestamp(query.get("afterTimestamp", "1970-01-01T00:00:00Z"))

        def fresh() -> List[Dict[str, Any]]:
            return [e for e in self.payment_events[kind] if parse_timestamp(e["eventDate"]) > after]
        self._wait_until(lambda: bool(fresh()), query)
        with self.lock:
            return _json(200, fresh())

    def _get_debit_note(self, id: str, **_: Any) -> Answer:
        return _json(200, self.debit_notes[id]) if id in self.debit_notes else _json(404, {"message": None})

    def _get_invoice(self, id: str, **_: Any) -> Answer:
        return _json(200, self.invoices[id]) if id in self.invoices else _json(404, {"message": None})

    def _accept(self, kind: str, id: str, body: Dict[str, Any], **_: Any) -> Answer:
        document = (self.debit_notes if kind == "debitNotes" else self.invoices).get(id)
        if document is None:
            return _json(404, {"message": None})
        asked = document["totalAmountDue" if kind == "debitNotes" else "amount"]
        if body["allocationId"] in self.released:
            return _json(410, {"message": "allocation released"})
        if Decimal(body["totalAmountAccepted"]) != Decimal(asked):
            return _json(400, {"message": "Invalid amount accepted"})
        self.accepted[id] = body["totalAmountAccepted"]
        return _json(200, None)

