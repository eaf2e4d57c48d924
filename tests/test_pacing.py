"""Paid engagements are paced by the work left: once a job's input is all queued, a
provider still negotiating is let go before it signs when the providers already
running will clear the queue sooner than an engagement takes (issue 9: pay only for work)."""

from __future__ import annotations

import math
import threading
import time
from typing import AbstractSet, List, Optional

from hypothesis import given
from hypothesis import strategies as st

from golem_tasks.errors import EngagementCancelled, ProviderError
from golem_tasks._scheduler import pacing
from golem_tasks._scheduler.pacing import MIN_DELIVERED, Pace
from golem_tasks.providers.base import Permit
from golem_tasks.testing import FakeProvider

from .helpers import HANG_GUARD, echo_provider, finishes, make_golem


def test_nothing_is_surplus_while_anything_is_unknown():
    pace = Pace()
    assert not pace.surplus(queued=1, ready=1)  # no engagement, no fragment seen yet
    pace.engaged(2.0)
    assert not pace.surplus(queued=1, ready=1)  # no fragment delivered yet
    pace.delivered(0.01)
    pace.delivered(0.01)
    assert not pace.surplus(queued=1, ready=1)  # two quick fragments say little of the rest
    pace.delivered(0.01)
    assert pace.surplus(queued=1, ready=1)
    assert not pace.surplus(queued=1, ready=0)  # nobody running: whatever waits needs a provider
    assert not pace.surplus(queued=1, ready=1, running_for=2.5)  # one runs long: the average is too low


@given(engagement=st.floats(0.001, 100), fragment=st.floats(0, 100), queued=st.integers(1, 10_000),
       ready=st.integers(1, 64))
def test_more_work_never_makes_an_engagement_surplus(engagement, fragment, queued, ready):
    pace = Pace()
    pace.engaged(engagement)
    for _ in range(MIN_DELIVERED):
        pace.delivered(fragment)
    if pace.surplus(queued + 1, ready):
        assert pace.surplus(queued, ready)
    if pace.surplus(queued, ready):
        assert pace.surplus(queued, ready + 1)  # more providers running clear it sooner
    assert pace.surplus(queued, ready) == (queued * pace.fragment / ready < engagement)
    assert not pace.surplus(queued, ready, running_for=engagement * ready)  # one ran that long: keep


class SlowMarket(FakeProvider):
    """A paid market where the first provider takes a while to engage and the second
    only ever comes when the scheduler stops asking for it."""

    paid_engagement = True

    def __init__(self) -> None:
        super().__init__(assert_all_used=False)
        self.on_run(lambda line: line.startswith("echo "), handler=lambda command, session: command.args[1])
        self.engagements = 0
        self.second_let_go = threading.Event()

    def engage(self, *, exclude: AbstractSet[str] = frozenset(), abort: Optional[threading.Event] = None,
               permit: Optional[Permit] = None):
        self.engagements += 1
        if self.engagements == 1:
            # The simulated market's negotiation time, which the pool measures: not a synchronisation.
            threading.Event().wait(0.3)
            return super().engage(exclude=exclude, abort=abort, permit=permit)
        assert abort is not None
        if not abort.wait(HANG_GUARD):
            raise ProviderError("the second engagement was never let go")
        self.second_let_go.set()
        raise EngagementCancelled("let go")


def test_a_paid_engagement_is_let_go_when_the_running_provider_clears_the_queue_first():
    market = SlowMarket()
    order: List[int] = []

    def worker(ctx, n):
        if n == 4:
            # Fragment 5 still waits in the queue here: only pacing lets the second
            # engagement go now (the plain rule waits for an empty queue).
            assert market.second_let_go.wait(HANG_GUARD), "the second engagement was kept"
        results = yield ctx.run("echo", str(n))
        order.append(n)
        return results[0].stdout

    with make_golem(market, max_workers=2) as golem:
        results = finishes(lambda: list(golem.map(worker, range(6))))
    assert results == [str(n) for n in range(6)]
    assert len(market.sessions) == 1  # one agreement, the one that ran everything
    assert market.engagements == 2


