"""Generated fault schedules for the scheduler, shared by the property tests
(tests/test_properties_schedules.py, hypothesis) and benchmarks/schedules.py (a seeded
random generator running at least 10,000 of them).

A schedule picks an API (``map``, ``as_completed``, ``submit``, ``execute_tasks``), the
pool's shape (workers, window, retries, an initializer), faults the fake provider injects
(failing commands, lost providers, tasks the stream rejects with or without retry) and
how the caller leaves (all results, ``break``, an exception caught inside the ``with``
or leaving it, Ctrl-C, or, with ``submit``, leaving the ``with`` before taking any result,
so the pool finishes its queue while it closes), engagements that fail, and speculation
(backup copies of stragglers). :func:`run_schedule` runs one under a watchdog and checks the
promises: every fragment delivered at most once (exactly once when the caller takes
everything with ``return_exceptions``), ``map`` order kept, the initializer once per
provider, every provider released, no thread left. A run that does not finish within the
watchdog's limit fails with every thread's stack.
"""

from __future__ import annotations

import collections
import random
import sys
import threading
import time
import traceback
from concurrent.futures import Future
from typing import Any, Callable, Dict, List, Optional, Tuple

import tenacity

from golem_tasks import (BrokenPool, CommandExecutionError, FragmentFailed, Golem, ProviderError, ProviderLost,
                         Speculation, TaskRejected)
from golem_tasks.testing import FakeProvider

#: Seconds after which a schedule counts as hung. Generous: only a hang gets near it.
WATCHDOG = 30.0

EXITS = ("all", "break", "raise_inside", "raise_outside", "interrupt", "after_with")
APIS = ("map", "as_completed", "submit", "execute_tasks")

#: One table for both generators: name -> ("choice", options) | ("int", lo, hi) |
#: ("set", lo, hi, max_size).
FIELDS: Dict[str, Tuple[Any, ...]] = {
    "api": ("choice", APIS),
    "items": ("int", 0, 16),
    "max_workers": ("int", 1, 3),
    "call_workers": ("choice", (None, 1, 2)),
    "window": ("choice", (None, 1, 2, 3, 8)),
    "max_retries": ("int", 0, 2),
    "failing": ("set", 1, 40, 6),
    "lost": ("set", 1, 4, 2),
    "lost_after": ("int", 0, 4),
    "initializer": ("choice", (False, True)),
    "return_exceptions": ("choice", (False, True)),
    "exit": ("choice", EXITS),
    "stop_after": ("int", 0, 8),
    "rejects": ("set", 0, 16, 4),
    "reject_retry": ("choice", (False, True)),
    "engage_faults": ("set", 1, 8, 3),
    "speculate": ("choice", (False, True)),
}

#: Backups for any fragment that runs 1.5x longer than most (the fake's runs take about
#: as long as each other, so scheduling noise makes the stragglers).
SPECULATION = Speculation(min_finished=1, min_runtime=0.001)


def strategy() -> Any:
    """The hypothesis strategy for a schedule."""
    from hypothesis import strategies as st

    def field(spec: Tuple[Any, ...]) -> Any:
        if spec[0] == "choice":
            return st.sampled_from(spec[1])
        if spec[0] == "int":
            return st.integers(spec[1], spec[2])
        return st.frozensets(st.integers(spec[1], spec[2]), max_size=spec[3])

    return st.fixed_dictionaries({name: field(spec) for name, spec in FIELDS.items()})


def random_schedule(rng: random.Random) -> Dict[str, Any]:
    """A schedule from a seeded generator (the benchmark's 10,000 need no shrinking)."""
    case: Dict[str, Any] = {}
    for name, spec in FIELDS.items():
        if spec[0] == "choice":
            case[name] = rng.choice(spec[1])
        elif spec[0] == "int":
            case[name] = rng.randint(spec[1], spec[2])
        else:
            case[name] = frozenset(rng.randint(spec[1], spec[2]) for _ in range(rng.randint(0, spec[3])))
    return case


class Hung(AssertionError):
    """A schedule did not finish within the watchdog's limit."""


