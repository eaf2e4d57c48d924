"""Timeouts, shutdown, early break and Ctrl-C: work stops, providers are released,
no thread survives (the autouse no_leaked_threads fixture checks the last part)."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from golem_tasks import (
    BatchCancelled,
    BrokenPool,
    BatchTimeoutError,
    FragmentFailed,
    FragmentTimeoutError,
    JobTimeoutError,
    ProviderLost,
    events,
)
from golem_tasks.testing import FakeProvider

from .helpers import HANG_GUARD, echo, echo_provider, make_golem


def hang_provider() -> FakeProvider:
    fake = FakeProvider(assert_all_used=False)
    fake.on_run("echo hang", hang=True)
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda c, s: c.args[1])
    return fake


def hanging(ctx, item):
    yield ctx.run("echo", "hang")


def test_batch_timeout_kills_the_batch_and_is_retried_then_reported():
    fake = hang_provider()
    with make_golem(fake, max_workers=1, batch_timeout=0.05, max_retries=1) as golem:
        with pytest.raises(FragmentFailed) as info:
            golem.run(hanging, 1)
    assert [type(a) for a in info.value.attempts] == [BatchTimeoutError, BatchTimeoutError]


def test_fragment_timeout_spans_batches():
    fake = echo_provider(latency=0.03)

    def slow(ctx, item):
        for _ in range(10):
            yield ctx.run("echo", "x")

    with make_golem(fake, max_workers=1, fragment_timeout=0.1, max_retries=0) as golem:
        with pytest.raises(FragmentFailed) as info:
            golem.run(slow, 1)
    (cause,) = info.value.attempts
    assert isinstance(cause, FragmentTimeoutError) and "0.1 s timeout" in str(cause)
    assert len(fake.runs) < 10


def test_job_timeout_raises_and_cancels_the_rest():
    fake = hang_provider()
    with make_golem(fake, max_workers=2) as golem:
        with pytest.raises(JobTimeoutError, match="0.2 s timeout"):
            list(golem.map(hanging, range(4), timeout=0.2))
        assert golem.engaged == 0
    assert fake.assert_all_released() is None
    assert all(isinstance(b.error, BatchCancelled) for b in fake.batches)


def test_early_break_kills_running_commands_and_releases_providers():
    fake = FakeProvider(assert_all_used=False)
    fake.on_run("echo 0", stdout="0")
    fake.on_run(lambda line: line.startswith("echo "), hang=True)
    with make_golem(fake, max_workers=3) as golem:
        for _ in golem.map(echo, range(10)):
            assert fake.wait_for_commands(3)
            break
        # The hanging commands end only when killed: the break returned after killing them.
        assert golem.engaged == 0
        assert fake.assert_all_released() is None
    assert [b.error for b in fake.batches if b.error is not None]


def test_ctrl_c_while_waiting_stops_everything_and_reraises():
    fake = hang_provider()
    interrupter = threading.Thread(target=lambda: fake.wait_for_commands(2, timeout=30)
                                   and os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        with make_golem(fake, max_workers=2) as golem:
            interrupter.start()  # Ctrl-C once both providers hang in a command
            list(golem.map(hanging, range(4)))
    interrupter.join()
    assert fake.assert_all_released() is None
    assert all(isinstance(b.error, BatchCancelled) for b in fake.batches)


def test_shutdown_is_idempotent_and_refuses_new_work():
    fake = echo_provider()
    golem = make_golem(fake, max_workers=2)
    assert golem.run(echo, 1)[0] == 1
    golem.shutdown()
    golem.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        golem.submit(echo, 2)
    with pytest.raises(RuntimeError, match="shut down"):
        golem.map(echo, [1])
    assert fake.assert_all_released() is None


def test_leaving_the_with_block_normally_waits_for_submitted_work():
    fake = echo_provider(latency=0.02)
    with make_golem(fake, max_workers=2) as golem:
        futures = [golem.submit(echo, i) for i in range(6)]
    assert [f.result(timeout=0)[0] for f in futures] == list(range(6))
    assert fake.assert_all_released() is None


def test_leaving_the_with_block_on_an_error_cancels_submitted_work():
    fake = hang_provider()
    with pytest.raises(ZeroDivisionError):
        with make_golem(fake, max_workers=1) as golem:
            running = golem.submit(hanging, 0)
            queued = golem.submit(hanging, 1)
            assert fake.wait_for_commands(1)
            raise ZeroDivisionError("the user's code failed inside the with block")
    assert isinstance(running.exception(timeout=5), BatchCancelled)
    assert queued.cancelled() or isinstance(queued.exception(timeout=5), BatchCancelled)
    assert fake.assert_all_released() is None


def test_shutdown_cancel_futures_stops_hanging_work_quickly():
    fake = hang_provider()
    golem = make_golem(fake, max_workers=2)
    futures = [golem.submit(hanging, i) for i in range(2)]
    assert fake.wait_for_commands(2)
    golem.shutdown(cancel_futures=True)  # returns at all only if the hanging commands are killed
    assert fake.assert_all_released() is None
    assert all(isinstance(f.exception(timeout=0), BatchCancelled) for f in futures)


def test_providers_of_a_finished_map_are_reused_by_the_next_call():
    # A race once made every normally finished map look unfinished and release its
    # providers; a retry arriving while they left could then be stranded for good.
    fake = FakeProvider(assert_all_used=False)
    fake.on_run("echo fail", exit_code=5)
    fake.on_run(lambda line: True, handler=lambda c, s: c.args[1])

    def echo_once_both_are_engaged(ctx, item):
        # The map must engage both providers (the test is about reusing them), so the
        # first fragment holds its slot until the second provider is ready for the work
        # queued behind it (a session the fake made is not enough: a provider that gets
        # ready after the queue drained is let go, as engagement follows demand).
        if item == 0:
            assert both_engaged.wait(HANG_GUARD), "the second provider was never engaged"
        return (yield from echo(ctx, item))

    def count_engaged(event):
        if isinstance(event, events.ProviderEngaged):
            engaged_now.append(event.provider_id)
            if len(engaged_now) == 2:
                both_engaged.set()

    for _ in range(30):
        engaged_now: list = []
        both_engaged = threading.Event()
        with make_golem(fake, max_workers=2, max_retries=3, events=count_engaged) as golem:
            assert [r[0] for r in golem.map(echo_once_both_are_engaged, range(6))] == list(range(6))
            engaged = {s.id for s in fake.sessions}
            with pytest.raises(FragmentFailed):
                golem.run(echo, "fail")
            assert {s.id for s in fake.sessions} == engaged  # nobody new was engaged


def test_work_arriving_while_providers_are_let_go_still_runs():
    fake = hang_provider()
    with make_golem(fake, max_workers=2) as golem:
        for _ in range(20):
            with pytest.raises(JobTimeoutError):
                list(golem.map(hanging, range(2), timeout=0.05))
            assert golem.run(echo, "x", timeout=10)[1] == "x"


def test_work_a_lost_provider_leaves_after_shutdown_began_is_still_done():
    # shutdown(wait=False) lets the slots finish the queue; a provider lost meanwhile puts
    # its fragment back, and the last slot leaving must not strand it (nor the rest).
    fake = echo_provider()
    fake.lose_provider(1, after_commands=2)  # fragment 1's command loses fake-1
    go = threading.Event()

    def echo_when_told(ctx, item):
        if item == 0:
            assert go.wait(HANG_GUARD), "the test never let fragment 0 run"
        return (yield from echo(ctx, item))

    golem = make_golem(fake, max_workers=1, max_retries=3)
    futures = [golem.submit(echo_when_told, item) for item in range(3)]
    golem.shutdown(wait=False)  # the work goes on in the background
    go.set()
    assert [f.result(HANG_GUARD)[0] for f in futures] == [0, 1, 2]
    assert fake.wait_for_released(HANG_GUARD)
    assert [s.id for s in fake.sessions] == ["fake-1", "fake-2"]


def test_a_retry_that_comes_after_the_pool_broke_fails_instead_of_waiting_forever():
    # Engaging a second provider fails until the pool breaks (its queued work fails);
    # the fragment running meanwhile then loses its provider. Its retry has nowhere to
    # go: it must fail with the pool's error, not sit in a queue nobody serves.
    fake = FakeProvider(assert_all_used=False)
    fake.on_run("echo lose", error=ProviderLost)  # before the echo rule: the first that matches answers
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda command, session: command.args[1])
    for attempt in range(2, 12):
        fake.fail_engage(attempt)
    go = threading.Event()

    def lose_when_told(ctx, item):
        if item == 0:
            assert go.wait(HANG_GUARD), "the test never let fragment 0 run"
            yield ctx.run("echo", "lose")
        return (yield from echo(ctx, item))

    with make_golem(fake, max_workers=2, max_retries=3) as golem:
        futures = [golem.submit(lose_when_told, item) for item in range(3)]
        assert isinstance(futures[1].exception(HANG_GUARD), BrokenPool)  # the pool broke
        go.set()
        assert isinstance(futures[0].exception(HANG_GUARD), BrokenPool)
    fake.assert_all_released()
