"""The generator driver, with hand-written generators and no threads."""

from __future__ import annotations

import functools

import pytest

from golem_tasks import Batch, BatchCancelled, CommandExecutionError, CommandResult, Run, WorkerError
from golem_tasks._driver import check_worker, drive, start


def ok_execute(batch):
    return [CommandResult(command=c, index=i, stdout=f"out{i}") for i, c in enumerate(batch.commands)]


def failing_execute(batch):
    raise CommandExecutionError("boom", command=batch.commands[0], index=0, exit_code=2, stderr="bad")


def test_results_reach_the_yield_and_the_return_value_is_the_result():
    def worker():
        results = yield Batch().run("a").run("b")
        return [r.stdout for r in results]

    assert drive(worker(), ok_execute) == ["out0", "out1"]


def test_several_batches_in_one_worker():
    seen = []

    def worker():
        for name in ("x", "y", "z"):
            results = yield Batch().run(name)
            seen.append(results[0].command.args[0])
        return len(seen)

    assert drive(worker(), ok_execute) == 3
    assert seen == ["x", "y", "z"]


def test_a_failed_command_is_raised_at_the_yield_and_can_be_handled():
    def worker():
        try:
            yield Batch().run("bad")
        except CommandExecutionError as exc:
            assert exc.exit_code == 2 and exc.stderr == "bad"
            return "recovered"

    assert drive(worker(), failing_execute) == "recovered"


def test_an_unhandled_batch_error_comes_out_unchanged():
    def worker():
        yield Batch().run("bad")

    with pytest.raises(CommandExecutionError) as info:
        drive(worker(), failing_execute)
    assert info.value.exit_code == 2


def test_worker_may_go_on_after_a_failure():
    calls = []

    def execute(batch):
        calls.append(batch.commands[0].args[0])
        if batch.commands[0].args[0] == "bad":
            return failing_execute(batch)
        return ok_execute(batch)

    def worker():
        try:
            yield Batch().run("bad")
        except CommandExecutionError:
            pass
        results = yield Batch().run("good")
        return results[0].stdout

    assert drive(worker(), execute) == "out0"
    assert calls == ["bad", "good"]


def test_yielding_something_that_is_not_a_batch_is_named():
    closed = []

    def worker():
        try:
            yield "date"
        finally:
            closed.append(True)

    with pytest.raises(WorkerError, match="yielded str 'date'.*must yield a Batch"):
        drive(worker(), ok_execute)
    assert closed == [True]


def test_a_worker_that_swallows_cancellation_cannot_run_more():
    ran = []

    def execute(batch):
        ran.append(batch.commands[0].args[0])
        raise BatchCancelled("stop")

    def worker():
        try:
            yield Batch().run("first")
        except BatchCancelled:
            pass
        yield Batch().run("second")

    with pytest.raises(BatchCancelled):
        drive(worker(), execute)
    assert ran == ["first"]


def test_the_generator_is_always_closed():
    state = []

    def worker():
        try:
            yield Batch().run("a")
            yield Batch().run("b")
        finally:
            state.append("closed")

    def execute(batch):
        raise RuntimeError("driver-side bug")

    with pytest.raises(RuntimeError):
        drive(worker(), execute)
    assert state == ["closed"]


def test_worker_that_yields_nothing_returns_its_value():
    def worker():
        return 5
        yield  # pragma: no cover

    assert drive(worker(), ok_execute) == 5


def test_plain_function_worker_is_refused_before_anything_runs():
    def not_a_generator(ctx, item):
        return item

    with pytest.raises(WorkerError, match="not a generator function"):
        check_worker(not_a_generator)
    with pytest.raises(WorkerError, match="not a generator function"):
        check_worker(functools.partial(not_a_generator, None))
    with pytest.raises(WorkerError, match="must be a generator function"):
        check_worker(42)


def test_callable_object_returning_a_non_generator_is_caught_at_start():
    class Worker:
        def __call__(self, ctx):
            return [1, 2]

    check_worker(Worker())  # cannot be told in advance
    with pytest.raises(WorkerError, match="returned list, not a generator"):
        start(Worker(), None)


def test_the_worker_own_exception_keeps_its_traceback():
    def worker():
        yield Batch().run("a")
        raise KeyError("mine")

    with pytest.raises(KeyError) as info:
        drive(worker(), ok_execute)
    assert any(frame.name == "worker" for frame in info.traceback)


def test_batch_builder_validates_input():
    batch = Batch()
    with pytest.raises(ValueError, match="must be absolute"):
        batch.send_bytes(b"x", "relative/path")
    with pytest.raises(ValueError, match="normalised"):
        batch.download_bytes("/golem/output/../../etc/passwd")
    with pytest.raises(TypeError, match="JSON-serialisable"):
        batch.send_json(object(), "/golem/input/x.json")
    with pytest.raises(TypeError, match="send_json"):
        batch.send_bytes("text", "/golem/input/x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        Batch(timeout=0)
    assert isinstance(Batch().run("a", check=False).commands[0], Run)
