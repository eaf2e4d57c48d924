"""Paid engagements are paced by the work left: once a job's input is all queued, a
provider still negotiating is let go before it signs when the providers already
running will clear the queue sooner than an engagement takes (issue 9: pay only for work)."""

from __future__ import annotations

import threading
from typing import AbstractSet, List, Optional

from hypothesis import given
from hypothesis import strategies as st

from golem_tasks.errors import EngagementCancelled, ProviderError
from golem_tasks._scheduler.pacing import MIN_DELIVERED, Pace
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

    def engage(self, *, exclude: AbstractSet[str] = frozenset(), abort: Optional[threading.Event] = None):
        self.engagements += 1
        if self.engagements == 1:
            # The simulated market's negotiation time, which the pool measures: not a synchronisation.
            threading.Event().wait(0.3)
            return super().engage(exclude=exclude, abort=abort)
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


def test_free_engagements_are_not_paced():
    fake = echo_provider()
    assert not fake.paid_engagement

    def worker(ctx, n):
        if n == 0:
            # Hold the first provider until a second one is engaged for the work queued behind it.
            assert fake.wait_for_sessions(2, timeout=HANG_GUARD), "no second provider for the queued work"
        results = yield ctx.run("echo", str(n))
        return results[0].stdout

    with make_golem(fake, max_workers=2) as golem:
        assert finishes(lambda: list(golem.map(worker, range(4)))) == ["0", "1", "2", "3"]
    assert len(fake.sessions) == 2


class SlowThenQuickMarket(SlowMarket):
    """As SlowMarket, but the third engagement succeeds at once."""

    def engage(self, *, exclude: AbstractSet[str] = frozenset(), abort: Optional[threading.Event] = None):
        if self.engagements >= 2:
            self.engagements += 1
            return FakeProvider.engage(self, exclude=exclude, abort=abort)
        return super().engage(exclude=exclude, abort=abort)


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
