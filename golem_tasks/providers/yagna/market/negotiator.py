"""The market side: one demand subscription, one thread reading its events, offers
filtered and countered, the providers' drafts kept as candidates, agreements made.

Market events are consumed on read, so exactly one thread reads them (yagna-protocol.md
§2.4). It answers each fresh offer: rejected with a reason, or countered with our
demand plus the chosen payment platform and debit-note acceptance timeout. A provider's
draft answering our counter becomes a *candidate*; ``engage`` threads take the best
candidate and turn it into an approved agreement (:mod:`.agreement`).

The demand is subscribed only while an ``engage`` needs it: the first one pending
subscribes (:meth:`Negotiator.engaging`), and when the last one returns the demand is
withdrawn and its drafts are dropped, so no provider keeps negotiating for work that
is not there. While engages wait, the subscription is renewed with a freshly built
demand when the daemon forgets it (404: subscriptions lapse after an hour), when half
of its expiration window has passed (an agreement made from it lives only until that
expiration), and when every draft is used up (offers arrive again only for a new
subscription).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from contextlib import contextmanager
from typing import AbstractSet, Callable, Dict, Iterator, List, Optional, Set

from ....errors import ApiError, ProviderError, StartupTimeout
from .agreement import check_abort
from .._client import YagnaClient
from .demand import (
    ACCEPT_TIMEOUT,
    CHOSEN_PLATFORM,
    DEBIT_NOTE_INTERVAL,
    MAX_EXPIRATION,
    MIN_EXPIRATION,
    PAYMENT_TIMEOUT,
    Demand,
)
from .agreement import Candidate
from .counters import CounterBook
from .._events import EventSink, MarketStatus, OfferCountered, OfferRejected
from .filters import OfferFilter, Score, terms_refusal
from .manifest import provider_refusal
from .models import Proposal, ProposalEvent, ProposalRejectedEvent
from .status import (
    FAILED_EARLIER,
    OTHER,
    TERMS,
    MarketLedger,
    Refusal,
    StartupWatch,
)
from .._settings import Timeouts
from ..errors import NotFound

logger = logging.getLogger(__name__)

#: How often a thread waiting for a candidate looks at the scheduler's abort event
#: (an Event it cannot be woken by); new candidates wake it at once.
ABORT_CHECK = 0.05
#: How often an idle reader (no engage pending, so no demand) looks at the stop flag.
IDLE_CHECK = 1.0


class Negotiator:
    """Negotiation with providers for one ``GolemProvider``.

    Args:
        client: the daemon.
        build_demand: makes a fresh demand (new expiration) for each subscription.
        platform: the payment platform we pay on.
        offer_filter: which offers to take.
        score: ranks candidates; the highest is taken first.
        accept_timeout: the debit-note acceptance timeout we promise (None: none).
        budget: the whole budget (offers starting above it are refused).
        remaining_budget: what is left of it (candidates that fit are engaged first).
        timeouts: the poll and wait times.
        sink: where events go.
        startup_timeout: most seconds to wait with no provider engaged (None: no limit).
        scan_unmatched: makes a market scan and returns the refusals of the offers the
            demand cannot match; called when a warning is due and no offer came at all.
        clock: ``time.monotonic``, or a fake in tests of the waiting rules.
    """

    def __init__(self, client: YagnaClient, *, build_demand: Callable[[], Demand], platform: str,
                 offer_filter: OfferFilter, score: Score, accept_timeout: Optional[int],
                 budget: Decimal, remaining_budget: Callable[[], Decimal], timeouts: Timeouts, sink: EventSink,
                 app_session_id: str, startup_timeout: Optional[float] = None,
                 scan_unmatched: Optional[Callable[[], List[Refusal]]] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._build_demand = build_demand
        self._platform = platform
        self._filter = offer_filter
        self._score = score
        self._accept_timeout = accept_timeout
        self._budget = budget
        self._remaining_budget = remaining_budget
        self._t = timeouts
        self._sink = sink
        self.app_session_id = app_session_id
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._subscribing = threading.Lock()  # one subscribe or withdraw decision at a time
        self._engaging = 0  # engage() calls pending
        self._stop = threading.Event()
        self._demand: Optional[Demand] = None
        self._subscription: Optional[str] = None
        self._subscribed_at = 0.0
        self._renew_at = datetime.now(timezone.utc)
        self._candidates: Dict[str, Candidate] = {}
        self._counters = CounterBook()
        self._busy: Set[str] = set()
        self._excluded: Set[str] = set()   # the scheduler's, as of the latest engage
        self._cooling: Dict[str, float] = {}  # provider -> clock value its cool-down ends
        self._engaged: Set[str] = set()
        self._refusing: Optional[Exception] = None  # set by refuse_all: no candidate is handed out
        self._waiting = 0
        self._starved = False
        self._last_error: Optional[str] = None
        self._clock = clock
        self._scan_unmatched = scan_unmatched
        #: What the market showed: offers, and why each provider's latest was refused.
        self.ledger = MarketLedger(platform=platform)
        self._watch = StartupWatch(report_every=timeouts.report, startup_timeout=startup_timeout, clock=clock)
        self._reported: Optional[tuple] = None
        self._reader: Optional[threading.Thread] = None
        self._calls = ThreadPoolExecutor(4, thread_name_prefix="golem_tasks-negotiate")

    # ---------------------------------------------------------------- life
    def start(self) -> None:
        """Subscribe (errors raise here, so a bad demand fails the first engage) and
        start the reader thread. The demand is withdrawn when the first engage that
        comes returns with no other pending."""
        with self._subscribing:
            self._renew()
        self._reader = threading.Thread(target=self._read_loop, name="golem_tasks-market", daemon=True)
        self._reader.start()

    def stop(self) -> None:
        """Stop reading offers, withdraw the demand, end the negotiation threads."""
        self._stop.set()
        self._counters.close()
        with self._lock:
            self._changed.notify_all()
            subscription, self._subscription = self._subscription, None
        if subscription is not None:
            self._unsubscribe(subscription)  # first: it may also end the reader's long poll
        if self._reader is not None:
            self._reader.join()
        self._calls.shutdown(wait=True)

    # ------------------------------------------------------------- engaging
    @contextmanager
    def engaging(self) -> Iterator[None]:
        """Around one ``engage``: the demand is subscribed while any is pending, and
        withdrawn (its drafts dropped) when the last one leaves.

        Raises:
            ApiError: the demand could not be subscribed.
        """
        with self._lock:
            self._engaging += 1
            self._changed.notify_all()  # an idle reader starts reading again
        try:
            with self._subscribing:
                if self._subscription is None and not self._stop.is_set():
                    self._renew()
            yield
        finally:
            with self._lock:
                self._engaging -= 1
            self._withdraw_if_idle()

    def _withdraw_if_idle(self) -> None:
        with self._subscribing:
            with self._lock:
                if self._engaging or self._subscription is None:
                    return
                subscription, self._subscription = self._subscription, None
                self._candidates.clear()
                self._counters.clear()
            logger.debug("no engage pending: demand %s withdrawn", subscription)
            self._unsubscribe(subscription)  # also ends the reader's long poll

    def exclude(self, provider_ids: AbstractSet[str]) -> None:
        """The providers the scheduler does not want (over its failure limit): the
        latest set replaces the one before, so the scheduler can let one back in."""
        with self._lock:
            self._excluded = set(provider_ids)

    def cool_down(self, provider_id: str, reason: str) -> None:
        """Do not engage ``provider_id`` for ``Timeouts.cooldown`` seconds (it failed to
        start work, or rejected agreements); its offers are still countered, so it can be
        engaged as soon as the cool-down ends."""
        with self._lock:
            self._cooling[provider_id] = self._clock() + self._t.cooldown
        self.ledger.refused(provider_id, Refusal(FAILED_EARLIER, f"cooling down after: {reason}"))

    def mark_engaged(self, provider_id: str) -> None:
        """``provider_id`` runs a session now: a wait for the first provider is over."""
        with self._lock:
            self._engaged.add(provider_id)
            self._cooling.pop(provider_id, None)
            engaged = len(self._engaged)
            waited = self._watch.engaged()
            status = self._status_locked(waited or 0.0, engaged) if waited is not None else None
            self._reported = None
        if status is not None:
            logger.info("provider engaged after %.1f s of waiting (%s)", waited, status.summary)
            self._sink.emit(status)

    def take(self, deadline: float, abort: Optional[threading.Event]) -> Candidate:
        """Block until a candidate of a provider that is neither busy nor excluded is
        ready; mark its provider busy and return it.

        Raises:
            EngagementCancelled: ``abort`` was set.
            ProviderError: ``deadline`` passed (or nothing came since the last time it
                did), or the market was stopped.
        """
        with self._lock:
            if self._starved:
                deadline = min(deadline, time.monotonic())
            self._waiting += 1
            self._watch.enter(engaged=bool(self._engaged))
        self.report()  # a wait that just began says so at once
        with self._lock:
            try:
                while True:
                    check_abort(abort)
                    if self._refusing is not None:
                        raise self._refusing
                    if self._stop.is_set():
                        raise ProviderError("the GolemProvider is closing: no more providers are engaged")
                    candidate = self._pop_best()
                    if candidate is not None:
                        self._busy.add(candidate.proposal.provider_id)
                        return candidate
                    if self._watch.expired() and not self._busy:
                        # A provider being engaged (agreement, deploy) may still make it.
                        raise self._startup_timeout()
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        self._starved = True
                        raise ProviderError(self._starved_message())
                    self._changed.wait(min(remaining, ABORT_CHECK))
            finally:
                self._waiting -= 1
                self._watch.leave()

    def refuse_all(self, error: Exception) -> None:
        """No provider is engaged any more (the budget is spent): every wait for a
        candidate, now and later, raises ``error`` at once."""
        with self._lock:
            self._refusing = error
            self._changed.notify_all()

    def put_back(self, candidate: Candidate) -> None:
        """``candidate`` was taken but not used (the budget did not allow it): keep it."""
        with self._lock:
            if candidate.subscription_id == self._subscription:
                self._candidates.setdefault(candidate.proposal.provider_id, candidate)

    def release(self, provider_id: str) -> None:
        """The provider's agreement is over; it may be engaged again (after a new offer)."""
        with self._lock:
            self._busy.discard(provider_id)
            self._engaged.discard(provider_id)

    def _cooling_locked(self, provider_id: str) -> bool:
        until = self._cooling.get(provider_id)
        if until is not None and until <= self._clock():
            del self._cooling[provider_id]  # over: it may be engaged again
            until = None
        return until is not None

    def _pop_best(self) -> Optional[Candidate]:
        usable = [c for c in self._candidates.values()
                  if c.proposal.provider_id not in self._busy and c.proposal.provider_id not in self._excluded
                  and not self._cooling_locked(c.proposal.provider_id)]
        if not usable:
            return None
        left = self._remaining_budget()
        affordable = [c for c in usable if _start_price(c) <= left]
        # None fits: the best is still handed out, so engage reports the budget at once
        # instead of waiting for offers that cannot help.
        usable = affordable or usable
        best = max(c.score for c in usable)
        chosen = random.choice([c for c in usable if c.score == best])  # ties: spread the work
        del self._candidates[chosen.proposal.provider_id]
        return chosen

    def _starved_message(self) -> str:
        text, _ = self._explain_locked()
        text = f"no Golem provider could be engaged within {self._t.negotiation:g} s: {text}"
        if self._last_error:
            text += f"; last market error: {self._last_error}"
        return text

    def _startup_timeout(self) -> StartupTimeout:
        text, reasons = self._explain_locked()
        text = (f"no Golem provider was engaged within startup_timeout={self._watch.startup_timeout:g} s: "
                f"{text}")
        if self._last_error:
            text += f"; last market error: {self._last_error}"
        return StartupTimeout(text, reasons=reasons)

    def explain(self) -> str:
        """What the market shows, its main causes and the fix, in one line."""
        with self._lock:
            return self._explain_locked()[0]

    def _explain_locked(self) -> "tuple[str, tuple[str, ...]]":
        return self.ledger.explain(pending=len(self._counters), candidates=self._waiting_candidates())

    def _waiting_candidates(self) -> int:
        return sum(1 for c in self._candidates.values()
                   if c.proposal.provider_id not in self._busy | self._excluded)

    # ------------------------------------------------------------- feedback
    def report(self) -> None:
        """While an engage waits and no provider is engaged: a ``MarketStatus`` event
        when what the market shows changed, and a warning every ``Timeouts.report`` s."""
        with self._lock:
            if not self._watch.active or self._waiting == 0 or self._engaged:
                return
            warn = self._watch.warning_due()
        if warn and not self.ledger.offers and self._scan_unmatched is not None:
            # Nothing reaches the demand: a scan can tell why (another subnet, ...).
            try:
                self.ledger.scanned(self._scan_unmatched())
            except ApiError as exc:
                logger.debug("the market scan that would explain the silence failed: %s", exc)
        with self._lock:
            if not self._watch.active or self._waiting == 0 or self._engaged:
                return
            status = self._status_locked(self._watch.waited(), 0)
            key = (status.offers, status.rejected, status.pending, status.candidates, status.unmatched)
            changed, self._reported = key != self._reported, key
            hint = self._explain_locked()[0] if warn else ""
        if changed:
            self._sink.emit(status)
        if warn:
            logger.warning("no Golem provider engaged after %.0f s: %s", status.waited, hint)

    def _status_locked(self, waited: float, engaged: int) -> MarketStatus:
        pending, candidates = len(self._counters), self._waiting_candidates()
        summary = self.ledger.summary(pending=pending, candidates=candidates)
        if engaged:
            summary = f"{engaged} provider(s) engaged after {waited:.0f} s; {summary}"
        else:
            summary = f"waiting for a provider ({waited:.0f} s): {summary}"
        offers = self.ledger.offers
        return MarketStatus(waited=waited, engaged=engaged, summary=summary, offers=offers,
                            rejected=self.ledger.counts(), pending=pending, candidates=candidates,
                            unmatched=() if offers else self.ledger.unmatched_counts())

    # ---------------------------------------------------------- subscription
    def _renew(self) -> None:
        """Subscribe a freshly built demand; withdraw the old one (``_subscribing`` held)."""
        demand = self._build_demand()
        subscription = self._client.market.subscribe_demand(demand)
        now = datetime.now(timezone.utc)
        expires = demand.expiration or now + MIN_EXPIRATION
        # Renew at half-life, and never later than a minute before the 5 min providers
        # need (an agreement made from this demand lives only until its expiration),
        # but not more often than every quarter of the lifetime.
        life = expires - now
        renew_at = max(now + life / 4, expires - max(MIN_EXPIRATION + timedelta(minutes=1), life / 2))
        with self._lock:
            if self._stop.is_set():  # stopped while subscribing: withdraw it at once
                stale: Optional[str] = subscription
            else:
                stale, self._subscription, self._demand = self._subscription, subscription, demand
                self._renew_at, self._subscribed_at = renew_at, time.monotonic()
                self._candidates = {k: c for k, c in self._candidates.items()
                                    if c.subscription_id == subscription}
                self._counters.clear()
        logger.info("demand subscribed (%s), expires %s", subscription, demand.expiration)
        if stale is not None:
            self._unsubscribe(stale)

    def _unsubscribe(self, subscription: str) -> None:
        try:
            self._client.market.unsubscribe_demand(subscription)
        except NotFound:
            pass  # lapsed already
        except ApiError as exc:
            logger.warning("could not withdraw demand %s: %s", subscription, exc)

    def _renewal_due(self) -> bool:
        with self._lock:
            if self._subscription is None:
                return self._engaging > 0  # lapsed while needed (else: idle, none wanted)
            if datetime.now(timezone.utc) >= self._renew_at:
                return True
            starving = self._waiting > 0 and not any(
                c.proposal.provider_id not in self._busy | self._excluded for c in self._candidates.values())
            return starving and time.monotonic() - self._subscribed_at > self._t.resubscribe

    # ------------------------------------------------------------- reading
    def _read_loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            subscription = None
            try:
                if self._renewal_due():
                    with self._subscribing:
                        if self._renewal_due():
                            self._renew()
                with self._lock:
                    subscription = self._subscription
                    if subscription is None:  # idle: no engage pending, no demand
                        self._changed.wait(IDLE_CHECK)
                        continue
                events = self._client.market.collect_offers(subscription, timeout=self._t.market_poll,
                                                            max_events=100)
                failures = 0
            except NotFound:
                with self._lock:
                    lapsed = subscription is not None and self._subscription == subscription
                    if lapsed:
                        self._subscription = None
                if lapsed:  # else it was withdrawn on purpose
                    logger.info("the demand subscription lapsed; subscribing again")
                continue
            except ApiError as exc:
                failures += 1
                self._last_error = exc.message
                logger.warning("reading offers failed (%s); trying again", exc)
                self._stop.wait(min(30.0, 0.5 * 2.0 ** failures))
                continue
            for event in events:
                self._on_event(event, subscription)
            self.report()

    def _on_event(self, event: object, subscription: str) -> None:
        with self._lock:
            stale = subscription != self._subscription
        if stale:
            # Read from a demand withdrawn or replaced since: its counters are forgotten
            # and its drafts cannot become agreements, so nothing in it is ours to take.
            logger.debug("market event of withdrawn demand %s ignored", subscription)
            return
        if isinstance(event, ProposalEvent):
            proposal = event.proposal
            if proposal.state == "Initial":
                self.ledger.offered(proposal.provider_id)
            with self._lock:
                busy = proposal.provider_id in self._busy
            if busy:
                logger.debug("offer from %s ignored: it is working for us", proposal.provider_id)
            elif proposal.state == "Initial":
                self._on_offer(proposal)
            elif proposal.state == "Draft":
                self._on_draft(proposal)
        elif isinstance(event, ProposalRejectedEvent):
            offer = self._counters.answered(event.proposal_id)
            self._rejected(offer, event.proposal_id, provider_refusal(event.reason_message), by_provider=True)

    def _on_offer(self, proposal: Proposal) -> None:
        refusal = self._refusal(proposal)
        if refusal is not None:
            self._rejected(proposal, proposal.proposal_id, refusal)
            self._submit(self._reject_call, proposal.proposal_id, refusal.reason)
            return
        with self._lock:
            cooling = self._cooling_locked(proposal.provider_id)
        if not cooling:  # a cool-down stays counted until it ends
            self.ledger.cleared(proposal.provider_id)
        self._submit(self._counter_call, proposal)

    def _on_draft(self, proposal: Proposal) -> None:
        offer = self._counters.answered(proposal.prev_proposal_id)
        refusal = self._refusal(proposal)
        if refusal is not None:
            self._rejected(proposal, proposal.proposal_id, refusal)
            self._submit(self._reject_call, proposal.proposal_id, refusal.reason)
            return
        self.ledger.answered(proposal.provider_id)
        with self._lock:
            subscription = self._subscription or ""
            self._candidates[proposal.provider_id] = Candidate(proposal, self._score(proposal), subscription, offer)
            self._starved = False
            self._changed.notify_all()
        logger.debug("draft from %s (%s) is a candidate", proposal.provider_name, proposal.provider_id)

    def _refusal(self, proposal: Proposal) -> Optional[Refusal]:
        with self._lock:
            if proposal.provider_id in self._excluded:
                return Refusal(FAILED_EARLIER, "provider failed earlier in this run",
                               setting="provider_failure_limit")
            demand = self._demand
        if self._accept_timeout is not None and proposal.debit_note_accept_timeout is None and \
                demand is not None and demand.expiration is not None and \
                demand.expiration - datetime.now(timezone.utc) > MAX_EXPIRATION:
            return Refusal(TERMS, "no debit-note acceptance timeout in the offer, which an expiration over "
                                  "30 min needs (pass expiration= of 30 min at most)")
        return terms_refusal(proposal, platform=self._platform, offer_filter=self._filter, budget=self._budget)

    def _rejected(self, proposal: Optional[Proposal], proposal_id: str, refusal: Refusal,
                  by_provider: bool = False) -> None:
        reason = refusal.reason
        provider_id = proposal.provider_id if proposal is not None else ""
        self.ledger.refused(provider_id or proposal_id, refusal)
        name = proposal.provider_name if proposal is not None else ""
        logger.info("offer %s from %s rejected%s: %s", proposal_id, name or "a provider",
                    " by the provider" if by_provider else "", reason)
        self._sink.emit(OfferRejected(provider_id=provider_id, provider_name=name, proposal_id=proposal_id,
                                      reason=reason, by_provider=by_provider))

    # ------------------------------------------------------ negotiation calls
    def _submit(self, call: Callable, *args: object) -> None:
        try:
            self._calls.submit(call, *args)
        except RuntimeError:  # shut down: the market is stopping
            pass

    def _counter_call(self, proposal: Proposal) -> None:
        with self._lock:
            demand, subscription = self._demand, self._subscription
            if demand is None or subscription is None or self._stop.is_set():
                return
            ticket = self._counters.calling()  # under the lock that clears the book
        counter_id: Optional[str] = None
        try:
            counter_id = self._client.market.counter_proposal(subscription, proposal.proposal_id,
                                                              self._counter_demand(demand, proposal))
        except ApiError as exc:  # expired, countered already, provider gone: the next offer will do
            logger.debug("countering the offer of %s failed: %s", proposal.provider_id, exc)
            self.ledger.refused(proposal.provider_id, Refusal(OTHER, f"our counter-proposal failed: {exc.message}"))
            return
        finally:
            self._counters.called(ticket, counter_id, proposal)
        self._sink.emit(OfferCountered(provider_id=proposal.provider_id, provider_name=proposal.provider_name,
                                       proposal_id=proposal.proposal_id))

    def _counter_demand(self, demand: Demand, proposal: Proposal) -> Demand:
        properties = dict(demand.properties)
        properties[CHOSEN_PLATFORM] = self._platform
        theirs = proposal.debit_note_accept_timeout
        for key in (DEBIT_NOTE_INTERVAL, PAYMENT_TIMEOUT):
            properties.pop(key, None)
        if self._accept_timeout is None or theirs is None:
            properties.pop(ACCEPT_TIMEOUT, None)
        else:
            # Providers refuse a longer timeout than they offer and echo a shorter one.
            properties[ACCEPT_TIMEOUT] = max(5, min(self._accept_timeout, theirs))
            terms = proposal.mid_agreement_payments
            if terms is not None:
                # Mid-agreement payments as the provider proposes them: its debit notes
                # become payable during the run, and the daemon pays each accepted one
                # by its due date, so a long fragment is not all owed at the end.
                properties[DEBIT_NOTE_INTERVAL], properties[PAYMENT_TIMEOUT] = terms
        return Demand(properties, demand.constraints)

    def _reject_call(self, proposal_id: str, reason: str) -> None:
        with self._lock:
            subscription = self._subscription
        if subscription is None or self._stop.is_set():
            return
        try:
            self._client.market.reject_proposal(subscription, proposal_id, reason)
        except ApiError as exc:  # the offer is gone anyway
            logger.debug("rejecting proposal %s: %s", proposal_id, exc)


def _start_price(candidate: Candidate) -> Decimal:
    pricing = candidate.proposal.pricing
    return pricing.fixed if pricing is not None else Decimal(0)
