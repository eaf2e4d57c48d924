"""Paying providers: one allocation for the budget, debit notes and invoices accepted
in the background, never more than the budget in all.

Two threads long-poll the daemon, one for debit-note events and one for invoice
events (payment events are persistent: each poll asks for events after the last one
seen, and documents are handled once by id). Only documents of agreements this
provider made are accepted, with exactly the amount asked (Decimal; the daemon
compares amounts exactly), and only when the total accepted stays within the budget.
A debit note asking more than the agreed linear price of the usage it reports is
refused too. Each agreement counts for at least its start price from the moment it
is made (:meth:`Payments.reserve`), so no provider is engaged whose start price the
budget could not pay (#4). Acceptance happens as soon as the event arrives, well within the
debit-note acceptance timeout negotiated with the provider.

The spend guard (issue 11, arithmetic in :mod:`.projection`): an agreement is only made
when the projected cost of all agreements at the job's pace (``horizon``) fits, and
when the accepted amounts plus a margin per running agreement (one debit-note interval
and the time stopping takes, :func:`.projection.margin`) still do; and after each
accepted debit note, an agreement whose margin no longer fits has its work stopped, so
its final invoice stays within the budget and is accepted.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import attrs

from ...._format import money, provider_label, token_of
from ....errors import ApiError, BudgetExhausted
from .._client import YagnaClient
from ....events import SpendUpdated
from .._events import CostsSettled, DebitNoteAccepted, EventSink, InvoiceAccepted, PaymentRefused
from ..market.models import LinearPricing
from .projection import ZERO, Rates, margin, projected_cost
from .models import Allocation, DebitNote, Invoice, MarketDecoration
from ..errors import Gone, NotFound

logger = logging.getLogger(__name__)

#: A provider's own rounding may put a debit note a hair over the exact price.
PRICE_TOLERANCE = Decimal("1.000001")
#: The longest payment-event poll: the daemon caps server timeouts at 60 s by default.
MAX_EVENT_POLL = 60.0
#: While stopping, how often the event polls in flight are interrupted again.
INTERRUPT_AGAIN = 0.05
#: How often an engage waiting for invoices looks at the scheduler's abort event.
ABORT_CHECK = 0.05


@attrs.define
class AgreementCost:
    """What one agreement has cost so far."""

    provider_id: str
    pricing: Optional[LinearPricing]
    usage_names: Tuple[str, ...]
    provider_name: str = ""
    rates: Rates = attrs.field(factory=Rates)
    started: float = 0.0  # the payments clock when the agreement was made
    activities: Dict[str, Decimal] = attrs.field(factory=dict)
    invoice: Optional[Decimal] = None
    terminated: bool = False
    refused: bool = False  # its invoice was refused: waiting for it longer is pointless
    stopped: bool = False  # its work was stopped so its invoice fits: once is enough

    @property
    def running(self) -> bool:
        return not self.terminated and self.invoice is None

    @property
    def may_grow(self) -> bool:
        """It may still ask for more: running, or terminated with its invoice to come."""
        return self.invoice is None and not self.refused

    @property
    def awaited(self) -> bool:
        return self.terminated and self.invoice is None and not self.refused

    @property
    def committed(self) -> Decimal:
        """The invoice once accepted (it covers the whole agreement), else the debit notes."""
        return self.invoice if self.invoice is not None else sum(self.activities.values(), Decimal(0))

    @property
    def expected(self) -> Decimal:
        """The least this agreement will cost: the invoice, else at least its start price."""
        return max(self.committed, self.floor)

    @property
    def floor(self) -> Decimal:
        if self.invoice is not None or self.pricing is None:
            return Decimal(0)
        return max(self.pricing.fixed, Decimal(0))


class Payments:
    """The allocation and the acceptance of debit notes and invoices.

    Args:
        client: the daemon.
        budget: the most GLM accepted in all (the allocation's amount).
        platform: the payment platform, e.g. ``erc20-hoodi-tglm``.
        allocation_ttl: seconds until the daemon releases the allocation by itself.
        poll: seconds each payment-event long poll waits.
        sink: where events go.
        on_over_budget: called with an agreement id whose debit note would break the
            budget, or whose next debit-note interval would not fit, and why (a phrase
            naming no provider), so its work can be stopped.
        horizon: seconds each of ``n`` engaged providers is still expected to work
            (``JobPace.horizon``); 0 without a pace.
        clock: ``time.monotonic``, or a fake in tests.
        events_client: what the event threads long-poll through (default ``client``).
        interrupt: ends the event polls in flight (on ``events_client``'s own session),
            so stopping waits out no poll.
    """

    def __init__(self, client: YagnaClient, *, budget: Decimal, platform: str, allocation_ttl: float,
                 poll: float, sink: EventSink, on_over_budget: Callable[[str, str], None],
                 events_client: Optional[YagnaClient] = None,
                 interrupt: Callable[[], None] = lambda: None,
                 horizon: Callable[[int], float] = lambda providers: 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._events_client = events_client or client
        self._interrupt = interrupt
        self.budget = budget
        self.platform = platform
        self._ttl = allocation_ttl
        self._poll = poll
        self._sink = sink
        self._on_over_budget = on_over_budget
        self._horizon = horizon
        self._clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._accepting = threading.Lock()  # one check-then-accept at a time: no double spend
        self._accounts: Dict[str, AgreementCost] = {}
        self._names: Dict[str, str] = {}  # provider id -> its node name, for the bill
        self._reserved: Dict[str, Rates] = {}  # prices of agreements being made
        self._seen: set = set()
        self._stop = threading.Event()
        self._closing_at: Optional[float] = None  # finish()'s deadline, once it runs
        self._threads: List[threading.Thread] = []
        self.allocation: Optional[Allocation] = None
        self._since = datetime.now(timezone.utc)

    # ------------------------------------------------------------------ set up
    def start(self) -> MarketDecoration:
        """Create the allocation, start the event threads; return the demand decoration."""
        self._since = datetime.now(timezone.utc)
        self._stop, self._threads = threading.Event(), []
        self._closing_at = None
        timeout = self._since + timedelta(seconds=self._ttl)
        self.allocation = self._client.payment.create_allocation(
            total_amount=self.budget, payment_platform=self.platform, timeout=timeout)
        logger.info("allocated %s on %s (allocation %s)", self._money(self.budget), self.platform,
                    self.allocation.allocation_id)
        for name, target in (("debit-notes", self._debit_note_loop), ("invoices", self._invoice_loop)):
            thread = threading.Thread(target=target, name=f"golem_tasks-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self._client.payment.get_demand_decorations([self.allocation.allocation_id])

    def reserve(self, token: str, provider_name: str, offer_properties: Dict) -> None:
        """Hold the offer's price while its agreement is made (``token`` names it for
        :meth:`track` or :meth:`unreserve`), if it fits: its start price on top of what
        the agreements made will cost at least; its projected cost on top of theirs at
        the job's pace; and its margin on top of the running agreements' margins.

        Raises:
            BudgetExhausted: the offer does not fit in what is left; the message names
                the budget, the amounts and ``budget=``.
        """
        rates = Rates.from_properties(offer_properties)
        price = rates.start
        with self._lock:
            spent, expected = self._spent_locked(), self._expected_locked()
            providers = sum(1 for a in self._accounts.values() if a.running) + len(self._reserved) + 1
            seconds = self._horizon(providers)
            others = self._projected_locked(seconds)
            candidate = projected_cost(rates, ZERO, 0.0, seconds)
            margins = self._margins_locked() + margin(rates)
            made = len(self._accounts)
            if expected + price <= self.budget and others + candidate <= self.budget \
                    and expected + price + margins <= self.budget:
                self._reserved[token] = rates
                return
            # Judged here, under the lock the refusal was made under: a reservation that
            # fails, or an invoice that comes in under the margin kept for it, may free
            # enough; spending only grows otherwise.
            final = not self._reserved and not any(a.may_grow for a in self._accounts.values())
        m = self._money
        if expected + price > self.budget:
            text = (f"the budget of {m(self.budget)} does not cover another provider: {m(spent)} accepted so far, "
                    f"{m(expected)} expected for the {made} agreement(s) made (their start prices at least), and "
                    f"{provider_name}'s start price is {m(price)}; give a larger budget= to engage more")
        elif others + candidate > self.budget:
            text = (f"the budget of {m(self.budget)} does not cover another provider at the job's pace: "
                    f"{m(spent)} accepted so far, {m(others)} projected for the {made} agreement(s) made, and "
                    f"{provider_name} (start price {m(price)}, {m(rates.per_second * 3600)} an hour with "
                    f"{rates.threads} CPU thread(s) busy) is projected at {m(candidate)} for the "
                    f"{seconds:.0f} s each provider still needs; give a larger budget= to engage more")
        else:
            text = (f"the budget of {m(self.budget)} does not cover another provider: {m(expected)} expected for "
                    f"the {made} agreement(s) made, {m(price)} for {provider_name}'s start, and "
                    f"{m(margins)} kept so that every running agreement (and {provider_name}) can run one more "
                    f"debit-note interval and be stopped within the budget; give a larger budget= to engage more")
        raise BudgetExhausted(text, budget=self.budget, spent=spent, expected=expected,
                              projected=others + candidate, final=final)

    def unreserve(self, token: str) -> None:
        """The agreement held by :meth:`reserve` was not made."""
        with self._lock:
            self._reserved.pop(token, None)

    def track(self, agreement_id: str, provider_id: str, offer_properties: Dict,
              reservation: Optional[str] = None, provider_name: str = "") -> None:
        """Pay for this agreement from now on (call once it is approved); it replaces
        the ``reservation`` made for it."""
        usage = offer_properties.get("golem.com.usage.vector")
        names = tuple(usage) if isinstance(usage, list) else ()
        node_name = offer_properties.get("golem.node.id.name")
        with self._lock:
            if isinstance(node_name, str) and node_name:
                self._names[provider_id] = node_name
            self._accounts[agreement_id] = AgreementCost(provider_id, LinearPricing.from_properties(offer_properties),
                                                         names, provider_name,
                                                         rates=Rates.from_properties(offer_properties),
                                                         started=self._clock())
            if reservation is not None:
                self._reserved.pop(reservation, None)
        self._spend_changed()

    def terminated(self, agreement_id: str) -> None:
        """The agreement was terminated: its invoice is due."""
        with self._lock:
            account = self._accounts.get(agreement_id)
            if account is None or account.terminated:
                return
            account.terminated = True
        self._spend_changed()

    # ------------------------------------------------------------- accounting
    @property
    def committed(self) -> Decimal:
        with self._lock:
            return self._spent_locked()

    @property
    def expected(self) -> Decimal:
        """What the agreements made (or being made) will cost at least."""
        with self._lock:
            return self._expected_locked()

    def stopped(self, agreement_id: str) -> bool:
        """The agreement's work was asked to stop (its margin no longer fits, or a debit
        note broke the budget): a session made for it must not start work."""
        with self._lock:
            account = self._accounts.get(agreement_id)
            return account is not None and account.stopped

    def wait_for_invoices(self, deadline: float, abort: Optional[threading.Event] = None) -> bool:
        """Wait, until the monotonic ``deadline`` or ``abort``, for every invoice due
        (terminated agreements) to be accepted or refused; True once none is awaited."""
        with self._lock:
            # abort is an Event this condition cannot be woken by: look at it often.
            return self._await_invoices_locked(
                deadline, lambda: self._closing_at is not None or (abort is not None and abort.is_set()),
                slice_=None if abort is None else ABORT_CHECK)

    def _await_invoices_locked(self, deadline: float, give_up: Callable[[], bool],
                               slice_: Optional[float] = None) -> bool:
        """Wait on the lock's condition until no terminated agreement awaits its invoice
        (True), ``deadline`` passes or ``give_up()`` (False); waking at least every
        ``slice_`` s to ask it."""
        while any(a.awaited for a in self._accounts.values()):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or give_up():
                return False
            self._changed.wait(remaining if slice_ is None else min(remaining, slice_))
        return True

    def active(self) -> int:
        """Agreements running or being made."""
        with self._lock:
            return sum(1 for a in self._accounts.values() if a.running) + len(self._reserved)

    def spend(self) -> Tuple[Decimal, Decimal]:
        """``(accepted so far, projected in all at the job's pace)``."""
        with self._lock:
            running = sum(1 for a in self._accounts.values() if a.running)
            return self._spent_locked(), self._projected_locked(self._horizon(running))

    @property
    def remaining(self) -> Decimal:
        """The budget not yet accepted nor expected."""
        return self.budget - self.expected

    def costs(self) -> Dict[str, Decimal]:
        """Accepted amounts per provider id (invoices, else debit notes so far)."""
        totals: Dict[str, Decimal] = {}
        with self._lock:
            for account in self._accounts.values():
                totals[account.provider_id] = totals.get(account.provider_id, Decimal(0)) + account.committed
        return totals

    def unpaid(self) -> Tuple[str, ...]:
        """Terminated agreements whose invoice has not been accepted."""
        with self._lock:
            return tuple(sorted(a_id for a_id, a in self._accounts.items() if a.terminated and a.invoice is None))

    # -------------------------------------------------------------- finishing
    def finish(self, wait: float) -> Tuple[str, ...]:
        """Wait up to ``wait`` s for the invoices of terminated agreements, stop the
        threads, release the allocation. Returns the agreements left unpaid."""
        deadline = time.monotonic() + wait
        with self._lock:
            # The event threads see it before their next poll: the debit-note one ends,
            # the invoice one waits for what is due in one poll and ends once it came.
            self._closing_at = deadline
            self._changed.notify_all()  # an engage waiting for invoices gives up
            self._await_invoices_locked(deadline, lambda: not any(t.is_alive() for t in self._threads))
        self.stop()
        unpaid = self.unpaid()
        with self._lock:
            refused = {a_id for a_id in unpaid if self._accounts[a_id].refused}
        late = [a_id for a_id in unpaid if a_id not in refused]
        if late:
            logger.warning("no invoice arrived within %g s for agreements %s; they stay unpaid by this run",
                           wait, ", ".join(late))
        if refused:  # each refusal was logged with its reason when it happened
            logger.warning("the invoices of agreements %s were refused; they stay unpaid by this run",
                           ", ".join(sorted(refused)))
        self._release()
        costs = self.costs()
        with self._lock:
            names = dict(self._names)
        self._sink.emit(CostsSettled(costs=costs, total=sum(costs.values(), Decimal(0)), unpaid=unpaid,
                                     names=names, token=token_of(self.platform)))
        return unpaid

    def abandon(self) -> None:
        """Undo a start that failed half way: stop the threads, release the allocation."""
        self.stop()
        self._release()

    def stop(self) -> None:
        """Stop the event threads, ending their polls in flight."""
        self._stop.set()
        for thread in self._threads:
            while thread.is_alive():
                # Again and again: a poll may have begun just after the previous interrupt.
                self._interrupt()
                thread.join(INTERRUPT_AGAIN)

    def _release(self) -> None:
        if self.allocation is None:
            return
        allocation_id, self.allocation = self.allocation.allocation_id, None
        try:
            self._client.payment.release_allocation(allocation_id)
        except (NotFound, Gone):
            pass  # released already (by the daemon at its timeout)
        except ApiError as exc:
            logger.warning("could not release allocation %s: %s (`yagna payment release-allocations` "
                           "frees it)", allocation_id, exc)

    # ------------------------------------------------------------ event loops
    def _debit_note_loop(self) -> None:
        self._event_loop(self._events_client.payment.collect_debit_note_events, "DebitNoteReceivedEvent",
                         lambda event: event.debit_note_id, self._on_debit_note, until_paid=False)

    def _invoice_loop(self) -> None:
        self._event_loop(self._events_client.payment.collect_invoice_events, "InvoiceReceivedEvent",
                         lambda event: event.invoice_id, self._on_invoice, until_paid=True)

    def _event_loop(self, collect: Callable, wanted: str, document_id: Callable, handle: Callable, *,
                    until_paid: bool) -> None:
        after = self._since
        failures = 0
        while not self._stop.is_set():
            timeout = self._poll_timeout(until_paid)
            if timeout is None:
                return
            try:
                events = collect(after_timestamp=after, timeout=timeout)
            except ApiError as exc:
                if self._stop.is_set():
                    return  # interrupted on purpose
                failures += 1
                logger.warning("reading payment events failed (%s); trying again", exc)
                self._stop.wait(min(30.0, 2.0 ** failures))
                continue
            failures = 0
            for event in events:
                after = max(after, event.event_date)
                if event.event_type == wanted:
                    self._handle_once(f"{wanted}:{document_id(event)}", document_id(event), handle)

    def _poll_timeout(self, until_paid: bool) -> Optional[float]:
        """How long the next event poll waits: the usual slice while the run goes on;
        once :meth:`finish` runs, all the wait left for an invoice loop while invoices
        are due (one poll, answered the moment one comes), else None: stop polling."""
        with self._lock:
            if self._closing_at is None:
                return self._poll
            if not until_paid or not any(a.awaited for a in self._accounts.values()):
                return None
            remaining = self._closing_at - time.monotonic()
        return round(min(remaining, MAX_EVENT_POLL), 3) if remaining > 0 else None

    def _handle_once(self, key: str, document_id: str, handle: Callable[[str], None]) -> None:
        if key in self._seen:  # events are persistent and may repeat: handle each document once
            return
        self._seen.add(key)
        try:
            handle(document_id)
        except ApiError as exc:
            logger.warning("could not handle payment document %s: %s", document_id, exc)
        except Exception:  # a bug here must not stop all payments
            logger.exception("handling payment document %s failed", document_id)

    # -------------------------------------------------------------- documents
    def _on_debit_note(self, note_id: str) -> None:
        note = self._client.payment.get_debit_note(note_id)
        with self._accepting:
            with self._lock:
                account = self._accounts.get(note.agreement_id)
                if account is None:
                    logger.debug("debit note %s is for agreement %s, not ours", note_id, note.agreement_id)
                    return
                reason, over = self._debit_note_problem(account, note)
            if reason is not None:
                self._refuse(account, note.agreement_id, note_id, note.total_amount_due, reason)
                if over:
                    with self._lock:
                        account.stopped = True
                    self._on_over_budget(note.agreement_id, "asked for more than is left")
                return
            self._accept(self._client.payment.accept_debit_note, note_id, note.total_amount_due)
            with self._lock:
                previous = account.activities.get(note.activity_id, Decimal(0))
                account.activities[note.activity_id] = max(previous, note.total_amount_due)
                stop = self._margin_problem_locked(account)
        self._sink.emit(DebitNoteAccepted(agreement_id=note.agreement_id, provider_id=account.provider_id,
                                          document_id=note_id, amount=note.total_amount_due))
        self._spend_changed()
        if stop is not None:
            logger.info("stopping the work of agreement %s: it %s", note.agreement_id, stop)
            self._on_over_budget(note.agreement_id, stop)

    def _margin_problem_locked(self, account: AgreementCost) -> Optional[str]:
        """Why ``account``'s work must stop now so that its final invoice fits (another
        debit-note interval and the stop would not), or None; marks it stopped."""
        if account.stopped or not account.running:
            return None
        committed, margins = self._expected_locked(), self._margins_locked()
        if committed + margins <= self.budget:
            return None
        account.stopped = True
        own = margin(account.rates)
        left = self.budget - committed - (margins - own)
        return (f"could ask up to {self._money(own)} more before its next debit note "
                f"({account.rates.interval:g} s) and the stop, and only {self._money(max(left, ZERO))} is left "
                f"for it")

    def _debit_note_problem(self, account: AgreementCost, note: DebitNote) -> Tuple[Optional[str], bool]:
        """Why the note must not be accepted (and whether it is the budget), under the lock."""
        reason = self._payer_problem(note.payment_platform, note.payer_addr)
        if reason is not None:
            return reason, False
        due = note.total_amount_due
        price = _price_of(account, note.usage_counter_vector)
        if price is not None and due > price * PRICE_TOLERANCE + Decimal("1e-18"):
            return (f"it asks {self._money(due)}, more than the agreed price of the usage it reports "
                    f"({self._money(price)})"), False
        previous = account.activities.get(note.activity_id, Decimal(0))
        after = self._expected_locked() - account.expected + max(_with(account, note.activity_id, due),
                                                                  account.floor)
        if due > previous and after > self.budget:
            return (f"accepting it would bring the total to {self._money(after)}, over the budget of "
                    f"{self._money(self.budget)}"), True
        return None, False

    def _on_invoice(self, invoice_id: str) -> None:
        invoice = self._client.payment.get_invoice(invoice_id)
        with self._accepting:
            with self._lock:
                account = self._accounts.get(invoice.agreement_id)
                if account is None:
                    logger.debug("invoice %s is for agreement %s, not ours", invoice_id, invoice.agreement_id)
                    return
                reason = self._invoice_problem(account, invoice)
            if reason is not None:
                with self._lock:
                    account.refused = True
                    self._changed.notify_all()
                self._refuse(account, invoice.agreement_id, invoice_id, invoice.amount, reason)
                return
            self._accept(self._client.payment.accept_invoice, invoice_id, invoice.amount)
            with self._lock:
                account.invoice = invoice.amount
                self._changed.notify_all()
        logger.info("accepted invoice %s of %s from %s", invoice_id, self._money(invoice.amount),
                    provider_label(account.provider_name, account.provider_id))
        self._sink.emit(InvoiceAccepted(agreement_id=invoice.agreement_id, provider_id=account.provider_id,
                                        document_id=invoice_id, amount=invoice.amount))
        self._spend_changed()

    def _invoice_problem(self, account: AgreementCost, invoice: Invoice) -> Optional[str]:
        reason = self._payer_problem(invoice.payment_platform, invoice.payer_addr)
        if reason is not None:
            return reason
        after = self._expected_locked() - account.expected + invoice.amount
        if after > self.budget:
            return (f"accepting it would bring the total to {self._money(after)}, over the budget of "
                    f"{self._money(self.budget)}")
        return None

    def _payer_problem(self, platform: str, payer: str) -> Optional[str]:
        allocation = self.allocation
        if allocation is None:
            return "the allocation is already released"
        if platform != allocation.payment_platform or payer.lower() != allocation.address.lower():
            return f"it is payable on {platform} by {payer}, not by our allocation"
        return None

    def _money(self, amount: Decimal) -> str:
        return money(amount, token_of(self.platform))

    def _spent_locked(self) -> Decimal:
        return sum((a.committed for a in self._accounts.values()), Decimal(0))

    def _expected_locked(self) -> Decimal:
        return sum((a.expected for a in self._accounts.values()), Decimal(0)) + \
            sum((rates.start for rates in self._reserved.values()), Decimal(0))

    def _margins_locked(self) -> Decimal:
        """What the agreements that may still ask for more could add before they stop."""
        return sum((margin(a.rates) for a in self._accounts.values() if a.may_grow), ZERO) + \
            sum((margin(rates) for rates in self._reserved.values()), ZERO)

    def _projected_locked(self, seconds: float) -> Decimal:
        """What the agreements made and being made will cost in all, the running ones
        working ``seconds`` more."""
        now, total = self._clock(), ZERO
        for account in self._accounts.values():
            if account.running:
                total += projected_cost(account.rates, account.committed, now - account.started, seconds)
            else:
                total += account.expected
        return total + sum((projected_cost(rates, ZERO, 0.0, seconds) for rates in self._reserved.values()), ZERO)

    def _spend_changed(self) -> None:
        spent, projected = self.spend()
        self._sink.emit(SpendUpdated(spent=spent, projected=projected, budget=self.budget,
                                     token=token_of(self.platform)))

    def _accept(self, accept: Callable, document_id: str, amount: Decimal) -> None:
        allocation = self.allocation
        assert allocation is not None  # checked by _payer_problem under the same lock
        accept(document_id, amount, allocation.allocation_id)

    def _refuse(self, account: AgreementCost, agreement_id: str, document_id: str, amount: Decimal,
                reason: str) -> None:
        logger.warning("not accepting %s from %s: %s", document_id,
                       provider_label(account.provider_name, account.provider_id), reason)
        self._sink.emit(PaymentRefused(agreement_id=agreement_id, provider_id=account.provider_id,
                                       document_id=document_id, amount=amount, reason=reason))


def _with(account: AgreementCost, activity_id: str, due: Decimal) -> Decimal:
    """The account's committed amount if ``activity_id`` were at ``due``."""
    if account.invoice is not None:
        return account.invoice
    activities = dict(account.activities)
    activities[activity_id] = max(activities.get(activity_id, Decimal(0)), due)
    return sum(activities.values(), Decimal(0))


def _price_of(account: AgreementCost, vector: Optional[Sequence]) -> Optional[Decimal]:
    """The agreed linear price of a usage vector, or None when it cannot be known."""
    if account.pricing is None or not isinstance(vector, list) or len(vector) != len(account.usage_names):
        return None
    try:
        return account.pricing.cost(dict(zip(account.usage_names, (str(v) for v in vector))))
    except (TypeError, ValueError, ArithmeticError):
        return None

