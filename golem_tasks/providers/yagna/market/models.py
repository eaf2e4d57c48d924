"""What the market answers: proposals (offers), their events, agreements.

Each class is a frozen value parsed by ``from_json`` from the daemon's JSON
(yagna-protocol.md §2.4-2.5); ``to_json`` writes the same shape back.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import attrs

from .demand import ACCEPT_TIMEOUT, DEBIT_NOTE_INTERVAL, PAYMENT_TIMEOUT
from .._http.json import (
    format_timestamp,
    frozen_mapping,
    optional_str,
    optional_timestamp,
    parse_decimal,
    parse_timestamp,
    required_str,
)

PROPOSAL_STATES = ("Initial", "Draft", "Rejected", "Accepted", "Expired")
AGREEMENT_STATES = ("Proposal", "Pending", "Cancelled", "Rejected", "Approved", "Expired", "Terminated")
_PLATFORM_PREFIX = "golem.com.payment.platform."
_PLATFORM_SUFFIX = ".address"


def _optional_mapping(value: Optional[Mapping[str, Any]]) -> Optional[Mapping[str, Any]]:
    return None if value is None else frozen_mapping(value)


@attrs.frozen
class LinearPricing:
    """The offer's linear price: ``fixed + sum(per_usage[name] * usage[name])``.

    ``golem.com.pricing.model.linear.coeffs`` has one coefficient per entry of
    ``golem.com.usage.vector`` and, last, the fixed price (amounts in GLM).
    """

    fixed: Decimal = attrs.field(converter=parse_decimal)
    per_usage: Mapping[str, Decimal] = attrs.field(converter=frozen_mapping, hash=False)

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any]) -> Optional["LinearPricing"]:
        """The pricing of an offer, or None when it has no (or a malformed) linear model."""
        coeffs = properties.get("golem.com.pricing.model.linear.coeffs")
        usage = properties.get("golem.com.usage.vector")
        if not isinstance(coeffs, list) or not isinstance(usage, list) or len(coeffs) != len(usage) + 1:
            return None
        try:
            values = [parse_decimal(value) for value in coeffs]
        except (TypeError, ValueError):
            return None
        return cls(values[-1], dict(zip(usage, values[:-1])))

    def cost(self, usage: Mapping[str, Union[Decimal, int, str]]) -> Decimal:
        """The price of ``usage`` (usage name -> amount; missing names count as 0)."""
        total = self.fixed
        for name, coeff in self.per_usage.items():
            total += coeff * parse_decimal(usage.get(name, 0))
        return total


@attrs.frozen(kw_only=True)
class Proposal:
    """An offer from a provider, or one step of a negotiation with it.

    Attributes:
        proposal_id: id to counter, reject or make an agreement from.
        issuer_id: the provider's node id.
        state: ``Initial`` (fresh from the market), ``Draft`` (an answer to our
            counter-proposal), ``Rejected``, ``Accepted`` or ``Expired``.
        prev_proposal_id: for a draft, the id of our counter-proposal it answers.
        properties, constraints: the offer itself.
    """

    proposal_id: str
    issuer_id: str
    state: str = attrs.field(validator=attrs.validators.in_(PROPOSAL_STATES))
    timestamp: datetime
    properties: Mapping[str, Any] = attrs.field(converter=frozen_mapping, hash=False)
    constraints: str = "()"
    prev_proposal_id: Optional[str] = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Proposal":
        return cls(
            proposal_id=required_str(data, "proposalId"), issuer_id=required_str(data, "issuerId"),
            state=required_str(data, "state"), timestamp=parse_timestamp(data["timestamp"]),
            properties=data["properties"], constraints=required_str(data, "constraints"),
            prev_proposal_id=optional_str(data.get("prevProposalId")),
        )

    def to_json(self) -> dict:
        data = {"properties": dict(self.properties), "constraints": self.constraints,
                "proposalId": self.proposal_id, "issuerId": self.issuer_id, "state": self.state,
                "timestamp": format_timestamp(self.timestamp)}
        if self.prev_proposal_id is not None:
            data["prevProposalId"] = self.prev_proposal_id
        return data

    @property
    def provider_id(self) -> str:
        return self.issuer_id

    @property
    def provider_name(self) -> str:
        """``golem.node.id.name``, or the node id when the offer has no name."""
        name = self.properties.get("golem.node.id.name")
        return name if isinstance(name, str) and name else self.issuer_id

    @property
    def payment_platforms(self) -> Tuple[str, ...]:
        """The platforms the provider accepts (``golem.com.payment.platform.<p>.address``)."""
        return tuple(sorted(
            key[len(_PLATFORM_PREFIX):-len(_PLATFORM_SUFFIX)] for key in self.properties
            if key.startswith(_PLATFORM_PREFIX) and key.endswith(_PLATFORM_SUFFIX)
        ))

    @property
    def pricing(self) -> Optional[LinearPricing]:
        return LinearPricing.from_properties(self.properties)

    @property
    def debit_note_accept_timeout(self) -> Optional[int]:
        return _seconds(self.properties.get(ACCEPT_TIMEOUT))

    @property
    def mid_agreement_payments(self) -> Optional[Tuple[int, int]]:
        """``(debit-note interval, payment timeout)`` in seconds when the offer proposes
        mid-agreement payments, else None."""
        interval = _seconds(self.properties.get(DEBIT_NOTE_INTERVAL))
        timeout = _seconds(self.properties.get(PAYMENT_TIMEOUT))
        return (interval, timeout) if interval and timeout else None


def _seconds(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


@attrs.frozen(kw_only=True)
class Offer:
    """An offer as a market scan lists it (``POST /scan``): no negotiation, just what a
    provider publishes. :meth:`as_proposal` views it as an ``Initial`` proposal, so the
    same filters judge it."""

    offer_id: str
    provider_id: str
    timestamp: datetime
    properties: Mapping[str, Any] = attrs.field(converter=frozen_mapping, hash=False)
    constraints: str = "()"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Offer":
        return cls(offer_id=required_str(data, "offerId"), provider_id=required_str(data, "providerId"),
                   timestamp=parse_timestamp(data["timestamp"]), properties=data["properties"],
                   constraints=required_str(data, "constraints"))

    def as_proposal(self) -> Proposal:
        return Proposal(proposal_id=self.offer_id, issuer_id=self.provider_id, state="Initial",
                        timestamp=self.timestamp, properties=self.properties, constraints=self.constraints)


@attrs.frozen(kw_only=True)
class ProposalEvent:
    """A new offer (``Initial``) or a provider's answer to a counter-proposal (``Draft``)."""

    event_date: datetime
    proposal: Proposal


