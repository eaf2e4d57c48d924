"""More scheduler promises as properties, faults injected through the fake provider:
input read lazily within the window, retries elsewhere when possible, a failing
initializer replaced without charging fragments, a failing provider dropped, timeouts
that fail exactly the slow fragments, and early exits that release everything."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from golem_tasks._scheduler.run import BUFFER_FACTOR
from golem_tasks import FragmentFailed, FragmentTimeoutError, events
from golem_tasks.testing import FakeProvider, RunOutput

from .helpers import echo_provider, make_golem


def worker(ctx, item):
    results = yield ctx.run("echo", str(item))
    return int(results[0].stdout)


@given(n=st.integers(0, 200), window=st.integers(1, 20), workers=st.integers(1, 4),
       stop=st.integers(0, 200))
def test_input_is_read_lazily_within_the_window(n, window, workers, stop):
    pulled = [0]

    def items():
        for i in range(n):
            pulled[0] += 1
            yield i

    consumed = 0
    with make_golem(echo_provider(), max_workers=workers, window=window) as golem:
        for value in golem.map(worker, items()):
            assert value == consumed
            consumed += 1
            # never more than BUFFER_FACTOR windows read beyond what the caller consumed:
            # finished results may wait behind a retried one (issue 8), but boundedly
            assert pulled[0] <= consumed + BUFFER_FACTOR * window
            if consumed >= stop:
                break
    assert consumed == min(n, max(stop, 1))


@given(n=st.integers(1, 25), workers=st.integers(2, 4), bad=st.integers(1, 4))
def test_a_retry_goes_to_a_provider_that_has_not_failed_the_fragment(n, workers, bad):
    bad_id = f"fake-{min(bad, workers)}"
    fake = FakeProvider(assert_all_used=False)

    def answer(command, session):
        return RunOutput(exit_code=1) if session.id == bad_id else command.args[1]

    fake.on_run(lambda line: True, handler=answer)
    with make_golem(fake, max_workers=workers, provider_failure_limit=0) as golem:
        assert list(golem.map(worker, range(n))) == list(range(n))
    attempts_on_bad = [c.command.args[1] for c in fake.calls if c.session_id == bad_id]
    assert len(attempts_on_bad) == len(set(attempts_on_bad))  # never twice on the failing one


@given(n=st.integers(1, 20), workers=st.integers(1, 3), init_failures=st.integers(0, 2))
def test_a_failed_initializer_is_replaced_and_charges_no_fragment(n, workers, init_failures):
    fake = echo_provider()
    fake.on_run("setup", exit_code=1, times=init_failures) if init_failures else None
    fake.on_run("setup", stdout="ok")
    seen = []

    def init(ctx):
        yield ctx.run("setup")

    with make_golem(fake, max_workers=workers, initializer=init, max_retries=0, events=seen.append) as golem:
        assert list(golem.map(worker, range(n))) == list(range(n))
    assert sum(isinstance(e, events.InitializerFailed) for e in seen) == init_failures
    assert not any(isinstance(e, (events.FragmentRetried, events.FragmentFailed)) for e in seen)
    released = {e.provider_id for e in seen if isinstance(e, events.ProviderReleased) and e.excluded}
    failed = {e.provider_id for e in seen if isinstance(e, events.InitializerFailed)}
    assert failed <= released  # every provider whose setup failed was dropped


@given(n=st.integers(4, 25), limit=st.integers(1, 3))
def test_a_provider_that_keeps_failing_is_dropped_for_the_run(n, limit):
    fake = FakeProvider(assert_all_used=False)
    fake.on_run(lambda line: True,
                handler=lambda c, s: RunOutput(exit_code=1) if s.id == "fake-1" else c.args[1])
    seen = []
    with make_golem(fake, max_workers=1, provider_failure_limit=limit, max_retries=limit + 1,
                    events=seen.append) as golem:
        assert list(golem.map(worker, range(n))) == list(range(n))
    failures_on_bad = [c for c in fake.calls if c.session_id == "fake-1"]
    assert len(failures_on_bad) == limit
    assert [e.provider_id for e in seen if isinstance(e, events.ProviderReleased) and e.excluded] == ["fake-1"]


@settings(max_examples=15)  # each example sleeps for real, a few tens of ms
@given(slow=st.sets(st.integers(0, 7), max_size=3))
def test_a_fragment_timeout_fails_exactly_the_slow_fragments(slow):
    fake = FakeProvider(assert_all_used=False)
    for item in slow:
        fake.on_run(f"echo {item}", hang=True)
    fake.on_run(lambda line: True, handler=lambda c, s: c.args[1])
    with make_golem(fake, max_workers=4, fragment_timeout=0.05, max_retries=1) as golem:
        results = list(golem.map(worker, range(8), return_exceptions=True))
    for item, result in enumerate(results):
        if item in slow:
            assert isinstance(result, FragmentFailed)
            assert all(isinstance(a, FragmentTimeoutError) for a in result.attempts)
        else:
            assert result == item
    fake.assert_all_released()


@settings(max_examples=25)
@given(n=st.integers(1, 30), workers=st.integers(1, 4), stop=st.integers(1, 30))
def test_leaving_early_cancels_the_rest_and_releases_every_provider(n, workers, stop):
    fake = FakeProvider(assert_all_used=False)
    fake.on_run(lambda line: int(line.split()[1]) >= stop, hang=True)  # the rest never ends by itself
    fake.on_run(lambda line: True, handler=lambda c, s: c.args[1])
    with make_golem(fake, max_workers=workers) as golem:
        got = []
        for value in golem.map(worker, range(n)):
            got.append(value)
            if len(got) == min(n, stop):
                break
        assert got == list(range(min(n, stop)))
        if stop < n:  # work was left: it is cancelled and every provider released now
            assert golem.engaged == 0
            fake.assert_all_released()
    fake.assert_all_released()  # otherwise they are kept for reuse until the with block ends


@given(n=st.integers(1, 25), pool=st.integers(1, 4), limit=st.integers(1, 4),
       failing=st.sets(st.integers(1, 40), max_size=6), runs=st.integers(0, 3))
def test_per_call_limits_below_the_pool_never_strand_a_retry(n, pool, limit, failing, runs):
    # A retried fragment of a job at its per-call limit once woke no slot and hung.
    fake = echo_provider()
    for number in failing:
        fake.fail_command(number)
    with make_golem(fake, max_workers=pool, max_retries=3) as golem:
        results = list(golem.map(worker, range(n), max_workers=min(limit, pool), return_exceptions=True))
        for _ in range(runs):
            try:
                golem.run(worker, 7, timeout=20)
            except FragmentFailed:
                pass
    assert len(results) == n
    assert all(r == i or isinstance(r, FragmentFailed) for i, r in enumerate(results))
