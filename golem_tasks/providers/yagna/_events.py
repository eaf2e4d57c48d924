"""What the Golem provider reports while it rents providers, as plain frozen records.

They extend :class:`golem_tasks.events.Event` (ids and values only, never live objects),
so a consumer of the scheduler's events can take them as they are. A consumer is a
callable given to ``GolemProvider(events=...)`` or :meth:`GolemProvider.add_event_consumer`;
it runs on the provider's threads, must be quick, and an exception in it is logged,
never raised. The tree (only leaves are emitted)::

    Event (golem_tasks.events)
    └── YagnaEvent
        ├── OfferEvent                  provider_id, provider_name, proposal_id
        │   ├── OfferRejected           reason, by_provider
        │   └── OfferCountered
        ├── RentalEvent                 agreement_id, provider_id, provider_name
        │   ├── AgreementApproved
        │   ├── AgreementFailed         reason (not made, not approved, activity failed)
        │   └── AgreementTerminated     reason, success
        ├── PaymentEvent                agreement_id, provider_id, document_id, amount
        │   ├── DebitNoteAccepted
        │   ├── InvoiceAccepted
        │   └── PaymentRefused          reason (over budget, over the agreed price, ...)
        ├── BudgetReached               reason, budget, spent, expected, projected (no more engaged)
        └── MarketStatus                offers, rejected, pending, candidates, unmatched (+ ProviderSearch's
                                        waited, engaged, summary): while no provider is engaged
    (CostsSettled, emitted once when the provider closes, and SpendUpdated, the spend
    as it goes, are in golem_tasks.events: any provider with a bill can report them.)
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Callable, Iterable, Mapping, Optional, Tuple

import attrs

from ...events import CostsSettled, Emitter, Event, ProviderSearch, SpendUpdated

logger = logging.getLogger(__name__)

__all__ = (
    "AgreementApproved", "AgreementFailed", "AgreementTerminated", "BudgetReached", "CostsSettled", "DebitNoteAccepted",
    "EventSink", "InvoiceAccepted", "MarketStatus", "OfferCountered", "OfferEvent", "OfferRejected", "PaymentEvent",
    "PaymentRefused", "RentalEvent", "SpendUpdated", "YagnaEvent",
)


def _decimal_items(value: Mapping[str, Decimal]) -> Tuple[Tuple[str, Decimal], ...]:
    return tuple(sorted(dict(value).items()))


def _count_pairs(value: Iterable[Tuple[str, int]]) -> Tuple[Tuple[str, int], ...]:
    return tuple((str(name), int(count)) for name, count in value)


@attrs.frozen(kw_only=True)
class YagnaEvent(Event):
    """Base of the Golem provider's events."""


@attrs.frozen(kw_only=True)
class OfferEvent(YagnaEvent):
    provider_id: str
    provider_name: str
    proposal_id: str


@attrs.frozen(kw_only=True)
class OfferRejected(OfferEvent):
    """An offer was turned down. ``by_provider`` is True when the provider rejected our
    counter-proposal (``reason`` is then its message); otherwise a filter did."""

    reason: str
    by_provider: bool = False


@attrs.frozen(kw_only=True)
class OfferCountered(OfferEvent):
    """An offer passed every filter and was answered with our terms."""


@attrs.frozen(kw_only=True)
class RentalEvent(YagnaEvent):
    agreement_id: str
    provider_id: str
    provider_name: str


@attrs.frozen(kw_only=True)
class AgreementApproved(RentalEvent):
    """The provider approved the agreement; its activity is created next."""


@attrs.frozen(kw_only=True)
class AgreementFailed(RentalEvent):
    """An agreement did not lead to a working session (not approved, activity or
    deploy failed). ``agreement_id`` is empty when none was made."""

    reason: str


@attrs.frozen(kw_only=True)
class AgreementTerminated(RentalEvent):
    """We ended the agreement; the provider now sends its invoice."""

    reason: str
    success: bool


@attrs.frozen(kw_only=True)
class PaymentEvent(YagnaEvent):
    agreement_id: str
    provider_id: str
    document_id: str
    amount: Decimal


@attrs.frozen(kw_only=True)
class DebitNoteAccepted(PaymentEvent):
    """A debit note was accepted (``amount`` is its cumulative total due)."""


@attrs.frozen(kw_only=True)
class InvoiceAccepted(PaymentEvent):
    """An invoice was accepted; the daemon pays it."""


@attrs.frozen(kw_only=True)
class PaymentRefused(PaymentEvent):
    """A debit note or invoice was not accepted, and why."""

    reason: str


@attrs.frozen(kw_only=True)
class BudgetReached(YagnaEvent):
    """A provider was not engaged, or work was stopped, because of the budget: ``reason``
    says which and how to fix it; ``spent`` is accepted so far, ``expected`` what the
    agreements made will cost at least, ``projected`` what they (and the provider not
    engaged) would cost at the job's pace (None when work was stopped)."""

    reason: str
    budget: Decimal
    spent: Decimal
    expected: Decimal
    projected: Optional[Decimal] = None


@attrs.frozen(kw_only=True)
class MarketStatus(YagnaEvent, ProviderSearch):
    """What the market shows while no provider is engaged: emitted when it changes, and
    once more (``engaged`` > 0) when the first provider is engaged. Also a
    :class:`golem_tasks.events.ProviderSearch`, so the progress bar shows ``summary``.

    Attributes:
        offers: providers that made an offer matching the demand.
        rejected: ``(reason category, providers)`` pairs, most first; the categories
            are filters, price caps, budget, payment network, failed earlier, provider
            refused, demand terms.
        pending: our counter-proposals the providers have not answered yet.
        candidates: providers that answered and wait for an agreement.
        unmatched: with no offer at all, ``(reason category, offers)`` of the offers a
            market scan found that the demand cannot match (subnet, payment network,
            hardware or runtime); made at the first warning, empty before.
    """

    offers: int
    rejected: Tuple[Tuple[str, int], ...] = attrs.field(converter=_count_pairs)
    pending: int
    candidates: int
    unmatched: Tuple[Tuple[str, int], ...] = attrs.field(default=(), converter=_count_pairs)


Consumer = Callable[[Event], None]


#: The scheduler's emitter serves the provider too: same rules, one implementation.
EventSink = Emitter
