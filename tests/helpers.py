"""Workers and small tools shared by the scheduler tests."""

from __future__ import annotations

import threading
import time
from typing import Iterator

import tenacity

from golem_tasks import Golem
from golem_tasks.testing import FakeProvider

NO_WAIT = tenacity.wait_none()


def threads_left_check(grace: float = 15.0) -> Iterator[None]:
    """The body of the autouse leak check: yield, then fail if a thread started meanwhile
    is still running after ``grace`` seconds (pool threads end on their own after a call)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + grace
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert not leaked, f"threads left running: {leaked}"


def echo(ctx, item):
    """Runs `echo ITEM` and returns (item, stdout, provider id)."""
    results = yield ctx.run("echo", str(item))
    return item, results[0].stdout, ctx.provider_id


def make_golem(fake: FakeProvider, **kwargs) -> Golem:
    kwargs.setdefault("progress", False)
    kwargs.setdefault("retry_wait", NO_WAIT)
    return Golem(fake, **kwargs)


def echo_provider(**kwargs) -> FakeProvider:
    """A fake that answers `echo X` with X."""
    fake = FakeProvider(assert_all_used=False, **kwargs)
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda command, session: command.args[1])
    return fake


#: Seconds after which a call that should return is declared hung. Only catches hangs:
#: no test asserts how fast anything is (benchmarks/bench_latency.py prints that).
HANG_GUARD = 60.0


def until(condition, what: str, guard: float = HANG_GUARD, poll: float = 0.02) -> None:
    """Wait for ``condition()`` to hold: for state only visible by asking (a daemon's
    list of demands, a process table). Fails the test with ``what`` if it has not held
    after ``guard`` seconds, which only catches a hang; no speed is asserted."""
    import time

    deadline = time.monotonic() + guard
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"hung: {what} never happened within the {guard:g} s hang guard")
        time.sleep(poll)


def finishes(call, *args, guard: float = HANG_GUARD):
    """Run ``call(*args)`` in a thread and return its result, failing the test (instead
    of hanging it) if it has not returned after ``guard`` seconds."""
    import threading

    outcome: dict = {}

    def body():
        try:
            outcome["value"] = call(*args)
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=body, name=f"finishes-{getattr(call, '__name__', call)}", daemon=True)
    thread.start()
    thread.join(guard)
    assert not thread.is_alive(), f"{call!r} did not return within {guard:g} s (hang guard)"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
