"""Which providers a pool may engage again, from how each one has failed in this run.

A provider whose session was lost rests for :data:`COOLDOWN` seconds: an exe-unit
that crashed often comes back, and a small market must not be starved of it. One
that failed ``provider_failure_limit`` attempts in a row (0 = never), or whose
initializer failed, is excluded for the run. A success clears its failure count.
"""

from __future__ import annotations

from typing import Dict, FrozenSet, Set

#: Seconds a provider whose session was lost (or became unusable) is not engaged again:
#: long enough for its exe-unit to come back, short enough not to starve a small market.
COOLDOWN = 5.0


class ProviderHealth:
    """A pool's record of its providers' failures; the pool owns it and calls it under
    its lock (like :class:`~.pacing.Pace`), except :meth:`failing`, a read of one key."""

    __slots__ = ("_limit", "_failures", "_resting", "_excluded")

    def __init__(self, failure_limit: int) -> None:
        self._limit = failure_limit
        self._failures: Dict[str, int] = {}
        self._resting: Dict[str, float] = {}   # provider id -> monotonic time it may come back
        self._excluded: Set[str] = set()

    def failing(self, provider_id: str) -> bool:
        """Whether ``provider_id`` has failed since its last success (safe without the
        lock: only the caller's own provider is asked about, and a stale answer only
        costs taking the lock)."""
        return provider_id in self._failures

    def succeeded(self, provider_id: str) -> None:
        self._failures.pop(provider_id, None)

    def failed(self, provider_id: str) -> int:
        """Count a failed attempt; returns the failures in a row."""
        count = self._failures[provider_id] = self._failures.get(provider_id, 0) + 1
        return count

    def over_limit(self, provider_id: str) -> bool:
        """Whether ``provider_id`` failed ``provider_failure_limit`` attempts in a row."""
        return bool(self._limit) and self._failures.get(provider_id, 0) >= self._limit

    def rest(self, provider_id: str, now: float) -> None:
        """``provider_id`` lost its session at ``now``: not engaged for a while."""
        self._resting[provider_id] = now + COOLDOWN

    def exclude(self, provider_id: str) -> None:
        """Never engage ``provider_id`` again in this run."""
        self._excluded.add(provider_id)

    def unavailable(self, now: float) -> FrozenSet[str]:
        """The providers an engagement starting at ``now`` must skip."""
        resting = [p for p, until in self._resting.items() if until > now]
        return frozenset(self._excluded.union(resting))
