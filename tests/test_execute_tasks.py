"""yapapi-style execute_tasks: one worker per provider iterates many tasks."""

from __future__ import annotations

import pytest

from golem_tasks import FragmentFailed, Task, TaskRejected, TaskStatus, WorkerError

from .helpers import echo_provider, make_golem


def yapapi_worker(ctx, tasks):
    # the yapapi idiom: per-provider setup before the loop, then one batch per task
    yield ctx.batch().send_bytes(b"setup", "/golem/input/setup")
    for task in tasks:
        results = yield ctx.run("echo", str(task.data))
        task.accept_result(results[0].stdout)


def test_every_task_comes_back_accepted_once():
    fake = echo_provider()
    with make_golem(fake, max_workers=3) as golem:
        done = list(golem.execute_tasks(yapapi_worker, [Task(i) for i in range(20)], max_workers=3))
    assert sorted(t.data for t in done) == list(range(20))
    assert all(t.status is TaskStatus.ACCEPTED and t.result == str(t.data) for t in done)
    # the setup batch ran once per worker generator, not once per task
    assert len([c for c in fake.calls if c.command.describe().startswith("send")]) <= 3 + 2


def test_plain_items_are_wrapped_in_tasks():
    with make_golem(echo_provider(), max_workers=2) as golem:
        done = list(golem.execute_tasks(yapapi_worker, ["a", "b"]))
    assert sorted(t.result for t in done) == ["a", "b"]


def test_reject_without_retry_is_reported_never_dropped():
    def worker(ctx, tasks):
        for task in tasks:
            yield ctx.run("echo", str(task.data))
            if task.data == 2:
                task.reject_result("two is invalid", retry=False)
            else:
                task.accept_result(task.data)

    with make_golem(echo_provider(), max_workers=2) as golem:
        with pytest.raises(TaskRejected, match="two is invalid"):
            list(golem.execute_tasks(worker, range(5)))
    with make_golem(echo_provider(), max_workers=2) as golem:
        done = list(golem.execute_tasks(worker, range(5), return_exceptions=True))
    assert sorted(t.data for t in done) == list(range(5))
    (bad,) = [t for t in done if t.status is TaskStatus.FAILED]
    assert bad.data == 2 and isinstance(bad.exception, TaskRejected)


def test_reject_with_retry_moves_the_task_to_another_provider_and_is_bounded():
    attempts = []

    def worker(ctx, tasks):
        for task in tasks:
            yield ctx.run("echo", str(task.data))
            attempts.append(ctx.provider_id)
            if len(attempts) == 1:
                task.reject_result("try elsewhere", retry=True)
            else:
                task.accept_result(ctx.provider_id)

    with make_golem(echo_provider(), max_workers=2) as golem:
        (task,) = list(golem.execute_tasks(worker, [0]))
    assert task.result != attempts[0]

    def always_reject(ctx, tasks):
        for task in tasks:
            yield ctx.run("echo", "x")
            task.reject_result("never good", retry=True)

    with make_golem(echo_provider(), max_workers=1, max_retries=2) as golem:
        with pytest.raises(FragmentFailed, match="rejected on every one of its 3 attempts"):
            list(golem.execute_tasks(always_reject, [0]))


def test_a_single_worker_can_retry_a_rejected_task_no_stall():
    # yapapi stalls here: a rescheduled task is never handed back to its only consumer
    seen = []

    def worker(ctx, tasks):
        for task in tasks:
            yield ctx.run("echo", "x")
            seen.append(task.data)
            if seen.count(task.data) == 1:
                task.reject_result("once more", retry=True)
            else:
                task.accept_result(task.data)

    with make_golem(echo_provider(), max_workers=1) as golem:
        done = list(golem.execute_tasks(worker, range(3), timeout=10))
    assert sorted(t.data for t in done) == [0, 1, 2]


def test_infrastructure_failure_retries_the_tasks_the_worker_held():
    fake = echo_provider()
    fake.fail_command(2)

    def worker(ctx, tasks):
        for task in tasks:
            results = yield ctx.run("echo", str(task.data))
            task.accept_result(results[0].stdout)

    with make_golem(fake, max_workers=1) as golem:
        done = list(golem.execute_tasks(worker, range(4)))
    assert sorted(t.result for t in done) == ["0", "1", "2", "3"]


def test_forgetting_to_settle_a_task_fails_it_with_a_clear_error():
    def worker(ctx, tasks):
        for _task in tasks:
            yield ctx.run("echo", "x")

    with make_golem(echo_provider(), max_workers=1) as golem:
        with pytest.raises(WorkerError, match="without calling accept_result"):
            list(golem.execute_tasks(worker, [1]))


def test_settling_twice_is_an_error():
    task = Task(1)
    with pytest.raises(RuntimeError, match="not running"):
        task.accept_result(1)
