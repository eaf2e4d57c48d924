"""Market preflight: which offers the daemon knows, which of them our demand would take,
why the others would be refused, and what a job would cost.

A scan (``POST /market-api/v1/scan``) lists offers with no demand and no negotiation,
so it reserves nothing and spends nothing. Every offer is judged as the negotiator
would judge it (the same payment, filter, price-cap and budget rules), plus what the
daemon's matcher checks before an offer ever reaches a demand: the runtime, the
subnet and the hardware. That last part is what explains a market where no offer
arrives at all.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Dict, List, Mapping, Optional, Tuple

import attrs

from ...._format import amount_text, money, token_of
from ....errors import ApiError, ConfigurationError
from ...gpu import GpuInfo
from .api import MarketApi
from .demand import SUBNET, VmPayload
from .filters import CPU_SEC, OfferFilter, expected_cost, terms_refusal
from .manifest import Manifest, offer_refusal
from .models import Offer
from .runtime import gpu_of, hour_price
from .status import HARDWARE, OUTBOUND, PAYMENT_NETWORK, Refusal
from .status import SUBNET as SUBNET_REASON

#: The longest single long poll of a scan, and the most offers one poll returns: a
#: smaller batch means the daemon's store has been read through.
SCAN_POLL = 2.0
SCAN_BATCH = 100


def short_id(node_id: str) -> str:
    """``0x1234…abcd``: enough to tell providers apart, short enough to read."""
    return node_id if len(node_id) <= 14 else f"{node_id[:6]}…{node_id[-4:]}"


def _number(properties: Mapping[str, Any], key: str) -> Optional[float]:
    value = properties.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


@attrs.frozen(kw_only=True)
class ScannedOffer:
    """One provider's offer as the scan found it.

    Attributes:
        provider_id, provider_name, offer_id: who offers.
        start_price: GLM to start an activity (None without linear pricing).
        hour_price: GLM per hour the activity exists.
        cpu_hour_price: GLM per CPU-hour used.
        cores, threads, memory_gib, storage_gib: advertised resources (None when absent).
        platforms: the payment platforms it accepts.
        subnet: its ``golem.node.debug.subnet``.
        gpu: its graphics card (a GPU runtime's offer), else None.
        refusal: why our demand would not take it; None when it would.
    """

    provider_id: str
    provider_name: str
    offer_id: str
    start_price: Optional[Decimal]
    hour_price: Optional[Decimal]
    cpu_hour_price: Optional[Decimal]
    cores: Optional[int]
    threads: Optional[int]
    memory_gib: Optional[float]
    storage_gib: Optional[float]
    platforms: Tuple[str, ...]
    subnet: Optional[str]
    gpu: Optional[GpuInfo] = None
    refusal: Optional[Refusal] = None
    _offer: Offer = attrs.field(repr=False, eq=False)

    @property
    def matches(self) -> bool:
        return self.refusal is None

    def cost(self, seconds: float) -> Optional[Decimal]:
        """GLM for an activity that exists ``seconds`` with one CPU thread busy."""
        pricing = self._offer.as_proposal().pricing
        return None if pricing is None else expected_cost(pricing, seconds, 1.0)


@attrs.frozen(kw_only=True)
class CostEstimate:
    """What ``fragments`` fragments of ``seconds`` each cost on the ``providers``
    cheapest matching offers (one busy CPU thread each, the work split evenly; deploy
    time and retries not counted).

    Attributes:
        providers: how many offers the estimate uses (fewer than ``asked`` when fewer
            match, or when there are fewer fragments).
        wall: seconds until the last fragment ends.
        total: GLM in all.
        per_provider: ``(provider name, fragments, GLM)`` for each provider used.
        within_budget: whether ``total`` fits in the budget the scan was made with.
    """

    fragments: int
    seconds: float
    providers: int
    asked: int
    wall: float
    total: Decimal
    per_provider: Tuple[Tuple[str, int, Decimal], ...]
    within_budget: bool


@attrs.frozen(kw_only=True)
class MarketScan:
    """The result of :meth:`GolemProvider.scan`: the offers our demand would take
    (cheapest first) and the ones it would refuse, each with its reason.

    Attributes:
        platform, subnet, budget: the terms the offers were judged by.
        matching: offers our demand would take, cheapest first.
        filtered: the others, each with ``refusal`` set.
        elapsed: seconds the scan took.
    """

    platform: str
    subnet: str
    budget: Decimal
    matching: Tuple[ScannedOffer, ...]
    filtered: Tuple[ScannedOffer, ...]
    elapsed: float

    def estimate(self, fragments: int, seconds: float, providers: int) -> Optional[CostEstimate]:
        """The cost of ``fragments`` fragments of ``seconds`` on the ``providers``
        cheapest matching offers; None when no offer matches."""
        if isinstance(fragments, bool) or not isinstance(fragments, int) or fragments < 1:
            raise ConfigurationError(f"fragments must be a whole number >= 1, got {fragments!r}")
        if isinstance(providers, bool) or not isinstance(providers, int) or providers < 1:
            raise ConfigurationError(f"providers must be a whole number >= 1, got {providers!r}")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
            raise ConfigurationError(f"seconds must be a positive number, got {seconds!r}")
        used = min(providers, fragments, len(self.matching))
        if used == 0:
            return None
        shares = [fragments // used + (1 if i < fragments % used else 0) for i in range(used)]
        per_provider = []
        for offer, share in zip(self.matching, shares):
            cost = offer.cost(share * seconds) or Decimal(0)
            per_provider.append((offer.provider_name, share, cost))
        total = sum((cost for _, _, cost in per_provider), Decimal(0))
        return CostEstimate(fragments=fragments, seconds=float(seconds), providers=used, asked=providers,
                            wall=max(shares) * float(seconds), total=total, per_provider=tuple(per_provider),
                            within_budget=total <= self.budget)

    def format(self, estimate: Optional[CostEstimate] = None) -> str:
        """The scan as text for a terminal (what ``golem-tasks market scan`` prints)."""
        total = len(self.matching) + len(self.filtered)
        token = token_of(self.platform)
        lines = [f"market scan ({self.elapsed:.1f} s): {total} offer(s), {len(self.matching)} match the demand "
                 f"(paying on {self.platform}, subnet {self.subnet}, budget {money(self.budget, token)})"]
        if self.matching:
            cards = any(o.gpu is not None for o in self.matching)  # a GPU column only for GPU offers
            lines += ["", "matching offers, cheapest first:",
                      _row(("name", "id", "start", f"{token}/hour", f"{token}/CPU-hour", "cores", "threads", "mem GiB")
                           + (("GPU",) if cards else ()))]
            lines += [_row((o.provider_name, short_id(o.provider_id), _price(o.start_price), _price(o.hour_price),
                            _price(o.cpu_hour_price), _count(o.cores), _count(o.threads), _count(o.memory_gib))
                           + ((o.gpu.label if o.gpu else "-",) if cards else ()))
                      for o in self.matching]
        if self.filtered:
            lines += ["", "filtered out:"]
            lines += [f"  {o.provider_name} ({short_id(o.provider_id)}{', ' + o.gpu.label if o.gpu else ''}): "
                      f"{o.refusal.category}: {o.refusal.reason}"
                      for o in self.filtered if o.refusal is not None]
        if estimate is not None:
            fits = "within" if estimate.within_budget else "OVER"
            used = f"{estimate.providers} provider(s)"
            if estimate.providers < estimate.asked:
                used += f" ({estimate.asked} asked, {len(self.matching)} match)"
            lines += ["", f"estimate: {estimate.fragments} fragment(s) of {estimate.seconds:g} s on "
                          f"{used}: about {money(estimate.total, token)}, "
                          f"{fits} the budget of {money(self.budget, token)}; wall about {estimate.wall:g} s"]
            lines += [f"  {name}: {share} fragment(s), {money(cost, token)}"
                      for name, share, cost in estimate.per_provider]
        elif not self.matching:
            lines += ["", "estimate: no offer matches, so nothing can run"]
        return "\n".join(lines)


def _row(cells: Tuple[str, ...]) -> str:
    widths = (16, 14, 9, 9, 12, 6, 8, 8, 0)
    return "  " + " ".join(str(cell).ljust(width) for cell, width in zip(cells, widths)).rstrip()


def _price(value: Optional[Decimal]) -> str:
    return "?" if value is None else amount_text(value)


def _count(value: Optional[float]) -> str:
    return "?" if value is None else f"{value:g}"


def judge(offer: Offer, *, payload: VmPayload, subnet: str, platform: str, offer_filter: OfferFilter,
          budget: Decimal, manifest: Optional[Manifest] = None) -> ScannedOffer:
    """``offer`` with the reason our demand would refuse it (None: it would take it)."""
    properties = offer.properties
    proposal = offer.as_proposal()
    pricing = proposal.pricing
    threads = _number(properties, "golem.inf.cpu.threads")
    cores = _number(properties, "golem.inf.cpu.cores")
    their_subnet = properties.get(SUBNET)
    refusal = _match_refusal(properties, payload, subnet) or offer_refusal(properties, manifest) or terms_refusal(
        proposal, platform=platform, offer_filter=offer_filter, budget=budget)
    return ScannedOffer(
        provider_id=offer.provider_id, provider_name=proposal.provider_name, offer_id=offer.offer_id,
        start_price=None if pricing is None else pricing.fixed,
        hour_price=None if pricing is None else hour_price(pricing),
        cpu_hour_price=None if pricing is None else pricing.per_usage.get(CPU_SEC, Decimal(0)) * 3600,
        cores=None if cores is None else int(cores), threads=None if threads is None else int(threads),
        memory_gib=_number(properties, "golem.inf.mem.gib"), storage_gib=_number(properties, "golem.inf.storage.gib"),
        platforms=proposal.payment_platforms, subnet=their_subnet if isinstance(their_subnet, str) else None,
        gpu=gpu_of(properties), refusal=refusal, offer=offer)


def _match_refusal(properties: Mapping[str, Any], payload: VmPayload, subnet: str) -> Optional[Refusal]:
    """What the daemon's matcher checks before an offer reaches our demand at all."""
    runtime = properties.get("golem.runtime.name")
    if runtime != payload.runtime:
        return Refusal(HARDWARE, f"runtime {runtime!r}, the demand asks for {payload.runtime!r}", setting="runtime")
    theirs = properties.get(SUBNET)
    if theirs != subnet:
        return Refusal(SUBNET_REASON, f"on subnet {theirs!r}, we use {subnet!r}", detail=(str(theirs),))
    needs = (("golem.inf.mem.gib", payload.min_mem_gib, "min_mem_gib", "GiB of memory"),
             ("golem.inf.storage.gib", payload.min_storage_gib, "min_storage_gib", "GiB of storage"),
             ("golem.inf.cpu.threads", payload.min_threads, "min_cpu_threads", "CPU threads"),
             ("golem.inf.cpu.cores", payload.min_cores, "min_cpu_cores", "CPU cores"))
    for key, wanted, setting, what in needs:
        if wanted is None:
            continue
        have = _number(properties, key)
        if have is None or have < wanted:
            return Refusal(HARDWARE, f"{'no' if have is None else f'{have:g}'} {what}, {setting}={wanted:g}",
                           setting=setting)
    capabilities = properties.get("golem.runtime.capabilities") or []
    missing = [name for name in payload.capabilities if name not in capabilities]
    if missing:
        return Refusal(HARDWARE, f"lacks capabilities {', '.join(missing)}", setting="capabilities")
    return None


def scan_market(market: MarketApi, *, seconds: float, payload: VmPayload, subnet: str, platform: str,
                offer_filter: OfferFilter, budget: Decimal, manifest: Optional[Manifest] = None) -> MarketScan:
    """List the offers the daemon knows and judge each (the latest offer of each
    provider counts). Waits up to ``seconds`` for the first offers (a daemon that just
    started has not heard of any yet) and stops once its store is read through."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise ConfigurationError(f"seconds must be a positive number, got {seconds!r}")
    started = time.monotonic()
    deadline = started + seconds
    latest: Dict[str, Offer] = {}
    scan_id = market.begin_scan(lifetime=max(30, int(seconds) + 10))
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            offers = market.collect_scan(scan_id, timeout=round(min(remaining, SCAN_POLL), 3), max_events=SCAN_BATCH)
            for offer in offers:
                known = latest.get(offer.provider_id)
                if known is None or offer.timestamp >= known.timestamp:
                    latest[offer.provider_id] = offer
            if latest and len(offers) < SCAN_BATCH:
                break  # the daemon's offer store is read through; new offers come rarely
    finally:
        try:
            market.end_scan(scan_id)
        except ApiError:
            pass  # the daemon forgets it by itself after its lifetime
    judged = [judge(offer, payload=payload, subnet=subnet, platform=platform, offer_filter=offer_filter,
                    budget=budget, manifest=manifest) for offer in latest.values()]
    matching = sorted((o for o in judged if o.matches), key=lambda o: (o.cost(600) or Decimal(0), o.provider_name))
    filtered = sorted((o for o in judged if not o.matches),
                      key=lambda o: (o.refusal.category if o.refusal else "", o.provider_name))
    return MarketScan(platform=platform, subnet=subnet, budget=budget, matching=tuple(matching),
                      filtered=tuple(filtered), elapsed=time.monotonic() - started)


def unmatched_refusals(scan: MarketScan) -> List[Refusal]:
    """The refusals of offers the daemon's matcher keeps from our demand (runtime,
    subnet, hardware, payment platform): they explain why no offer arrives at all."""
    kept_out = (HARDWARE, SUBNET_REASON, PAYMENT_NETWORK, OUTBOUND)
    return [o.refusal for o in scan.filtered if o.refusal is not None and o.refusal.category in kept_out]