def thread_stacks() -> str:
    """Every thread's stack, as faulthandler would print it, but into a string."""
    names = {t.ident: t.name for t in threading.enumerate()}
    parts = []
    for ident, frame in sys._current_frames().items():
        parts.append(f"--- thread {names.get(ident, '?')} ({ident}):\n{''.join(traceback.format_stack(frame))}")
    return "\n".join(parts)


def watched(body: Callable[[], None], on_hang: Callable[[], None], limit: float = WATCHDOG) -> None:
    """Run ``body`` in its own thread; if it has not finished after ``limit`` s, dump every
    thread's stack, call ``on_hang`` (to unstick what it can) and raise :class:`Hung`.
    The caller's thread never waits on the scheduler, so a hang cannot hang it."""
    outcome: List[BaseException] = []

    def run() -> None:
        try:
            body()
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)

    thread = threading.Thread(target=run, name="schedule", daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        stacks = thread_stacks()
        try:
            on_hang()
        finally:
            thread.join(5)
        raise Hung(f"the schedule did not finish within {limit:g} s; every thread's stack:\n{stacks}")
    if outcome:
        raise outcome[0]


class ConsumerError(Exception):
    """What the caller's own code raises in a schedule that leaves by an exception."""


def run_schedule(case: Dict[str, Any], limit: float = WATCHDOG) -> None:
    """Run one schedule and check every promise; AssertionError (or :class:`Hung`) if one
    is broken."""
    before = set(threading.enumerate())
    fake = FakeProvider(assert_all_used=False)
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda command, session: command.args[1])
    for number in case["failing"]:
        fake.fail_command(number, CommandExecutionError)
    for number in case["lost"]:
        fake.lose_provider(number, after_commands=case["lost_after"])
    for number in case["engage_faults"]:
        fake.fail_engage(number, error=ProviderError)
    state = _State()
    golem = Golem(fake, max_workers=case["max_workers"], max_retries=case["max_retries"],
                  retry_wait=tenacity.wait_none(), window=case["window"], progress=False,
                  initializer=state.init if case["initializer"] else None,
                  speculate=SPECULATION if case["speculate"] else False)

    def on_hang() -> None:
        fake.close()
        golem.shutdown(wait=False, cancel_futures=True)

    watched(lambda: _drive(case, golem, state), on_hang, limit)
    _check_after(case, golem, fake, state, before, limit)


