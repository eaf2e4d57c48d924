"""What an agreement will cost: the spend guard's arithmetic, pure and unit-tested.

An offer's linear price is ``start + per_duration_sec x seconds + per_cpu_sec x
CPU-seconds``. The guard projects each agreement over the time the job still needs
and keeps a margin of one debit-note interval, under these assumptions (the docs
repeat them):

* **Every CPU thread the offer advertises is busy** while the agreement runs
  (``golem.inf.cpu.threads``, 1 when missing): the dearest case, so the projection
  does not fall short when the work is CPU bound.
* **What has run so far** costs at least what was accepted (debit notes, invoice)
  and at least the start price plus the duration price of the time the agreement
  has existed (duration always counts; CPU may have been idle).
* **The time still needed** by each of ``n`` engaged providers is the mean duration
  of the finished fragments x the fragments left / ``n`` (see :func:`horizon`).
  With no pace known yet (nothing finished, nothing running), it is zero: an
  agreement is then projected at what it has cost so far, a candidate at its start
  price.
* **A debit-note interval** is the offer's ``debit-note.interval-sec?``, else
  :data:`DEFAULT_INTERVAL`; stopping work takes up to :data:`STOP_ALLOWANCE` more
  (the note reaches us, is accepted, the activity is destroyed).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Mapping, Optional

import attrs

from ..market.demand import DEBIT_NOTE_INTERVAL
from ..market.filters import CPU_SEC, DURATION_SEC
from ..market.models import LinearPricing

#: ya-provider's debit-note interval when an offer names none (seconds).
DEFAULT_INTERVAL = 120.0
#: Seconds from a provider issuing a debit note until the activity we stop ends:
#: the payment event's delivery (the daemon checks about once a second), accepting
#: the note, destroying the activity (0.75-1.5 s on a local daemon). Generous,
#: because an invoice over what is left would be refused whole.
STOP_ALLOWANCE = 10.0
THREADS = "golem.inf.cpu.threads"
ZERO = Decimal(0)


def _decimal(seconds: float) -> Decimal:
    return Decimal(repr(float(seconds))) if seconds > 0 else ZERO


def _non_negative(value: Decimal) -> Decimal:
    return value if value > 0 else ZERO


@attrs.frozen(kw_only=True)
class Rates:
    """An agreement's prices as the guard uses them (GLM; negative prices count as 0).

    Attributes:
        start: the fixed (start) price.
        per_duration_sec: GLM per second the activity exists.
        per_cpu_sec: GLM per CPU-second.
        threads: CPU threads assumed busy.
        interval: seconds between debit notes.
    """

    start: Decimal = ZERO
    per_duration_sec: Decimal = ZERO
    per_cpu_sec: Decimal = ZERO
    threads: int = 1
    interval: float = DEFAULT_INTERVAL

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any]) -> "Rates":
        """The rates of an offer or agreement; an offer without a linear price costs nothing
        here (the payment checks refuse what it would ask)."""
        pricing = LinearPricing.from_properties(properties)
        threads = properties.get(THREADS)
        interval = properties.get(DEBIT_NOTE_INTERVAL)
        return cls.of(pricing,
                      threads=threads if isinstance(threads, int) and not isinstance(threads, bool) else 1,
                      interval=float(interval) if isinstance(interval, (int, float)) and interval > 0
                      else DEFAULT_INTERVAL)

    @classmethod
    def of(cls, pricing: Optional[LinearPricing], *, threads: int = 1, interval: float = DEFAULT_INTERVAL) -> "Rates":
        if pricing is None:
            return cls(threads=max(1, threads), interval=interval)
        return cls(start=_non_negative(pricing.fixed),
                   per_duration_sec=_non_negative(pricing.per_usage.get(DURATION_SEC, ZERO)),
                   per_cpu_sec=_non_negative(pricing.per_usage.get(CPU_SEC, ZERO)),
                   threads=max(1, threads), interval=interval)

    @property
    def per_second(self) -> Decimal:
        """GLM per second of running with every thread busy."""
        return self.per_duration_sec + self.per_cpu_sec * self.threads


def so_far(rates: Rates, spent: Decimal, elapsed: float) -> Decimal:
    """The least an agreement ``elapsed`` s old has cost: what was accepted, and its
    start price plus the duration price of its age."""
    return max(_non_negative(spent), rates.start + rates.per_duration_sec * _decimal(elapsed))


def projected_cost(rates: Rates, spent: Decimal, elapsed: float, remaining: float) -> Decimal:
    """What an agreement will cost in all: :func:`so_far` plus ``remaining`` more
    seconds with every thread busy. Never below ``spent``; never less for a later
    ``elapsed`` or a longer ``remaining``; zero for a free offer that spent nothing."""
    return so_far(rates, spent, elapsed) + rates.per_second * _decimal(remaining)


def margin(rates: Rates, allowance: float = STOP_ALLOWANCE) -> Decimal:
    """What a running agreement may add before its work is stopped: one debit-note
    interval plus the time stopping takes, every thread busy."""
    return rates.per_second * _decimal(rates.interval + allowance)


def horizon(mean_fragment: Optional[float], fragments_left: int, providers: int) -> float:
    """Seconds each of ``providers`` still works: the mean fragment duration x the
    fragments left, shared evenly; 0 with no mean known or nothing left."""
    if mean_fragment is None or mean_fragment <= 0 or fragments_left <= 0:
        return 0.0
    return mean_fragment * fragments_left / max(1, providers)
