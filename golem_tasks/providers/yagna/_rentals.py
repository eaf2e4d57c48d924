"""The agreements a GolemProvider holds while their sessions live.

A session that ends reports it here, not to the provider that made it, so calls run one
way: the provider makes sessions and asks this ledger about them; a session tells the
ledger it ended; the ledger frees the provider on the market and tells the payments the
agreement is over (its invoice is now due). One owner of the set of live sessions.
"""

from __future__ import annotations

import threading
from typing import Any, List, Optional, Protocol, Set

import attrs

from ..base import ProviderInfo
from ._client import YagnaClient
from ._events import EventSink
from ._settings import Timeouts
from .market.negotiator import Negotiator
from .payment.payments import Payments
from .transfer.storage import Storage


class Rental(Protocol):
    """What the ledger needs of a session."""

    info: ProviderInfo
    agreement_id: str


@attrs.frozen
class SessionServices:
    """What a session uses of the provider that made it, handed down at engage."""

    client: YagnaClient
    timeouts: Timeouts
    storage: Optional[Storage]
    inline_limit: int
    sink: EventSink
    rentals: "Rentals"


class Rentals:
    """The live sessions, by agreement and provider."""

    def __init__(self, market: Negotiator, payments: Payments) -> None:
        self._market = market
        self._payments = payments
        self._lock = threading.Lock()
        self._live: Set[Any] = set()

    def add(self, session: Rental) -> None:
        with self._lock:
            self._live.add(session)

    def ended(self, session: Rental) -> None:
        """``session``'s agreement was terminated: its invoice is due and its provider
        may be engaged again."""
        self._payments.terminated(session.agreement_id)
        with self._lock:
            self._live.discard(session)
        self._market.release(session.info.id)

    def live(self) -> List[Any]:
        with self._lock:
            return list(self._live)

    def of_agreement(self, agreement_id: str) -> List[Any]:
        with self._lock:
            return [s for s in self._live if s.agreement_id == agreement_id]

    def engaged(self, provider_id: str) -> bool:
        with self._lock:
            return any(s.info.id == provider_id for s in self._live)