def first_waits_for_two(fake: FakeProvider, why: str):
    """An echo worker whose fragment 0 runs until ``fake`` has two sessions."""
    def worker(ctx, n):
        if n == 0:
            assert fake.wait_for_sessions(2, timeout=HANG_GUARD), why
        results = yield ctx.run("echo", str(n))
        return results[0].stdout
    return worker


def test_free_engagements_are_not_paced():
    fake = echo_provider()
    assert not fake.paid_engagement

    # Hold the first provider until a second one is engaged for the work queued behind it.
    worker = first_waits_for_two(fake, "no second provider for the queued work")
    with make_golem(fake, max_workers=2) as golem:
        assert finishes(lambda: list(golem.map(worker, range(4)))) == ["0", "1", "2", "3"]
    assert len(fake.sessions) == 2


class SlowThenQuickMarket(SlowMarket):
    """As SlowMarket, but the third engagement succeeds at once."""

    def engage(self, *, exclude: AbstractSet[str] = frozenset(), abort: Optional[threading.Event] = None,
               permit: Optional[Permit] = None):
        if self.engagements >= 2:
            self.engagements += 1
            return FakeProvider.engage(self, exclude=exclude, abort=abort, permit=permit)
        return super().engage(exclude=exclude, abort=abort, permit=permit)


def test_work_that_turns_out_long_engages_again_after_pacing_let_a_provider_go():
    market = SlowThenQuickMarket()

    def worker(ctx, n):
        if n == 5:
            # Quick fragments first (the second engagement is let go), then one that runs
            # until another provider comes: its age shows the average was too low.
            assert market.second_let_go.wait(HANG_GUARD)
            assert market.wait_for_sessions(2, timeout=HANG_GUARD), "no provider engaged again"
        results = yield ctx.run("echo", str(n))
        return results[0].stdout

    with make_golem(market, max_workers=2) as golem:
        results = finishes(lambda: list(golem.map(worker, range(7))))
    assert results == [str(n) for n in range(7)]
    assert market.engagements == 3 and len(market.sessions) == 2


class PaidMarket(FakeProvider):
    """A paid market that plays the Golem backend's order: negotiate, wait on the
    permit, sign (counted), then deploy for ``deploy`` s (the engagement time the pool
    measures) unless another provider is already engaged."""

    paid_engagement = True

    def __init__(self, deploy: float = 0.5, first_ready: Optional[threading.Event] = None,
                 latency: float = 0.0) -> None:
        super().__init__(assert_all_used=False)
        self.on_run(lambda line: line.startswith("echo "), handler=lambda command, session: command.args[1],
                    latency=latency)
        self.deploy = deploy
        self.first_ready = first_ready  # when given, the first signed engagement waits for it
        self.signed: List[float] = []
        self.held = threading.Event()  # an engagement waited before signing
        self.let_go = threading.Event()  # one was called off before signing
        self._signing = threading.Lock()

    def engage(self, *, exclude: AbstractSet[str] = frozenset(), abort: Optional[threading.Event] = None,
               permit: Optional[Permit] = None):
        assert permit is not None and abort is not None, "a paid engagement gets a permit and an abort"
        if not permit.allowed():
            self.held.set()
        if not permit.wait_unless(abort):
            self.let_go.set()
            raise EngagementCancelled("let go before signing")
        with self._signing:
            self.signed.append(time.monotonic())
            first = len(self.signed) == 1
        if first and self.first_ready is not None:
            assert self.first_ready.wait(HANG_GUARD), "the first engagement was never let finish"
        elif first:
            # The simulated deploy the pool measures as an engagement time: not a synchronisation.
            threading.Event().wait(self.deploy)
        return FakeProvider.engage(self, exclude=exclude, abort=abort)


