"""The spend guard's arithmetic (issue 11 item 3): what an agreement is projected to
cost, the margin kept for stopping it, and the job's pace learnt from events."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from golem_tasks import events as ev
from golem_tasks.providers.yagna.payment.pace import JobPace
from golem_tasks.providers.yagna.payment.projection import (DEFAULT_INTERVAL, STOP_ALLOWANCE, Rates, horizon,
                                                            margin, projected_cost, so_far)

prices = st.decimals(min_value=0, max_value=10, places=6, allow_nan=False, allow_infinity=False)
seconds = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
amounts = st.decimals(min_value=0, max_value=1000, places=18, allow_nan=False, allow_infinity=False)


@st.composite
def rates(draw: st.DrawFn) -> Rates:
    return Rates(start=draw(prices), per_duration_sec=draw(prices), per_cpu_sec=draw(prices),
                 threads=draw(st.integers(1, 64)), interval=draw(st.floats(1, 3600)))


@given(rates(), amounts, seconds, seconds)
def test_the_projection_is_never_below_what_was_spent(r, spent, elapsed, remaining):
    assert projected_cost(r, spent, elapsed, remaining) >= spent


@given(rates(), amounts, seconds, seconds, seconds, seconds)
def test_the_projection_grows_with_time(r, spent, elapsed, later, remaining, longer):
    early, late = sorted((elapsed, later))
    short, long = sorted((remaining, longer))
    assert projected_cost(r, spent, early, short) <= projected_cost(r, spent, late, short)
    assert projected_cost(r, spent, early, short) <= projected_cost(r, spent, early, long)


@given(st.integers(1, 64), seconds, seconds)
def test_a_free_offer_costs_nothing(threads, elapsed, remaining):
    free = Rates(threads=threads)
    assert projected_cost(free, Decimal(0), elapsed, remaining) == 0
    assert margin(free) == 0


def test_the_projection_counts_start_duration_and_every_thread_busy():
    r = Rates(start=Decimal("0.1"), per_duration_sec=Decimal("0.001"), per_cpu_sec=Decimal("0.002"), threads=4)
    # so far: the start and 10 s of duration (CPU may have been idle); then 100 s of 4 busy threads
    assert so_far(r, Decimal(0), 10) == Decimal("0.11")
    assert projected_cost(r, Decimal(0), 10, 100) == Decimal("0.11") + Decimal("0.009") * 100
    # accepted debit notes count when they say more
    assert projected_cost(r, Decimal("0.5"), 10, 0) == Decimal("0.5")


def test_rates_are_read_from_an_offer():
    properties = {"golem.com.pricing.model.linear.coeffs": [0.0002, 0.0001, 0.01],
                  "golem.com.usage.vector": ["golem.usage.cpu_sec", "golem.usage.duration_sec"],
                  "golem.inf.cpu.threads": 8, "golem.com.scheme.payu.debit-note.interval-sec?": 30}
    r = Rates.from_properties(properties)
    assert (r.start, r.per_cpu_sec, r.per_duration_sec, r.threads, r.interval) == \
        (Decimal("0.01"), Decimal("0.0002"), Decimal("0.0001"), 8, 30.0)
    assert margin(r) == r.per_second * Decimal(str(30 + STOP_ALLOWANCE))
    bare = Rates.from_properties({})
    assert bare.per_second == 0 and bare.threads == 1 and bare.interval == DEFAULT_INTERVAL


@given(st.floats(0.001, 1e4), st.integers(0, 10_000), st.integers(1, 100), st.integers(1, 100))
def test_more_providers_share_the_time_left(mean, left, few, more):
    few, more = sorted((few, more))
    assert horizon(mean, left, more) <= horizon(mean, left, few)
    assert horizon(mean, left, 1) * 1 == mean * left


def test_no_pace_means_no_time_left():
    assert horizon(None, 100, 2) == 0 and horizon(3.0, 0, 2) == 0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_pace_is_learnt_from_fragment_events():
    clock = Clock()
    pace = JobPace(clock=clock)
    assert pace.snapshot() == (None, 0)
    pace(ev.JobStarted(job_id=1, kind="map", total=10, timestamp=1000.0))
    assert pace.snapshot() == (None, 10)
    pace(ev.FragmentStarted(job_id=1, index=0, attempt=1, timestamp=1000.0))
    pace(ev.FragmentStarted(job_id=1, index=1, attempt=1, timestamp=1002.0))
    clock.now = 1005.0
    assert pace.snapshot() == (5.0, 10)  # nothing finished: the oldest running fragment's age
    pace(ev.FragmentFinished(job_id=1, index=0, attempt=1, duration=4.0))
    pace(ev.FragmentRetried(job_id=1, index=1, attempt=1, reason="lost", delay=0.0))
    pace(ev.FragmentFailed(job_id=1, index=2, attempts=1, reason="bad"))
    pace(ev.FragmentReplayed(job_id=1, index=3))
    assert pace.snapshot() == (4.0, 7)  # failed and journal-replayed fragments are settled too
    assert pace.horizon(2) == 4.0 * 7 / 2
    pace(ev.JobFinished(job_id=1, done=1, failed=1, retried=1, elapsed=5.0))
    assert pace.snapshot() == (4.0, 0)


def test_a_job_of_unknown_size_counts_its_fragments_in_flight():
    pace = JobPace()
    pace(ev.JobStarted(job_id=2, kind="as_completed", total=None))
    pace(ev.FragmentStarted(job_id=2, index=0, attempt=1))
    pace(ev.FragmentStarted(job_id=2, index=1, attempt=1))
    assert pace.snapshot()[1] == 2


def test_golem_feeds_a_providers_pace():
    from golem_tasks import Golem
    from golem_tasks.testing import FakeProvider

    fake = FakeProvider(assert_all_used=False)
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda c, s: c.args[1])
    fake.job_pace = JobPace()  # what GolemProvider has

    seen_left = []

    def echo(ctx, i):
        seen_left.append(fake.job_pace.snapshot()[1])
        results = yield ctx.run("echo", str(i))
        return results[0].stdout

    with Golem(fake, max_workers=1, progress=False) as golem:
        assert list(golem.map(echo, range(4))) == ["0", "1", "2", "3"]
    # the fragment running counts as left until it is done; fewer are left as they finish
    assert seen_left[0] == 4 and seen_left == sorted(seen_left, reverse=True) and min(seen_left) >= 1
    mean, left = fake.job_pace.snapshot()
    assert mean is not None and mean >= 0 and left == 0
