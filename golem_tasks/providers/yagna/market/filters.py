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

from ...._format import money, token_of
from ....errors import ConfigurationError
from .._http.json import parse_decimal
from .models import LinearPricing, Proposal
from .runtime import GPU_SEC, hour_price
from .status import BUDGET, FAILED_EARLIER, FILTERS, PAYMENT_NETWORK, PRICE_CAPS, Refusal

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
            (``golem.usage.duration_sec`` x 3600, plus a GPU runtime's
            ``golem.usage.gpu-sec`` x 3600: :func:`.runtime.hour_price`).
        token: the token prices are in, for messages (``tGLM`` on testnets).
    """

    allow: Tuple[ProviderMatch, ...] = attrs.field(default=(), converter=_match_tuple)
    deny: Tuple[ProviderMatch, ...] = attrs.field(default=(), converter=_match_tuple)
    predicate: Optional[OfferPredicate] = attrs.field(default=None, converter=_predicate)
    max_start_price: Optional[Decimal] = attrs.field(default=None, converter=_price)
    max_cpu_hour_price: Optional[Decimal] = attrs.field(default=None, converter=_price)
    max_env_hour_price: Optional[Decimal] = attrs.field(default=None, converter=_price)
    #: provider record hook (beyond11): ``skip(provider_id)`` gives a reason to refuse a
    #: provider with a bad record (``ProviderRecord.skip``), or None.
    skip: Optional[Callable[[str], Optional[str]]] = None
    token: str = "GLM"

    def reject_reason(self, proposal: Proposal) -> Optional[str]:
        """Why ``proposal`` is refused, or None when it passes."""
        refusal = self.check(proposal)
        return None if refusal is None else refusal.reason

    def check(self, proposal: Proposal) -> Optional[Refusal]:
        """Why ``proposal`` is refused (with the setting that refused it), or None."""
        if self.allow and not any(_matches(proposal, m) for m in self.allow):
            return Refusal(FILTERS, "not in the allowed providers", setting="allow_providers")
        for match in self.deny:
            if _matches(proposal, match):
                return Refusal(FILTERS, f"denied provider (matches {getattr(match, 'pattern', match)!r})",
                               setting="deny_providers")
        if self.skip is not None:  # the provider record: failed repeatedly in recent runs
            skipped = self.skip(proposal.provider_id)
            if skipped is not None:
                return Refusal(FAILED_EARLIER, f"bad provider record: {skipped}", setting="provider_record")
        pricing = proposal.pricing
        if pricing is None:
            return Refusal(FILTERS, "no linear pricing in the offer (golem.com.pricing.model.linear.coeffs)")
        refusal = self._price_refusal(pricing)
        if refusal is not None:
            return refusal
        reason = self._predicate_reason(proposal)
        return None if reason is None else Refusal(FILTERS, reason, setting="offer_filter")

    def _price_refusal(self, pricing: LinearPricing) -> Optional[Refusal]:
        if any(value < 0 for value in (pricing.fixed, *pricing.per_usage.values())):
            return Refusal(FILTERS, "negative prices in the offer")
        checks = (
            ("start price", "max_start_price", pricing.fixed, self.max_start_price),
            ("price per CPU-hour", "max_cpu_hour_price", pricing.per_usage.get(CPU_SEC, Decimal(0)) * 3600,
             self.max_cpu_hour_price),
            ("price per env-hour", "max_env_hour_price", hour_price(pricing), self.max_env_hour_price),
        )
        for name, setting, price, cap in checks:
            if cap is not None and price > cap:
                return Refusal(PRICE_CAPS, f"{name} {money(price, self.token)} is over the cap of "
                                           f"{money(cap, self.token)}", setting=setting, limit=cap, asked=price)
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


def terms_refusal(proposal: Proposal, *, platform: str, offer_filter: OfferFilter,
                  budget: Decimal) -> Optional[Refusal]:
    """Why an offer cannot be taken on our terms (payment platform, filters, price caps,
    the whole budget), or None. The negotiator and the market scan judge alike."""
    if platform not in proposal.payment_platforms:
        return Refusal(PAYMENT_NETWORK, f"no common payment platform (we pay on {platform})",
                       detail=proposal.payment_platforms)
    refusal = offer_filter.check(proposal)
    if refusal is not None:
        return refusal
    pricing = proposal.pricing
    if pricing is not None and pricing.fixed > budget:
        # Only the whole budget here: what is left changes, and a candidate that does
        # not fit now is refused at engage time with the numbers (BudgetExhausted).
        token = token_of(platform)
        return Refusal(BUDGET, f"its start price {money(pricing.fixed, token)} is more than the whole budget of "
                               f"{money(budget, token)}", setting="budget", limit=budget, asked=pricing.fixed)
    return None


def expected_cost(pricing: LinearPricing, seconds: float, cpu_threads: float = 1.0) -> Decimal:
    """The cost of an activity that exists ``seconds`` with ``cpu_threads`` busy (and
    its GPU, if the runtime prices GPU time, busy all along)."""
    span = Decimal(str(seconds))
    return pricing.cost({DURATION_SEC: span, CPU_SEC: span * Decimal(str(cpu_threads)), GPU_SEC: span})


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


@attrs.frozen
class PreferRecorded:
    """provider record hook (beyond11): ``base`` weighed by how reliable the provider
    was (``reliability(provider_id)`` in (0, 1], e.g. ``ProviderRecord.score``). A
    negative base score is a cost (``CheapestFirst``): it is divided by the chance of
    success, the expected cost of one good fragment; a positive one is multiplied by it."""

    base: Score
    reliability: Callable[[str], float]

    def __call__(self, proposal: Proposal) -> float:
        score = self.base(proposal)
        chance = max(1e-6, self.reliability(proposal.provider_id))
        return score / chance if score < 0 else score * chance
