"""Which offers to take, and which first: provider allow/deny lists, a custom
predicate, price caps on the linear model, and the default cheapest-first score.

Every refusal comes with a reason a person can read; the negotiator logs it and
emits it as an ``OfferRejected`` event.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from typing import Any, Callable, Iterable, Optional, Pattern, Tuple, Union

import attrs

from ...._format import money
from ....errors import ConfigurationError
from .._http.json import parse_decimal
from .models import LinearPricing, Proposal

logger = logging.getLogger(__name__)

#: Usage counters of the VM runtime: seconds the activity existed, CPU seconds used.
DURATION_SEC = "golem.usage.duration_sec"
CPU_SEC = "golem.usage.cpu_sec"

#: A provider id (``0x...``), a provider name, or a compiled regex matched (``search``)
#: against both.
ProviderMatch = Union[str, Pattern[str]]
OfferPredicate = Callable[[Proposal], bool]
Score = Callable[[Proposal], float]


def _matches(proposal: Proposal, match: ProviderMatch) -> bool:
    if isinstance(match, str):
        return match.lower() == proposal.provider_id.lower() or match == proposal.provider_name
    return bool(match.search(proposal.provider_id) or match.search(proposal.provider_name))


def _match_tuple(values: Iterable[ProviderMatch]) -> Tuple[ProviderMatch, ...]:
    if isinstance(values, (str, re.Pattern)):
        values = (values,)
    items = tuple(values)
    for item in items:
        if not isinstance(item, (str, re.Pattern)) or (isinstance(item, str) and not item):
            raise ConfigurationError(
                f"providers are matched by id, name or re.compile(...) pattern, got {item!r}")
    return items


def _price(value: Any) -> Optional[Decimal]:
    if value is None:
        return None
    if isinstance(value, float):
        raise ConfigurationError(f"price caps are Decimal or decimal strings (amounts are exact), "
                                 f"not the float {value!r}")
    try:
        price = parse_decimal(value)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"a price cap must be a decimal amount, got {value!r}") from exc
    if price < 0:
        raise ConfigurationError(f"a price cap cannot be negative, got {value!r}")
    return price


def _predicate(value: Optional[OfferPredicate]) -> Optional[OfferPredicate]:
    if value is not None and not callable(value):
        raise ConfigurationError(f"offer_filter must be a callable(offer) -> bool, got {value!r}")
    return value


@attrs.frozen(kw_only=True)
class OfferFilter:
    """The rules an offer must pass before it is countered.

    Attributes:
        allow: when not empty, only providers matching one of these (id, name, or a
            compiled regex searched in both) are taken.
        deny: providers matching one of these are never taken.
        predicate: ``predicate(offer) -> bool`` over the :class:`Proposal`; False (or an
            exception, which is logged) rejects the offer.
        max_start_price: most GLM for starting an activity (the linear model's fixed part).
        max_cpu_hour_price: most GLM per CPU-hour (``golem.usage.cpu_sec`` x 3600).
        max_env_hour_price: most GLM per hour the activity exists
            (``golem.usage.duration_sec`` x 3600).
        token: the token prices are in, for messages (``tGLM`` on testnets).
    """

    allow: Tuple[ProviderMatch, ...] = attrs.field(default=(), converter=_match_tuple)
    deny: Tuple[ProviderMatch, ...] = attrs.field(default=(), converter=_match_tuple)
    predicate: Optional[OfferPredicate] = attrs.field(default=None, converter=_predicate)
    max_start_price: Optional[Decimal] = attrs.field(default=None, converter=_price)
    max_cpu_hour_price: Optional[Decimal] = attrs.field(default=None, converter=_price)
    max_env_hour_price: Optional[Decimal] = attrs.field(default=None, converter=_price)
    token: str = "GLM"

    def reject_reason(self, proposal: Proposal) -> Optional[str]:
        """Why ``proposal`` is refused, or None when it passes."""
        if self.allow and not any(_matches(proposal, m) for m in self.allow):
            return "not in the allowed providers"
        for match in self.deny:
            if _matches(proposal, match):
                return f"denied provider (matches {getattr(match, 'pattern', match)!r})"
        pricing = proposal.pricing
        if pricing is None:
            return "no linear pricing in the offer (golem.com.pricing.model.linear.coeffs)"
        reason = self._price_reason(pricing)
        if reason is not None:
            return reason
        return self._predicate_reason(proposal)

    def _price_reason(self, pricing: LinearPricing) -> Optional[str]:
        if any(value < 0 for value in (pricing.fixed, *pricing.per_usage.values())):
            return "negative prices in the offer"
        checks = (
            ("start price", pricing.fixed, self.max_start_price),
            ("price per CPU-hour", pricing.per_usage.get(CPU_SEC, Decimal(0)) * 3600, self.max_cpu_hour_price),
            ("price per env-hour", pricing.per_usage.get(DURATION_SEC, Decimal(0)) * 3600,
             self.max_env_hour_price),
        )
        for name, price, cap in checks:
            if cap is not None and price > cap:
                return f"{name} {money(price, self.token)} is over the cap of {money(cap, self.token)}"
        return None

    def _predicate_reason(self, proposal: Proposal) -> Optional[str]:
        if self.predicate is None:
            return None
        try:
            accepted = self.predicate(proposal)
        except Exception as exc:  # a buggy predicate rejects, loudly, but never stops negotiation
            logger.exception("offer_filter failed on the offer of %s", proposal.provider_id)
            return f"offer_filter raised {type(exc).__name__}: {exc}"
        return None if accepted else "rejected by offer_filter"


def expected_cost(pricing: LinearPricing, seconds: float, cpu_threads: float = 1.0) -> Decimal:
    """The cost of an activity that exists ``seconds`` with ``cpu_threads`` busy."""
    span = Decimal(str(seconds))
    return pricing.cost({DURATION_SEC: span, CPU_SEC: span * Decimal(str(cpu_threads))})


@attrs.frozen
class CheapestFirst:
    """The default score: the cheaper an offer for ``seconds`` of one busy CPU thread,
    the higher its score (yapapi's ``LeastExpensiveLinearPayuMS`` with a longer horizon,
    so a low start price does not hide a high hourly price)."""

    seconds: float = 600.0

    def __call__(self, proposal: Proposal) -> float:
        pricing = proposal.pricing
        if pricing is None:
            return float("-inf")
        return -float(expected_cost(pricing, self.seconds))
