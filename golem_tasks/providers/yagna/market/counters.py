"""Our counter-proposals in flight: which offer each one answered.

A provider's answer to a counter-proposal (its draft, or a rejection) names our counter
by the id the daemon gave it, and the offer's own terms (its debit-note interval) must
be looked up by that id: a draft may drop them. Nothing orders the answer after the
reply to our ``counter_proposal`` call, so the thread reading market events can meet
the answer before the thread that made the call has recorded the id (seen on a busy
machine: a draft taken without its offer, and a one-second debit-note interval priced
as ya-provider's default two minutes). :meth:`CounterBook.answered` therefore waits,
while a counter call is in flight, for it to record its id.
"""

from __future__ import annotations

import threading
from typing import Dict, Optional

from .models import Proposal

#: Longest wait for counter calls in flight to record their ids: one slow daemon call,
#: after which the answer is taken without its offer rather than stall the market reader.
WAIT_FOR_CALLS = 10.0


class CounterBook:
    """The offers our counter-proposals answered, by counter id. The negotiator owns it;
    its lock is its own, and it calls nothing back."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._offers: Dict[str, Proposal] = {}
        self._calls = 0          # counter calls in flight
        self._generation = 0     # bumped by clear(): calls begun before it record nothing
        self._closed = False

    def calling(self) -> int:
        """A counter call starts; pass what this returns to :meth:`called`."""
        with self._changed:
            self._calls += 1
            return self._generation

    def called(self, ticket: int, counter_id: Optional[str], offer: Proposal) -> None:
        """The counter call that :meth:`calling` began returned ``counter_id`` (None: it
        failed). Recorded unless the book was cleared meanwhile (the demand it answered is
        gone)."""
        with self._changed:
            self._calls -= 1
            if counter_id is not None and ticket == self._generation:
                self._offers[counter_id] = offer
            self._changed.notify_all()

    def answered(self, counter_id: Optional[str], wait: float = WAIT_FOR_CALLS) -> Optional[Proposal]:
        """The offer the counter ``counter_id`` answered, now that the provider answered
        it (forgotten from here on); None when unknown, after waiting up to ``wait``
        seconds while counter calls are still in flight."""
        if counter_id is None:
            return None
        with self._changed:
            self._changed.wait_for(lambda: counter_id in self._offers or not self._calls or self._closed, wait)
            return self._offers.pop(counter_id, None)

    def clear(self) -> None:
        """The demand was withdrawn or replaced: forget its counters, and do not record
        the ones still in flight."""
        with self._changed:
            self._offers.clear()
            self._generation += 1
            self._changed.notify_all()

    def close(self) -> None:
        """The market stops: nobody waits any more."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def __len__(self) -> int:
        """Counters recorded and not yet answered."""
        with self._changed:
            return len(self._offers)
