"""The provider's billing: debit notes while activities run, one invoice per agreement.

Amounts follow the offer's linear pricing over the exe-unit's usage counters. Like
ya-provider, a debit note carries the activity's cumulative amount and is sent every
debit-note interval (the agreed one, else the offer's) of an activity's life; after
the agreement ends, one invoice covers all its activities. When the agreement has
mid-agreement payments (``golem.com.scheme.payu.payment-timeout-sec?``), every debit
note is due that many seconds after it is issued, so the requestor's daemon pays it
during the run.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from decimal import Decimal
from typing import Any, Callable, Dict, List, Mapping, Optional

import attrs

from ...errors import ApiError
from .rest import Rest
from ..exeunit.unit import ExeUnit
from .offer import OfferSpec

logger = logging.getLogger(__name__)

PAYMENT = "/payment-api/v1"
INTERVAL = "golem.com.scheme.payu.debit-note.interval-sec?"
PAYMENT_TIMEOUT = "golem.com.scheme.payu.payment-timeout-sec?"

#: How often the billing thread looks for due debit notes.
_TICK = 0.25


@attrs.frozen
class Document:
    """A debit note or invoice the provider issued."""

    kind: str  # "debit-note" or "invoice"
    id: str
    agreement_id: str
    amount: Decimal
    activity_id: Optional[str] = None


@attrs.define
class _Tracked:
    unit: ExeUnit
    next_due: float
    interval: float
    payment_timeout: Optional[int] = None
    final: Optional[Decimal] = None


class Billing:
    """Debit notes and invoices for one provider identity.

    Args:
        api_url, app_key: the daemon and the provider's key.
        offer: prices and the debit-note interval.
        name: for logs.
        terms: the agreed properties of an agreement (the requestor's demand), by id.
    """

    def __init__(self, api_url: str, app_key: str, *, offer: OfferSpec, name: str,
                 terms: Callable[[str], Mapping[str, Any]] = lambda agreement_id: {}) -> None:
        self.offer = offer
        self._terms = terms
        self.name = name
        self.documents: List[Document] = []
        self._rest = Rest(api_url, app_key, who=name)
        self._lock = threading.Lock()
        self._activities: Dict[str, _Tracked] = {}
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "Billing":
        self._thread = threading.Thread(target=self._loop, name=f"{self.name}-billing", daemon=True)
        self._thread.start()
        return self

    def request_stop(self) -> None:
        self._stopping.set()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._rest.close()

    def cost(self, unit: ExeUnit) -> Decimal:
        cpu, duration = unit.usage()
        return self.offer.cost(cpu, duration)

    # -- activities ------------------------------------------------------------------

    def activity_started(self, unit: ExeUnit) -> None:
        terms = self._terms(unit.agreement_id)
        interval = float(terms.get(INTERVAL) or self.offer.debit_note_interval)
        timeout = terms.get(PAYMENT_TIMEOUT) if self.offer.payment_timeout is not None else None
        with self._lock:
            self._activities[unit.activity_id] = _Tracked(
                unit, time.monotonic() + interval, interval, int(timeout) if timeout else None
            )

    def activity_ended(self, unit: ExeUnit) -> None:
        """Freeze the activity's amount (after the exe-unit stopped)."""
        with self._lock:
            tracked = self._activities.get(unit.activity_id)
            if tracked is not None and tracked.final is None:
                tracked.final = self.cost(unit)

    def _loop(self) -> None:
        while not self._stopping.wait(_TICK):
            now = time.monotonic()
            with self._lock:
                due = [
                    t for t in self._activities.values() if t.final is None and t.next_due <= now
                ]
                for tracked in due:
                    tracked.next_due = now + tracked.interval
            for tracked in due:
                self._debit_note(tracked.unit, tracked.payment_timeout)

    def _debit_note(self, unit: ExeUnit, payment_timeout: Optional[int]) -> None:
        amount = self.cost(unit)
        body: Dict[str, Any] = {
            "activityId": unit.activity_id,
            "totalAmountDue": str(amount),
            "usageCounterVector": unit.usage(),
        }
        if payment_timeout is not None:  # mid-agreement payments: this note is payable
            due = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=payment_timeout)
            body["paymentDueDate"] = due.isoformat()
        try:
            note = self._rest.post(f"{PAYMENT}/debitNotes", json=body)
            self._rest.post(f"{PAYMENT}/debitNotes/{note['debitNoteId']}/send")
        except ApiError as exc:  # the activity may have ended meanwhile
            level = logging.DEBUG if self._stopping.is_set() else logging.WARNING  # expected at shutdown
            logger.log(level, "%s: debit note for %s not sent: %s", self.name, unit.activity_id, exc)
            return
        self._record(
            Document("debit-note", note["debitNoteId"], unit.agreement_id, amount, unit.activity_id)
        )

    # -- invoices --------------------------------------------------------------------

    def invoice(self, agreement_id: str) -> Optional[Document]:
        """Issue and send the invoice for a terminated agreement (its activities stopped)."""
        with self._lock:
            tracked = [t for t in self._activities.values() if t.unit.agreement_id == agreement_id]
            for t in tracked:
                self._activities.pop(t.unit.activity_id, None)
        amounts = [t.final if t.final is not None else self.cost(t.unit) for t in tracked]
        amount = sum(amounts, Decimal(0)) if amounts else Decimal(0)
        due = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
        body = {
            "agreementId": agreement_id,
            "activityIds": [t.unit.activity_id for t in tracked],
            "amount": str(amount),
            "paymentDueDate": due.isoformat(),
        }
        invoice = self._rest.post(f"{PAYMENT}/invoices", json=body)
        self._rest.post(f"{PAYMENT}/invoices/{invoice['invoiceId']}/send")
        document = Document("invoice", invoice["invoiceId"], agreement_id, amount)
        self._record(document)
        return document

    def _record(self, document: Document) -> None:
        logger.info(
            "%s: %s %s for %s: %s GLM",
            self.name,
            document.kind,
            document.id,
            document.agreement_id,
            document.amount,
        )
        with self._lock:
            self.documents.append(document)