def test_a_short_job_signs_one_paid_engagement_and_lets_the_held_one_go(monkeypatch):
    # The other engagement negotiates but waits to sign; once the first provider shows
    # the quick fragments clear the queue, it is let go unsigned (the hold never expires).
    monkeypatch.setattr(pacing, "HOLD", math.inf)
    market = PaidMarket()

    def worker(ctx, n):
        if n == 0:
            assert market.held.wait(HANG_GUARD), "the second engagement was not held"
        results = yield ctx.run("echo", str(n))
        return results[0].stdout

    with make_golem(market, max_workers=4) as golem:
        assert finishes(lambda: list(golem.map(worker, range(8)))) == [str(n) for n in range(8)]
        assert market.let_go.wait(HANG_GUARD)
    assert len(market.signed) == 1 and len(market.sessions) == 1


def test_a_held_paid_engagement_signs_once_a_running_fragment_shows_the_work_is_long(monkeypatch):
    monkeypatch.setattr(pacing, "HOLD", math.inf)  # only the evidence may let it sign
    market = PaidMarket()

    # Runs until a second provider comes: its age alone must let the held one sign.
    worker = first_waits_for_two(market, "the held engagement never signed")
    with make_golem(market, max_workers=2) as golem:
        assert finishes(lambda: list(golem.map(worker, range(6)))) == [str(n) for n in range(6)]
    assert len(market.signed) == 2 and len(market.sessions) == 2


def test_input_not_yet_read_counts_as_work_left(monkeypatch):
    # 100 fragments of 20 ms (simulated) on a 0.5 s engagement: one provider would take
    # 2 s, worth a second. Only a window of them is queued at a time (15 queued say 0.3 s,
    # not worth it): the input's length must count.
    monkeypatch.setattr(pacing, "HOLD", math.inf)
    market = PaidMarket(latency=0.02)

    def worker(ctx, n):
        results = yield ctx.run("echo", str(n))
        return results[0].stdout

    with make_golem(market, max_workers=2) as golem:
        assert finishes(lambda: list(golem.map(worker, range(100)))) == [str(n) for n in range(100)]
    assert len(market.signed) == 2


def test_a_held_engagement_is_let_go_once_all_known_input_is_queued_and_done(monkeypatch):
    # as_completed reads the input's end only when its consumer comes back; with the
    # input's length known, the work is all there once that many fragments are queued.
    monkeypatch.setattr(pacing, "HOLD", math.inf)
    market = PaidMarket()

    def worker(ctx, n):
        results = yield ctx.run("echo", str(n))
        return results[0].stdout

    with make_golem(market, max_workers=2) as golem:  # a window of 16 fragments
        results = golem.as_completed(worker, list(range(16)))
        first = next(results)  # the consumer stays away while the rest run
        assert market.let_go.wait(HANG_GUARD), "the held engagement was kept after the work was done"
        rest = list(results)
    assert len(rest) == 15 and first is not None
    assert len(market.signed) == 1


def test_a_held_paid_engagement_signs_when_its_hold_ends(monkeypatch):
    # Nothing is known while the first provider is not ready: only the hold's end lets
    # the second sign, and it does, before the first is ready.
    monkeypatch.setattr(pacing, "HOLD", 0.2)
    first_ready = threading.Event()
    market = PaidMarket(first_ready=first_ready)

    def worker(ctx, n):
        first_ready.set()  # the second provider runs: the first may finish engaging now
        results = yield ctx.run("echo", str(n))
        return results[0].stdout

    with make_golem(market, max_workers=2) as golem:
        assert finishes(lambda: list(golem.map(worker, range(4)))) == [str(n) for n in range(4)]
    # (The first, still deploying when the work was done, may be called off after signing.)
    assert len(market.signed) == 2


def test_free_engagements_get_no_permit():
    fake = echo_provider()
    seen: List[object] = []
    real_engage = fake.engage

    def engage(**kwargs):
        seen.append(kwargs.get("permit"))
        return real_engage(**kwargs)

    fake.engage = engage  # type: ignore[method-assign]
    with make_golem(fake, max_workers=2) as golem:
        assert finishes(lambda: list(golem.map(lambda ctx, n: (yield ctx.run("echo", str(n)))[0].stdout,
                                               range(2))))
    assert seen and seen == [None] * len(seen)
