"""The promises of map/as_completed/submit/run, on every provider kind (see conftest.py).

Each test ends with no thread left (the autouse leak check in tests/conftest.py) and every
provider released (``backend.assert_released``). No test measures time: waits are on
events, and timeouts only catch hangs.
"""

from __future__ import annotations

import collections
import os
import signal
import threading

import pytest

from golem_tasks import (
    BatchCancelled,
    Golem,
    BatchTimeoutError,
    FragmentFailed,
    FragmentTimeoutError,
    JobTimeoutError,
)

from ..test_local_provider import wait_for
from .conftest import HANG, echo, quick_then_sleep, sh, sleeper


# -- results ---------------------------------------------------------------------------

def test_map_keeps_input_order(any_backend):
    with any_backend.golem(max_workers=3) as golem:
        assert list(golem.map(echo, range(12))) == [str(i) for i in range(12)]
    any_backend.assert_released()


def test_every_fragment_is_delivered_exactly_once(backend):
    ran = collections.Counter()
    lock = threading.Lock()

    def counted(ctx, item):
        value = yield from echo(ctx, item)
        with lock:
            ran[item] += 1
        return value

    with backend.golem(max_workers=3) as golem:
        results = list(golem.as_completed(counted, range(15)))
    assert sorted(r.index for r in results) == list(range(15))
    assert all(r.value == str(r.item) for r in results)
    assert ran == collections.Counter(range(15))
    backend.assert_released()


def test_submit_and_run_return_the_workers_value(backend):
    with backend.golem() as golem:
        futures = [golem.submit(echo, i) for i in range(4)]
        assert golem.run(echo, "x") == "x"
        assert [f.result(timeout=HANG) for f in futures] == ["0", "1", "2", "3"]
    backend.assert_released()


def test_a_failing_provider_is_retried_elsewhere(any_backend):
    first = {}
    lock = threading.Lock()

    def fails_on_the_first_provider(ctx, item):
        with lock:
            bad = first.setdefault("id", ctx.provider_id)
        results = yield sh(ctx, "exit 3" if ctx.provider_id == bad else f"echo {item}")
        return results[0].stdout.strip(), ctx.provider_id

    with any_backend.golem(max_workers=2, max_retries=3) as golem:
        answers = list(golem.map(fails_on_the_first_provider, range(6)))
    assert [value for value, _ in answers] == [str(i) for i in range(6)]
    assert first["id"] not in {who for _, who in answers}
    any_backend.assert_released()


def test_a_worker_error_is_not_retried(backend):
    calls = []

    def broken(ctx, item):
        calls.append(item)
        yield sh(ctx, "echo x")
        raise ZeroDivisionError("the worker's own bug")

    with backend.golem() as golem:
        with pytest.raises(ZeroDivisionError):
            golem.run(broken, 1)
    assert calls == [1]
    backend.assert_released()


# -- per-provider setup and teardown ---------------------------------------------------

def test_the_initializer_runs_once_per_provider(any_backend):
    initialized = []

    def init(ctx):
        yield sh(ctx, "echo init")
        initialized.append(ctx.provider_id)

    def where(ctx, item):
        yield sh(ctx, f"echo {item}")
        return ctx.provider_id

    with any_backend.golem(max_workers=2, initializer=init) as golem:
        used = set(golem.map(where, range(8)))
    assert len(initialized) == len(set(initialized))
    assert used <= set(initialized)
    any_backend.assert_released()


def test_the_finalizer_runs_once_per_provider_before_release(backend):
    initialized, finalized = [], []

    def init(ctx):
        yield sh(ctx, "echo init")
        initialized.append(ctx.provider_id)

    def fin(ctx):
        results = yield sh(ctx, "echo bye")
        assert results[0].stdout.strip() == "bye"
        finalized.append(ctx.provider_id)

    with backend.golem(max_workers=2, initializer=init, finalizer=fin) as golem:
        assert list(golem.map(echo, range(6))) == [str(i) for i in range(6)]
    assert sorted(finalized) == sorted(initialized) and len(finalized) == len(set(finalized))
    backend.assert_released()


# -- timeouts --------------------------------------------------------------------------

def test_batch_timeout_kills_the_batch_and_is_retried(backend):
    with backend.golem(batch_timeout=0.5, max_retries=1) as golem:
        with pytest.raises(FragmentFailed) as info:
            golem.run(sleeper(backend), 0)
    assert [type(a) for a in info.value.attempts] == [BatchTimeoutError, BatchTimeoutError]
    backend.assert_released()


def test_fragment_timeout_fails_the_fragment(backend):
    with backend.golem(fragment_timeout=0.5, max_retries=0) as golem:
        with pytest.raises(FragmentFailed) as info:
            golem.run(sleeper(backend), 0)
    (cause,) = info.value.attempts
    assert isinstance(cause, FragmentTimeoutError)
    backend.assert_released()


def test_an_expired_fragment_timeout_closes_the_worker(backend):
    seen = []

    def watched(ctx, item):
        try:
            yield sh(ctx, backend.sleep_line)
        except BaseException as exc:
            seen.append(type(exc))
            raise

    with backend.golem(fragment_timeout=0.5, max_retries=1) as golem:
        with pytest.raises(FragmentFailed):
            golem.run(watched, 0)
    assert seen == [GeneratorExit, GeneratorExit]  # each attempt closed, then retried once
    backend.assert_released()


