"""What the market shows while no provider is engaged, and what to change about it.

The negotiator records here every provider that offered and, per provider, why its
latest offer was refused (a :class:`Refusal` with a category, the setting that refused
it and the price the offer asked). From that come the ``MarketStatus`` events, the
warnings logged while nothing is engaged, and the text of the errors that end the wait
(``StartupTimeout``, the negotiation timeout), which name the real causes and the fix
instead of a generic list.

:class:`StartupWatch` keeps the clock of one wait for the first provider: when it
started, when the next warning is due, when ``startup_timeout`` ends it. It takes the
clock as an argument, so its rules are tested without waiting.
"""

from __future__ import annotations

import threading
import time
from decimal import ROUND_CEILING, Decimal
from typing import Callable, Dict, Iterable, List, Optional, Set, Tuple

import attrs

from ...._format import amount_text, money, token_of

#: Why offers are refused, as a person would group them.
FILTERS = "filters"
PRICE_CAPS = "price caps"
BUDGET = "budget"
SUBNET = "subnet"
PAYMENT_NETWORK = "payment network"
HARDWARE = "hardware or runtime"
FAILED_EARLIER = "failed earlier"
PROVIDER_REFUSED = "provider refused"
TERMS = "demand terms"
#: The provider cannot or will not serve the demand's manifest (outbound=, see .manifest).
OUTBOUND = "outbound"
OTHER = "other"

#: A wait that ended this long ago does not go on: the next one starts a fresh clock
#: (a scheduler retrying a failed engage comes back within seconds; a new job later).
IDLE_GAP = 30.0


@attrs.frozen
class Refusal:
    """Why one offer was refused.

    Attributes:
        category: one of the module's categories (``PRICE_CAPS``, ``BUDGET``...).
        reason: the full reason, as logged and sent to the provider.
        setting: the option that refused it (``max_cpu_hour_price``), when one did.
        limit: that option's value.
        asked: what the offer asks where the setting is a limit.
        detail: extra facts (the payment platforms an offer pays on).
        by_provider: the provider refused us (it rejected our proposal or agreement);
            False when our own settings refused its offer.
    """

    category: str
    reason: str
    setting: Optional[str] = None
    limit: Optional[Decimal] = None
    asked: Optional[Decimal] = None
    detail: Tuple[str, ...] = ()
    by_provider: bool = False


