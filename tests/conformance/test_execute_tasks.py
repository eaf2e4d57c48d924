"""Every way out of yapapi-style ``execute_tasks`` (issue 8: it could hang forever): all
tasks delivered once, break, an exception inside and outside the ``with``,
``return_exceptions``, a window smaller than the input, rejected tasks, the job timeout
and Ctrl-C. Each returns, releases the provider and leaves no thread (tests/conftest.py).

Tests that hang on the scheduler issue 8 replaces are marked ``run=False`` (a hung,
non-daemon pool thread would keep the test process alive for good).
"""

from __future__ import annotations

import collections
import os
import signal
import threading

import pytest
import tenacity

from golem_tasks import FragmentFailed, JobTimeoutError, TaskRejected, TaskStatus

from .conftest import HANG, sh



def stream(backend, fail=(), sleep=()):
    """A yapapi-style worker: per task ``echo DATA``; ``exit 3`` for data in ``fail``,
    the backend's endless sleep for data in ``sleep``."""
    def worker(ctx, tasks):
        for task in tasks:
            line = "exit 3" if task.data in fail else backend.sleep_line if task.data in sleep else f"echo {task.data}"
            results = yield sh(ctx, line)
            task.accept_result(results[0].stdout.strip())
    return worker


def test_every_task_is_accepted_exactly_once_with_a_window_smaller_than_the_input(any_backend):
    with any_backend.golem(max_workers=2, window=1) as golem:
        done = list(golem.execute_tasks(stream(any_backend), range(10)))
    assert collections.Counter(t.data for t in done) == collections.Counter(range(10))
    assert all(t.status is TaskStatus.ACCEPTED and t.result == str(t.data) for t in done)
    any_backend.assert_released()


def test_break_returns_and_releases(any_backend):
    with any_backend.golem(max_workers=1, window=1) as golem:
        for task in golem.execute_tasks(stream(any_backend), range(4)):
            assert task.result == "0"
            break
        assert golem.engaged == 0
    any_backend.assert_released()


def test_break_after_a_retried_command_returns_and_releases(any_backend):
    failed = threading.Event()

    def fails_once(ctx, tasks):
        for task in tasks:
            first = not failed.is_set()
            failed.set()
            results = yield sh(ctx, "exit 3" if first else f"echo {task.data}")
            task.accept_result(results[0].stdout.strip())

    with any_backend.golem(max_workers=1, window=1, retry_wait=tenacity.wait_none()) as golem:
        for _ in golem.execute_tasks(fails_once, range(2)):
            break
    any_backend.assert_released()


def test_a_failure_caught_inside_the_with_returns_and_releases(backend):
    with backend.golem(max_workers=1, window=1, max_retries=0) as golem:
        with pytest.raises(FragmentFailed):
            list(golem.execute_tasks(stream(backend, fail={0}), range(2)))
    backend.assert_released()


def test_a_failure_leaving_the_with_returns_and_releases(backend):
    with pytest.raises(FragmentFailed):
        with backend.golem(max_workers=1, window=1, max_retries=0) as golem:
            list(golem.execute_tasks(stream(backend, fail={0}), range(3)))
    backend.assert_released()


def test_the_callers_exception_inside_the_loop_returns_and_releases(backend):
    with pytest.raises(ZeroDivisionError):
        with backend.golem(max_workers=1, window=1) as golem:
            for _ in golem.execute_tasks(stream(backend, sleep=set(range(1, 5))), range(5)):
                raise ZeroDivisionError("the caller's bug")
    backend.assert_released()


def test_return_exceptions_hands_back_every_task(backend):
    with backend.golem(max_workers=1, window=1, max_retries=0) as golem:
        done = list(golem.execute_tasks(stream(backend, fail={1}), range(4), return_exceptions=True))
    by_data = {t.data: t for t in done}
    assert sorted(by_data) == [0, 1, 2, 3] and len(done) == 4
    assert by_data[1].exception is not None and by_data[1].status is TaskStatus.FAILED
    assert all(by_data[i].result == str(i) for i in (0, 2, 3))
    backend.assert_released()


def test_a_rejected_task_is_retried_then_accepted(backend):
    rejected = set()
    lock = threading.Lock()

    def picky(ctx, tasks):
        for task in tasks:
            results = yield sh(ctx, f"echo {task.data}")
            with lock:
                first = task.data not in rejected
                rejected.add(task.data)
            if first and task.data % 2 == 0:
                task.reject_result("once more", retry=True)
            else:
                task.accept_result(results[0].stdout.strip())

    with backend.golem(max_workers=2, max_retries=2) as golem:
        done = list(golem.execute_tasks(picky, range(6), timeout=HANG))
    assert sorted(t.data for t in done) == list(range(6))
    assert all(t.result == str(t.data) for t in done)
    backend.assert_released()


def test_a_rejection_without_retry_is_raised_and_everything_released(backend):
    def refuses_two(ctx, tasks):
        for task in tasks:
            results = yield sh(ctx, f"echo {task.data}")
            if task.data == 2:
                task.reject_result("two is invalid", retry=False)
            else:
                task.accept_result(results[0].stdout.strip())

    with pytest.raises(TaskRejected, match="two is invalid"):
        with backend.golem(max_workers=1, window=1) as golem:
            list(golem.execute_tasks(refuses_two, range(5)))
    backend.assert_released()


def test_the_job_timeout_ends_execute_tasks(any_backend):
    with any_backend.golem(max_workers=2) as golem:
        with pytest.raises(JobTimeoutError):
            list(golem.execute_tasks(stream(any_backend, sleep=set(range(4))), range(4), timeout=0.5))
        assert golem.engaged == 0
    any_backend.assert_released()


def test_ctrl_c_in_the_loop_returns_and_releases(any_backend):
    with pytest.raises(KeyboardInterrupt):
        with any_backend.golem(max_workers=2, window=1) as golem:
            for _ in golem.execute_tasks(stream(any_backend, sleep=set(range(1, 5))), range(5)):
                raise KeyboardInterrupt
    any_backend.assert_released()


def test_a_ctrl_c_signal_while_streams_run_returns_and_releases(backend):
    def interrupt_once_sleeping():
        if backend.wait_sleeping(2):
            os.kill(os.getpid(), signal.SIGINT)

    interrupter = threading.Thread(target=interrupt_once_sleeping)
    with pytest.raises(KeyboardInterrupt):
        with backend.golem(max_workers=2) as golem:
            interrupter.start()
            list(golem.execute_tasks(stream(backend, sleep=set(range(6))), range(6)))
    interrupter.join()
    backend.assert_released()