def test_a_worker_that_ignores_the_fragment_timeout_is_abandoned(backend):
    def stubborn(ctx, item):
        while True:
            try:
                yield sh(ctx, backend.sleep_line)
            except BaseException:  # noqa: B036 - the misbehaviour under test
                pass

    with backend.golem(fragment_timeout=0.5, max_retries=0) as golem:
        with pytest.raises(FragmentFailed):
            golem.run(stubborn, 0)
    backend.assert_released()


def test_job_timeout_raises_and_cancels_the_rest(any_backend):
    with any_backend.golem(max_workers=2) as golem:
        with pytest.raises(JobTimeoutError):
            list(golem.map(sleeper(any_backend), range(4), timeout=0.5))
        assert golem.engaged == 0
    any_backend.assert_released()


# -- shutdown --------------------------------------------------------------------------

def test_leaving_the_with_waits_for_submitted_work(backend):
    with backend.golem() as golem:
        futures = [golem.submit(echo, i) for i in range(4)]
    assert [f.result(timeout=0) for f in futures] == ["0", "1", "2", "3"]
    backend.assert_released()


def test_shutdown_without_waiting_lets_submitted_work_finish(backend):
    gate = threading.Event()

    def gated(ctx, item):
        assert gate.wait(HANG)  # still running (or queued) when shutdown() returns
        return (yield from echo(ctx, item))

    golem = backend.golem(max_workers=2)
    futures = [golem.submit(gated, i) for i in range(4)]
    golem.shutdown(wait=False)
    gate.set()
    try:
        assert [f.result(timeout=HANG) for f in futures] == ["0", "1", "2", "3"]
    finally:
        assert backend.wait_released()
    backend.assert_released()


@pytest.mark.parametrize("name", ["fake", "local"])
def test_shutdown_without_waiting_finishes_work_on_a_provider_the_golem_built(name, tmp_path):
    gate = threading.Event()

    def gated(ctx, item):
        assert gate.wait(HANG)
        yield sh(ctx, f"echo {item}")
        return item

    options = {"strict": False} if name == "fake" else {"root": tmp_path / "root", "sandbox": "host"}
    golem = Golem(name, provider_options=options, max_workers=2, progress=False)
    futures = [golem.submit(gated, i) for i in range(4)]
    golem.shutdown(wait=False)
    gate.set()
    assert [f.exception(timeout=HANG) for f in futures] == [None] * 4
    assert [f.result() for f in futures] == [0, 1, 2, 3]
    # The Golem closes the provider it built once its last slot ended.
    if name == "fake":
        assert golem.provider.wait_for_released(HANG)
    else:
        assert wait_for(lambda: not (tmp_path / "root").exists() or not any((tmp_path / "root").iterdir()), HANG)


def test_shutdown_cancel_futures_kills_running_and_drops_queued_work(backend):
    golem = backend.golem(max_workers=2)
    futures = [golem.submit(sleeper(backend), i) for i in range(4)]
    assert backend.wait_sleeping(2)
    golem.shutdown(wait=True, cancel_futures=True)
    for future in futures:
        assert future.cancelled() or isinstance(future.exception(timeout=0), BatchCancelled)
    backend.assert_released()


def test_shutdown_refuses_new_work_and_is_idempotent(backend):
    golem = backend.golem()
    assert golem.run(echo, 1) == "1"
    golem.shutdown()
    golem.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        golem.submit(echo, 2)
    with pytest.raises(RuntimeError, match="shut down"):
        golem.map(echo, [1])
    backend.assert_released()


# -- leaving early ---------------------------------------------------------------------

def test_break_kills_running_commands_and_releases_providers(any_backend):
    with any_backend.golem(max_workers=3) as golem:
        for result in golem.as_completed(quick_then_sleep(any_backend), range(6)):
            assert result.value == "0"
            break
        assert golem.engaged == 0
        any_backend.assert_released()
    any_backend.assert_released()


def test_ctrl_c_in_the_consumer_loop_cleans_up(any_backend):
    with pytest.raises(KeyboardInterrupt):
        with any_backend.golem(max_workers=2) as golem:
            for _ in golem.map(quick_then_sleep(any_backend), range(4)):
                raise KeyboardInterrupt
    any_backend.assert_released()


def test_ctrl_c_signal_while_waiting_cleans_up(backend):
    def interrupt_once_sleeping():
        if backend.wait_sleeping(2):
            os.kill(os.getpid(), signal.SIGINT)

    interrupter = threading.Thread(target=interrupt_once_sleeping)
    with pytest.raises(KeyboardInterrupt):
        with backend.golem(max_workers=2) as golem:
            interrupter.start()
            list(golem.map(sleeper(backend), range(4)))
    interrupter.join()
    backend.assert_released()


def test_an_error_inside_the_with_cancels_submitted_work(backend):
    with pytest.raises(ZeroDivisionError):
        with backend.golem(max_workers=1) as golem:
            running = golem.submit(sleeper(backend), 0)
            queued = golem.submit(sleeper(backend), 1)
            assert backend.wait_sleeping(1)
            raise ZeroDivisionError("the user's code failed inside the with block")
    assert isinstance(running.exception(timeout=HANG), BatchCancelled)
    assert queued.cancelled() or isinstance(queued.exception(timeout=HANG), BatchCancelled)
    backend.assert_released()