class MarketLedger:
    """The offers seen and the latest refusal of each provider. Thread-safe: the
    market's reader and negotiation threads write, engage threads read."""

    def __init__(self, *, platform: str) -> None:
        self._platform = platform
        self._lock = threading.Lock()
        self._offers: Set[str] = set()
        self._refused: Dict[str, Refusal] = {}
        self._unmatched: Optional[List[Refusal]] = None  # from a market scan, when one was made

    def offered(self, provider_id: str) -> None:
        with self._lock:
            self._offers.add(provider_id)

    def refused(self, provider_id: str, refusal: Refusal) -> None:
        with self._lock:
            self._offers.add(provider_id)
            self._refused[provider_id] = refusal

    def cleared(self, provider_id: str) -> None:
        """The provider's latest offer passed every filter. A refusal by the provider
        itself stands until it answers again: its offers come back (on a renewed demand,
        say) whatever it thinks of our proposals, and an error listing the causes must
        still name it."""
        with self._lock:
            refusal = self._refused.get(provider_id)
            if refusal is not None and not refusal.by_provider:
                del self._refused[provider_id]

    def answered(self, provider_id: str) -> None:
        """The provider accepted our proposal: no refusal of its stands."""
        with self._lock:
            self._refused.pop(provider_id, None)

    def scanned(self, unmatched: Iterable[Refusal]) -> None:
        """A market scan found these offers, which the demand does not match at all."""
        with self._lock:
            self._unmatched = list(unmatched)

    @property
    def was_scanned(self) -> bool:
        with self._lock:
            return self._unmatched is not None

    def unmatched_counts(self) -> Tuple[Tuple[str, int], ...]:
        """``(category, offers)`` of the offers a scan found that the demand cannot match."""
        with self._lock:
            return _count(self._unmatched or ())

    @property
    def offers(self) -> int:
        with self._lock:
            return len(self._offers)

    def counts(self) -> Tuple[Tuple[str, int], ...]:
        """``(category, providers)`` pairs, most first."""
        with self._lock:
            return _count(self._refused.values())

    def refusals(self) -> List[Refusal]:
        with self._lock:
            return list(self._refused.values())

    def summary(self, *, pending: int, candidates: int) -> str:
        """One line: ``"12 offers, 12 rejected (12 price caps), 0 pending"``."""
        counts = self.counts()
        text = f"{self.offers} offer{'s' if self.offers != 1 else ''}"
        if counts:
            rejected = sum(n for _, n in counts)
            text += f", {rejected} rejected (" + ", ".join(f"{n} {category}" for category, n in counts) + ")"
        text += f", {pending} pending"
        if candidates:
            text += f", {candidates} ready"
        unmatched = self.unmatched_counts() if not self.offers else ()
        if unmatched:
            text += "; the market shows " + ", ".join(_unmatched(c, n) for c, n in unmatched)
        return text

    def explain(self, *, pending: int = 0, candidates: int = 0,
                unmatched: Iterable[Refusal] = ()) -> Tuple[str, Tuple[str, ...]]:
        """What the market showed, its main causes and the fix, for an error message;
        and the causes alone (``"12 x price caps"``), most frequent first.

        ``unmatched`` are offers that do not match the demand at all (from a market
        scan): without them, no offer at all can only be described, not explained."""
        counts = self.counts()
        reasons = tuple(f"{n} x {category}" for category, n in counts)
        refusals = self.refusals()
        offers = self.offers
        if not offers:
            with self._lock:
                known = list(unmatched) or list(self._unmatched or ())
            return self._explain_silence(known)
        head = f"{offers} offer{'s' if offers != 1 else ''}"
        if counts:
            head += ", " + ", ".join(f"{n} rejected by {category}" for category, n in counts)
        fixes = [fix for category, _ in counts for fix in _fixes(category, refusals, self._platform)]
        if pending:
            fixes.append(f"{pending} proposal(s) got no answer from their provider yet")
        if candidates:
            fixes.append(f"{candidates} provider(s) answered but could not be engaged yet")
        return head + (": " + "; ".join(fixes) if fixes else ""), reasons

    def _explain_silence(self, unmatched: List[Refusal]) -> Tuple[str, Tuple[str, ...]]:
        if not unmatched:
            return (f"no offer matches the demand (the market may be empty; check subnet_tag, the payment "
                    f"network ({self._platform}) and the image's hardware needs: min_mem_gib, "
                    f"min_storage_gib, min_cpu_threads; `golem-tasks market scan` lists the offers)"), ()
        counts = _count(unmatched)
        head = (f"no offer matches the demand; the market shows {len(unmatched)} other offer(s): "
                + ", ".join(_unmatched(category, n) for category, n in counts))
        fixes = [fix for category, _ in counts for fix in _fixes(category, unmatched, self._platform)]
        return head + (": " + "; ".join(fixes) if fixes else ""), tuple(f"{n} x {c}" for c, n in counts)


def _unmatched(category: str, n: int) -> str:
    """``"3 on another subnet"``: offers of one category the demand cannot match."""
    if category in (SUBNET, PAYMENT_NETWORK):
        return f"{n} on another {category}"
    if category == OUTBOUND:
        return f"{n} without the capabilities outbound= needs"
    return f"{n} short of {category}"


def _count(refusals: Iterable[Refusal]) -> Tuple[Tuple[str, int], ...]:
    """``(category, how many)``, most first."""
    found: Dict[str, int] = {}
    for refusal in refusals:
        found[refusal.category] = found.get(refusal.category, 0) + 1
    return tuple(sorted(found.items(), key=lambda item: (-item[1], item[0])))