class _State:
    """What the workers did, counted under a lock (they run on the pool's threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.returned: "collections.Counter[Any]" = collections.Counter()
        self.initialized: List[str] = []
        self.rejected_once: set = set()

    def init(self, ctx: Any) -> Any:
        yield ctx.run("echo", "init")
        with self.lock:
            self.initialized.append(ctx.provider_id)

    def worker(self, ctx: Any, item: Any) -> Any:
        results = yield ctx.run("echo", str(item))
        with self.lock:
            self.returned[item] += 1
        return int(results[0].stdout)


def _stream_worker(case: Dict[str, Any], state: _State) -> Callable[..., Any]:
    def worker(ctx: Any, tasks: Any) -> Any:
        for task in tasks:
            results = yield ctx.run("echo", str(task.data))
            with state.lock:
                first = task.data not in state.rejected_once
                state.rejected_once.add(task.data)
            if task.data in case["rejects"] and (first or not case["reject_retry"]):
                task.reject_result("rejected by the schedule", retry=case["reject_retry"])
            else:
                with state.lock:
                    state.returned[task.data] += 1
                task.accept_result(int(results[0].stdout))
    return worker


def _results(case: Dict[str, Any], golem: Golem, state: _State) -> Any:
    """The call under test, as an iterator of (key, value or exception)."""
    items = range(case["items"])
    workers = None if case["call_workers"] is None else min(case["call_workers"], case["max_workers"])
    keep = case["return_exceptions"]
    if case["api"] == "map":
        return enumerate(golem.map(state.worker, items, return_exceptions=keep, max_workers=workers))
    if case["api"] == "as_completed":
        return ((r.index, r.value) for r in golem.as_completed(state.worker, items, return_exceptions=keep,
                                                                max_workers=workers))
    if case["api"] == "submit":
        return _submitted([golem.submit(state.worker, i) for i in items], keep)
    done = golem.execute_tasks(_stream_worker(case, state), items, max_workers=workers, return_exceptions=keep)
    return ((t.data, t.exception if t.exception is not None else t.result) for t in done)


def _submitted(futures: List["Future[Any]"], keep: bool) -> Any:
    for index, future in enumerate(futures):
        error = future.exception()
        if error is not None and not keep:
            raise error
        yield index, error if error is not None else future.result()


EXPECTED_FAILURES = (FragmentFailed, BrokenPool, TaskRejected, CommandExecutionError, ProviderLost)


def _drive(case: Dict[str, Any], golem: Golem, state: _State) -> None:
    delivered: List[Tuple[Any, Any]] = []
    stop = case["stop_after"]
    leave = case["exit"]
    raised: Optional[BaseException] = None
    if leave == "after_with" and case["api"] == "submit":
        # Leave the with before taking anything: closing, the pool finishes the queue,
        # and every future still gets its outcome.
        futures: List["Future[Any]"] = []
        try:
            with golem:
                for i in range(case["items"]):  # refused once the pool broke: BrokenPool
                    futures.append(golem.submit(state.worker, i))
        except EXPECTED_FAILURES as exc:
            raised = exc
        try:
            delivered.extend(_submitted(futures, case["return_exceptions"]))
        except EXPECTED_FAILURES as exc:
            raised = raised or exc
        _check_delivered(case, delivered, raised, state)
        return
    try:
        with golem:
            try:
                for key, value in _results(case, golem, state):
                    delivered.append((key, value))
                    if leave not in ("all", "after_with") and len(delivered) > stop:
                        if leave == "break":
                            break
                        if leave == "interrupt":
                            raise KeyboardInterrupt
                        raise ConsumerError("the caller's own code failed")
            except (ConsumerError, *EXPECTED_FAILURES) as exc:
                if leave != "raise_inside" and not isinstance(exc, EXPECTED_FAILURES):
                    raise
                raised = exc  # caught inside the with: leaving it must still clean up
            assert golem.engaged <= case["max_workers"]
    except (ConsumerError, KeyboardInterrupt) as exc:
        raised = exc
    _check_delivered(case, delivered, raised, state)


def _check_delivered(case: Dict[str, Any], delivered: List[Tuple[Any, Any]], raised: Optional[BaseException],
                     state: _State) -> None:
    keys = [key for key, _ in delivered]
    assert len(keys) == len(set(keys)), f"delivered twice: {keys}"
    assert set(keys) <= set(range(case["items"]))
    if case["api"] in ("map", "submit"):
        assert keys == list(range(len(keys))), f"input order lost: {keys}"
    for key, value in delivered:
        if isinstance(value, BaseException):
            assert isinstance(value, EXPECTED_FAILURES), repr(value)
        else:
            assert value == key, (key, value)
    with state.lock:
        if not case["speculate"]:  # a backup copy runs the worker a second time
            assert all(count == 1 for count in state.returned.values()), f"ran to completion twice: {state.returned}"
    took_everything = case["exit"] in ("all", "after_with") or len(delivered) <= case["stop_after"]
    if took_everything and case["return_exceptions"] and not isinstance(raised, BaseException):
        assert sorted(keys) == list(range(case["items"])), f"not every fragment came back: {sorted(keys)}"


def _check_after(case: Dict[str, Any], golem: Golem, fake: FakeProvider, state: _State,
                 before: set, limit: float) -> None:
    assert golem.engaged == 0
    fake.assert_all_released()
    with state.lock:
        assert len(state.initialized) == len(set(state.initialized)), f"initializer twice: {state.initialized}"
    deadline = time.monotonic() + limit  # a hang guard: the pool's threads end on their own
    while True:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive() and t.name != "schedule"]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.005)
    assert not left, f"threads left running: {left}"
