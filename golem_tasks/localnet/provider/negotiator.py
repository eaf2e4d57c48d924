"""How a local provider answers demands: the rules of ya-provider's built-in negotiators.

A requestor that works against these rules works against real providers too
(research/yagna-provider-side.md, "What ya-provider's built-in negotiators require"):

* the demand's ``golem.srv.comp.expiration`` lies between now+5 min and now+30 min
  (up to 100 years when a debit-note ``accept-timeout?`` is agreed);
* it names ``golem.com.payment.chosen-platform``, one the offer supports;
* its ``accept-timeout?``, if any, is at most the provider's (a lower one is echoed);
* the provider has capacity (one live agreement by default);
* a computation payload manifest asking for outbound URLs passes its outbound rules
  (:mod:`.outbound`: ``outbound_rule`` and ``outbound_whitelist``, ya-provider's defaults
  being ``whitelist`` and an empty whitelist).

On top of that a negotiator can be told to reject everything, to test requestors.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Mapping, Optional, Tuple

import attrs

from .offer import OfferSpec
from .outbound import DomainPattern, check_rule, check_whitelist, rejection

_CHOSEN_PLATFORM = "golem.com.payment.chosen-platform"
_ACCEPT_TIMEOUT = "golem.com.payment.debit-notes.accept-timeout?"
_EXPIRATION = "golem.srv.comp.expiration"
_PAYU = (
    "golem.com.scheme.payu.debit-note.interval-sec?",
    "golem.com.scheme.payu.payment-timeout-sec?",
)
_HUNDRED_YEARS = 100 * 365 * 24 * 3600


@attrs.frozen
class Decision:
    """The answer to one demand proposal: ``counter`` properties, or a ``reject`` reason."""

    counter: Optional[Dict[str, Any]] = None
    reject: Optional[str] = None


@attrs.frozen(kw_only=True)
class Negotiator:
    """The provider's rules. Pure: it keeps no state; the agent passes in what it knows.

    Attributes:
        offer: what the provider offers.
        min_expiration, max_expiration: accepted demand expiration, seconds from now.
        max_agreements: live agreements the provider takes at once (ya-provider: 1).
        reject_proposals: when set, every proposal is rejected with this reason.
        reject_agreements: when set, every agreement is rejected with this reason.
        outbound_rule: ya-provider's *everyone* rule for manifests with outbound URLs:
            ``whitelist`` (the default: every URL's host in ``outbound_whitelist``),
            ``all`` (or ``everyone``: any URL) or ``none``.
        outbound_whitelist: domains (``"pypi.org"``, exact) or compiled regexes searched
            in the host; empty by default, as in a fresh ya-provider.
    """

    offer: OfferSpec = attrs.field(factory=OfferSpec)
    min_expiration: float = 5 * 60
    max_expiration: float = 30 * 60
    max_agreements: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    reject_proposals: Optional[str] = None
    reject_agreements: Optional[str] = None
    outbound_rule: str = attrs.field(default="whitelist", converter=check_rule)
    outbound_whitelist: Tuple[DomainPattern, ...] = attrs.field(default=(), converter=check_whitelist)

    def on_proposal(
        self,
        demand: Mapping[str, Any],
        offer_properties: Mapping[str, Any],
        *,
        live_agreements: int,
        now: Optional[float] = None,
    ) -> Decision:
        """Counter or reject a requestor's proposal (its flat ``properties``)."""
        reason = (
            self.reject_proposals or self._capacity(live_agreements) or self._check(demand, now)
        )
        if reason:
            return Decision(reject=reason)
        counter = dict(offer_properties)
        if _ACCEPT_TIMEOUT in demand:
            counter[_ACCEPT_TIMEOUT] = min(int(demand[_ACCEPT_TIMEOUT]), self.offer.accept_timeout)
        else:
            counter.pop(_ACCEPT_TIMEOUT, None)  # ya-provider drops its own when the demand has none
        for key in _PAYU:  # mid-agreement payment terms: mirrored if asked for, else dropped
            if key in demand:
                counter[key] = demand[key]
            else:
                counter.pop(key, None)
        return Decision(counter=counter)

    def on_agreement(
        self, demand: Mapping[str, Any], *, live_agreements: int, now: Optional[float] = None
    ) -> Optional[str]:
        """``None`` to approve the agreement, or the reason to reject it."""
        return self.reject_agreements or self._capacity(live_agreements) or self._check(demand, now)

    def _capacity(self, live_agreements: int) -> Optional[str]:
        if live_agreements >= self.max_agreements:
            return "No capacity available"
        return None

    def _check(self, demand: Mapping[str, Any], now: Optional[float]) -> Optional[str]:
        outbound = rejection(demand, rule=self.outbound_rule, whitelist=self.outbound_whitelist)
        if outbound is not None:
            return outbound
        now = time.time() if now is None else now
        platform = demand.get(_CHOSEN_PLATFORM)
        if not platform:
            return f"Demand does not specify {_CHOSEN_PLATFORM}"
        if platform != self.offer.platform:
            return f"Payment platform {platform} not supported (offer: {self.offer.platform})"
        if _ACCEPT_TIMEOUT in demand and int(demand[_ACCEPT_TIMEOUT]) > self.offer.accept_timeout:
            asked, limit = demand[_ACCEPT_TIMEOUT], self.offer.accept_timeout
            return f"Debit note accept timeout {asked} s above {limit} s"
        try:
            expiration = float(demand[_EXPIRATION]) / 1000
        except (KeyError, TypeError, ValueError):
            return f"Demand has no valid {_EXPIRATION}"
        longest = _HUNDRED_YEARS if _ACCEPT_TIMEOUT in demand else self.max_expiration
        if not now + self.min_expiration <= expiration <= now + longest:
            at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(expiration))
            return (
                f"Proposal expires at: {at} UTC which is less than {self.min_expiration / 60:g}m "
                f"or more than {longest / 60:g}m from now"
            )
        return None
