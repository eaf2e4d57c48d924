"""The negotiator's book of counter-proposals: a provider's answer that arrives before our
counter call returned its id still finds the offer it answers, and a withdrawn demand's
counters are not recorded."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

from golem_tasks.providers.yagna.market.counters import CounterBook
from golem_tasks.providers.yagna.market.models import Proposal

from ..helpers import HANG_GUARD

OFFER = Proposal(proposal_id="P1", issuer_id="0x" + "01" * 20, state="Initial", timestamp=datetime.now(timezone.utc),
                 properties={"golem.com.scheme.payu.debit-note.interval-sec?": 1})


def test_an_answer_read_before_the_counter_call_returned_waits_for_its_offer():
    book = CounterBook()
    ticket = book.calling()  # our counter call is in flight
    found: list = []
    reading = threading.Thread(target=lambda: found.append(book.answered("C1", wait=HANG_GUARD)))
    reading.start()
    book.called(ticket, "C1", OFFER)
    reading.join(HANG_GUARD)
    assert found == [OFFER]
    assert len(book) == 0  # answered once, then forgotten


def test_a_failed_counter_call_records_nothing_and_keeps_nobody_waiting():
    book = CounterBook()
    book.called(book.calling(), None, OFFER)
    assert len(book) == 0
    assert _answered_within_the_guard(book, "C9") == [None]  # no call in flight: no wait


def test_counters_of_a_withdrawn_demand_are_not_recorded():
    book = CounterBook()
    ticket = book.calling()
    book.clear()  # the demand was withdrawn while the call was in flight
    book.called(ticket, "C1", OFFER)
    assert len(book) == 0 and book.answered("C1") is None


def test_closing_wakes_a_reader_waiting_for_a_call_that_never_returns():
    book = CounterBook()
    book.calling()
    found: list = []
    reading = threading.Thread(target=lambda: found.append(book.answered("C1", wait=10 * HANG_GUARD)), daemon=True)
    reading.start()
    book.close()
    reading.join(HANG_GUARD)
    assert not reading.is_alive() and found == [None]


def _answered_within_the_guard(book: CounterBook, counter_id: str) -> list:
    """What ``answered`` returns, asked to wait far longer than the hang guard: it
    must return without waiting that out."""
    found: list = []
    reading = threading.Thread(target=lambda: found.append(book.answered(counter_id, wait=10 * HANG_GUARD)),
                               daemon=True)
    reading.start()
    reading.join(HANG_GUARD)
    assert not reading.is_alive(), "answered() waited for a counter call that is not in flight"
    return found
