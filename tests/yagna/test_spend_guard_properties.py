"""The spend guard's promise as a property (issue 11 item 3): whatever the prices, debit-note
intervals and budget, and however long stopping takes (within the allowance), every
provider's final invoice is accepted and the total accepted stays within the budget.

Payments is driven directly, in simulated time: providers issue cumulative debit notes
every interval, the guard stops an agreement's work, the stop takes effect some time
later, and the invoice bills the usage up to then."""

from __future__ import annotations

import heapq
from datetime import datetime, timezone
from decimal import Decimal
from typing import Dict, List, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st

from golem_tasks.errors import BudgetExhausted
from golem_tasks.events import Emitter
from golem_tasks.providers.yagna.payment.models import Allocation, DebitNote, Invoice
from golem_tasks.providers.yagna.payment.payments import Payments
from golem_tasks.providers.yagna.payment.projection import STOP_ALLOWANCE

PLATFORM = "erc20-hoodi-tglm"
PAYER = "0x" + "11" * 20
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


class Daemon:
    """The payment calls Payments makes, answered from memory."""

    def __init__(self) -> None:
        self.notes: Dict[str, DebitNote] = {}
        self.invoices: Dict[str, Invoice] = {}
        self.accepted: Dict[str, Decimal] = {}

    @property
    def payment(self) -> "Daemon":
        return self

    def get_debit_note(self, note_id: str) -> DebitNote:
        return self.notes[note_id]

    def get_invoice(self, invoice_id: str) -> Invoice:
        return self.invoices[invoice_id]

    def accept_debit_note(self, note_id: str, amount: Decimal, allocation_id: str) -> None:
        self.accepted[note_id] = amount

    def accept_invoice(self, invoice_id: str, amount: Decimal, allocation_id: str) -> None:
        self.accepted[invoice_id] = amount


def offer(start: Decimal, per_second: Decimal, interval: int) -> Dict:
    return {"golem.com.pricing.model.linear.coeffs": [str(per_second), str(start)],
            "golem.com.usage.vector": ["golem.usage.duration_sec"], "golem.inf.cpu.threads": 1,
            "golem.com.scheme.payu.debit-note.interval-sec?": interval}


providers = st.lists(st.tuples(st.decimals("0", "0.5", places=3),       # start price
                               st.decimals("0", "0.01", places=5),      # per second
                               st.integers(1, 120),                     # debit-note interval
                               st.floats(0, 1)),                        # stop latency, share of the allowance
                     min_size=1, max_size=3)


@settings(max_examples=150, deadline=None)
@given(providers, st.decimals("0.1", "5", places=2), st.integers(10, 3000))
def test_every_final_invoice_fits_and_is_accepted(offers, budget, run_for):
    now = [0.0]
    daemon = Daemon()
    stops: List[str] = []
    payments = Payments(daemon, budget=budget, platform=PLATFORM, allocation_ttl=3600, poll=1,  # type: ignore
                        sink=Emitter(), on_over_budget=lambda agreement, why: stops.append(agreement),
                        clock=lambda: now[0])
    payments.allocation = Allocation(allocation_id="AL", address=PAYER, payment_platform=PLATFORM,
                                     total_amount=budget, spent_amount=0, remaining_amount=budget, timestamp=NOW)
    made: Dict[str, Tuple[Decimal, Decimal, int, float]] = {}
    for number, (start, per_second, interval, latency) in enumerate(offers):
        properties = offer(start, per_second, interval)
        try:
            payments.reserve(f"r{number}", f"provider-{number}", properties)
        except BudgetExhausted:
            continue
        agreement = f"AG{number}"
        payments.track(agreement, f"0x{number:040x}", properties, reservation=f"r{number}")
        made[agreement] = (start, per_second, interval, latency)

    def cost(agreement: str, at: float) -> Decimal:
        start, per_second, _, _ = made[agreement]
        return start + per_second * Decimal(repr(at))

    events: List[Tuple[float, int, str, str]] = []  # (time, order, kind, agreement)
    for order, (agreement, (_, _, interval, _)) in enumerate(made.items()):
        heapq.heappush(events, (float(interval), order, "note", agreement))
    ended: Dict[str, float] = {}
    counter = len(made)
    while events:
        at, _, kind, agreement = heapq.heappop(events)
        now[0] = at
        if kind == "note":
            if agreement in ended:
                continue
            if at >= run_for:  # the job ends: the agreement is terminated now
                ended[agreement] = at
                counter += 1
                heapq.heappush(events, (at, counter, "invoice", agreement))
                continue
            note_id = f"DN{counter}"
            counter += 1
            amount = cost(agreement, at)
            daemon.notes[note_id] = DebitNote(
                debit_note_id=note_id, issuer_id="p", recipient_id="r", payee_addr="p", payer_addr=PAYER,
                payment_platform=PLATFORM, timestamp=NOW, agreement_id=agreement, activity_id=f"AC{agreement}",
                total_amount_due=amount, status="RECEIVED", usage_counter_vector=[at])
            before = len(stops)
            payments._on_debit_note(note_id)
            if len(stops) > before:  # stopped: the activity ends a little later
                latency = made[agreement][3] * STOP_ALLOWANCE
                ended[agreement] = at + latency
                counter += 1
                heapq.heappush(events, (at + latency, counter, "invoice", agreement))
            else:
                counter += 1
                heapq.heappush(events, (at + made[agreement][2], counter, "note", agreement))
        else:
            payments.terminated(agreement)
            invoice_id = f"IN{agreement}"
            daemon.invoices[invoice_id] = Invoice(
                invoice_id=invoice_id, issuer_id="p", recipient_id="r", payee_addr="p", payer_addr=PAYER,
                payment_platform=PLATFORM, timestamp=NOW, agreement_id=agreement, activity_ids=(),
                amount=cost(agreement, ended[agreement]), payment_due_date=NOW, status="RECEIVED")
            payments._on_invoice(invoice_id)
    invoices = {key: amount for key, amount in daemon.accepted.items() if key.startswith("IN")}
    assert len(invoices) == len(made), "a provider's final invoice was refused"
    assert sum(invoices.values(), Decimal(0)) <= budget
    assert payments.committed <= budget