def _fixes(category: str, refusals: List[Refusal], platform: str) -> List[str]:
    """What to change, for the refusals of one category."""
    mine = [r for r in refusals if r.category == category]
    if category in (PRICE_CAPS, BUDGET):
        fixes = []
        for setting in sorted({r.setting for r in mine if r.setting}):
            asked = [r.asked for r in mine if r.setting == setting and r.asked is not None]
            limits = [r.limit for r in mine if r.setting == setting and r.limit is not None]
            if asked:
                now = f" (now {amount_text(limits[0])})" if limits else ""
                # rounded up: a cap rounded down to 6 digits would still refuse that offer
                fixes.append(f"raise {setting}={amount_text(min(asked), ROUND_CEILING)} or more{now}: "
                             f"the cheapest refused offer asks {money(min(asked), token_of(platform))}")
        return fixes or [mine[0].reason]
    if category == PAYMENT_NETWORK:
        platforms = sorted({p for r in mine for p in r.detail})
        where = ", ".join(platforms) if platforms else "other platforms"
        return [f"they pay on {where}, we pay on {platform}: set payment_network= (and payment_driver=) "
                f"to one of theirs, or mainnet=True for polygon"]
    if category == SUBNET:
        subnets = sorted({p for r in mine for p in r.detail})
        return [f"they are on subnet {', '.join(subnets) or 'another'}: set subnet_tag= to theirs"]
    if category == FILTERS:
        settings = sorted({r.setting for r in mine if r.setting})
        return [f"{', '.join(settings) or 'the filters'} refused them ({mine[0].reason})"]
    if category == FAILED_EARLIER:
        return ["they failed earlier in this run (raise provider_failure_limit=, or wait for their cool-down)"]
    if category == PROVIDER_REFUSED:
        said = sorted({r.reason for r in mine})
        return ["the providers said: " + "; ".join(repr(s) for s in said[:3])]
    if category == OUTBOUND:
        said = sorted({r.reason.removeprefix(f"{OUTBOUND}: ") for r in mine})
        return [f"{'; '.join(said[:2])}: ask providers to whitelist the URLs' domains (ya-provider whitelist "
                f"add -p <domain>), sign the manifest (manifest=, manifest_sig=, manifest_sig_algorithm=, "
                f"manifest_cert=) or give node_descriptor=, or need fewer outbound= URLs"]
    if category == HARDWARE:
        if all(r.setting == "runtime" for r in mine):  # GPU runtime hook (gpu13): no offer runs ours
            return [f"they run another runtime ({mine[0].reason}): no provider here offers the demand's runtime "
                    f"(gpu=True needs providers with a card); check gpu= and runtime=, or `golem-tasks market "
                    f"scan` on another subnet_tag="]
        return [f"they lack what the demand needs ({mine[0].reason}): lower min_mem_gib=, min_storage_gib=, "
                f"min_cpu_threads= or capabilities= if the image allows"]
    return [sorted({r.reason for r in mine})[0]]


class StartupWatch:
    """The clock of one wait for the first provider.

    A wait begins when an engage starts waiting with no provider engaged; it ends when
    a provider is engaged, or when nobody has waited for :data:`IDLE_GAP` seconds.

    Args:
        report_every: seconds between warnings.
        startup_timeout: seconds a wait may last (None: no limit).
        clock: ``time.monotonic`` or a fake.
    """

    def __init__(self, *, report_every: float, startup_timeout: Optional[float],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.report_every = report_every
        self.startup_timeout = startup_timeout
        self._clock = clock
        self.started: Optional[float] = None
        self._warned_at: Optional[float] = None
        self._left_at: Optional[float] = None
        self._waiters = 0

    @property
    def active(self) -> bool:
        return self.started is not None

    def enter(self, engaged: bool) -> None:
        """An engage starts waiting; ``engaged``: a provider is engaged already."""
        now = self._clock()
        if self.started is not None and self._waiters == 0 and self._left_at is not None \
                and now - self._left_at > IDLE_GAP:
            self.started = None  # the last wait is long over
        if self.started is None and not engaged:
            self.started, self._warned_at = now, now
        self._waiters += 1

    def leave(self) -> None:
        self._waiters -= 1
        if self._waiters == 0:
            self._left_at = self._clock()

    def engaged(self) -> Optional[float]:
        """A provider is engaged: the wait is over. Returns how long it lasted (None
        when no wait was running)."""
        if self.started is None:
            return None
        waited, self.started = self._clock() - self.started, None
        return waited

    def waited(self) -> float:
        return 0.0 if self.started is None else self._clock() - self.started

    def warning_due(self) -> bool:
        """True once every ``report_every`` seconds of a running wait."""
        if self.started is None or self._warned_at is None:
            return False
        now = self._clock()
        if now - self._warned_at < self.report_every:
            return False
        self._warned_at = now
        return True

    def deadline(self) -> Optional[float]:
        """When ``startup_timeout`` ends the running wait (a clock value), or None."""
        if self.started is None or self.startup_timeout is None:
            return None
        return self.started + self.startup_timeout

    def expired(self) -> bool:
        deadline = self.deadline()
        return deadline is not None and self._clock() >= deadline