@attrs.frozen(kw_only=True)
class ProposalRejectedEvent:
    """The provider rejected our counter-proposal ``proposal_id``; that negotiation is over."""

    event_date: datetime
    proposal_id: str
    reason: Optional[Mapping[str, Any]] = attrs.field(default=None, converter=_optional_mapping, hash=False)

    @property
    def reason_message(self) -> str:
        return str((self.reason or {}).get("message") or "no reason given")


@attrs.frozen(kw_only=True)
class OtherMarketEvent:
    """A market event this client does not interpret (``PropertyQueryEvent``, newer types)."""

    event_type: str
    event_date: datetime
    data: Mapping[str, Any] = attrs.field(converter=frozen_mapping, hash=False)


MarketEvent = Union[ProposalEvent, ProposalRejectedEvent, OtherMarketEvent]


def parse_market_event(data: Mapping[str, Any]) -> MarketEvent:
    """One item of ``GET /demands/{id}/events``, by its ``eventType``."""
    event_type = required_str(data, "eventType")
    event_date = parse_timestamp(data["eventDate"])
    if event_type == "ProposalEvent":
        return ProposalEvent(event_date=event_date, proposal=Proposal.from_json(data["proposal"]))
    if event_type == "ProposalRejectedEvent":
        return ProposalRejectedEvent(event_date=event_date, proposal_id=required_str(data, "proposalId"),
                                     reason=data.get("reason"))
    return OtherMarketEvent(event_type=event_type, event_date=event_date, data=data)


@attrs.frozen(kw_only=True)
class Agreement:
    """An agreement between this requestor and one provider.

    Attributes:
        state: one of :data:`AGREEMENT_STATES`; work needs ``Approved``.
        provider_id: the offer's ``providerId``.
        offer_properties: what the provider agreed to (pricing, payment platforms, ...).
    """

    agreement_id: str
    state: str = attrs.field(validator=attrs.validators.in_(AGREEMENT_STATES))
    valid_to: datetime
    timestamp: datetime
    provider_id: str
    requestor_id: str
    offer_properties: Mapping[str, Any] = attrs.field(converter=frozen_mapping, hash=False)
    demand_properties: Mapping[str, Any] = attrs.field(converter=frozen_mapping, hash=False)
    approved_date: Optional[datetime] = None
    app_session_id: Optional[str] = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Agreement":
        offer, demand = data["offer"], data["demand"]
        return cls(
            agreement_id=required_str(data, "agreementId"), state=required_str(data, "state"),
            valid_to=parse_timestamp(data["validTo"]), timestamp=parse_timestamp(data["timestamp"]),
            provider_id=required_str(offer, "providerId"), requestor_id=required_str(demand, "requestorId"),
            offer_properties=offer["properties"], demand_properties=demand["properties"],
            approved_date=optional_timestamp(data.get("approvedDate")),
            app_session_id=optional_str(data.get("appSessionId")),
        )


@attrs.frozen(kw_only=True)
class AgreementEvent:
    """One item of ``GET /agreementEvents``.

    Attributes:
        event_type: ``AgreementApprovedEvent``, ``...RejectedEvent``, ``...CancelledEvent``
            or ``...TerminatedEvent``.
        terminator: ``Requestor`` or ``Provider`` for a termination.
    """

    event_type: str
    event_date: datetime
    agreement_id: str
    reason: Optional[Mapping[str, Any]] = attrs.field(default=None, converter=_optional_mapping, hash=False)
    terminator: Optional[str] = None
    signature: Optional[str] = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "AgreementEvent":
        return cls(
            event_type=required_str(data, "eventType"), event_date=parse_timestamp(data["eventDate"]),
            agreement_id=required_str(data, "agreementId"), reason=data.get("reason"),
            terminator=optional_str(data.get("terminator")), signature=optional_str(data.get("signature")),
        )

    def to_json(self) -> dict:
        data: Dict[str, Any] = {"eventType": self.event_type, "agreementId": self.agreement_id,
                                "eventDate": format_timestamp(self.event_date)}
        if self.reason is not None:
            data["reason"] = dict(self.reason)
        if self.terminator is not None:
            data["terminator"] = self.terminator
        if self.signature is not None:
            data["signature"] = self.signature
        return data

    @property
    def kind(self) -> str:
        """``Approved``, ``Rejected``, ``Cancelled``, ``Terminated`` (or the raw type)."""
        name = self.event_type
        if name.startswith("Agreement") and name.endswith("Event"):
            return name[len("Agreement"):-len("Event")]
        return name
