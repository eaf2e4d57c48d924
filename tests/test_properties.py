"""Property tests of the scheduler's promises, with faults injected by the fake:
every fragment delivered exactly once or reported failed, order kept, the
initializer once per provider, never more than max_workers engaged, nothing leaked."""

from __future__ import annotations

import collections
import threading

from hypothesis import given
from hypothesis import strategies as st

from golem_tasks import BrokenPool, CommandExecutionError, FragmentFailed, ProviderLost, events

from .helpers import echo_provider, make_golem

faults = st.fixed_dictionaries({
    "items": st.integers(min_value=0, max_value=30),
    "max_workers": st.integers(min_value=1, max_value=4),
    "max_retries": st.integers(min_value=0, max_value=3),
    "failing_commands": st.sets(st.integers(min_value=1, max_value=60), max_size=8),
    "lost": st.dictionaries(st.integers(min_value=1, max_value=8), st.integers(min_value=0, max_value=6),
                            max_size=3),
    "initializer": st.booleans(),
})


class Watch:
    """An event consumer that checks the engagement bound while the job runs."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.engaged = 0
        self.peak = 0
        self.engaged_ids = []
        self.released_ids = []

    def __call__(self, event: events.Event) -> None:
        with self.lock:
            if isinstance(event, events.ProviderEngaged):
                self.engaged += 1
                self.peak = max(self.peak, self.engaged)
                self.engaged_ids.append(event.provider_id)
            elif isinstance(event, events.ProviderReleased):
                self.engaged -= 1
                self.released_ids.append(event.provider_id)


def build(case):
    fake = echo_provider()
    for n in case["failing_commands"]:
        fake.fail_command(n, CommandExecutionError)
    for number, after in case["lost"].items():
        fake.lose_provider(number, after_commands=after)
    return fake


def init(ctx):
    yield ctx.run("echo", "init")


def worker(ctx, item):
    results = yield ctx.run("echo", str(item))
    return int(results[0].stdout)


def golem_for(case, fake, watch):
    return make_golem(fake, max_workers=case["max_workers"], max_retries=case["max_retries"],
                      initializer=init if case["initializer"] else None, events=watch)


def check_common(case, fake, watch):
    assert watch.peak <= case["max_workers"]
    assert sorted(watch.engaged_ids) == sorted(watch.released_ids)  # every engaged one released
    fake.assert_all_released()
    if case["initializer"]:
        inits = collections.Counter(c.session_id for c in fake.calls if c.command.describe() == "run echo init")
        assert all(count == 1 for count in inits.values())
        worked = {c.session_id for c in fake.calls if c.command.describe() != "run echo init"}
        assert worked <= set(inits)


@given(faults)
def test_map_delivers_each_fragment_once_in_order_or_reports_it(case):
    fake, watch = build(case), Watch()
    with golem_for(case, fake, watch) as golem:
        results = list(golem.map(worker, range(case["items"]), return_exceptions=True))
    assert len(results) == case["items"]
    for index, result in enumerate(results):
        if isinstance(result, BrokenPool):
            # the initializer failed on every provider tried: reported, with the cause
            assert case["initializer"] and result.__cause__ is not None
        elif isinstance(result, BaseException):
            assert isinstance(result, FragmentFailed)
            assert result.index == index
            assert 1 <= len(result.attempts) <= case["max_retries"] + 1
            assert all(isinstance(a, (CommandExecutionError, ProviderLost)) for a in result.attempts)
        else:
            assert result == index
    check_common(case, fake, watch)


@given(faults)
def test_as_completed_never_delivers_twice(case):
    fake, watch = build(case), Watch()
    with golem_for(case, fake, watch) as golem:
        seen = [r.index for r in golem.as_completed(worker, range(case["items"]), return_exceptions=True)]
    assert sorted(seen) == list(range(case["items"]))
    check_common(case, fake, watch)


@given(faults, st.sets(st.integers(min_value=0, max_value=30)))
def test_execute_tasks_settles_every_task_once(case, rejected):
    fake, watch = build(case), Watch()
    settled = collections.Counter()

    def task_worker(ctx, tasks):
        for task in tasks:
            results = yield ctx.run("echo", str(task.data))
            if task.data in rejected:
                task.reject_result("unwanted", retry=False)
            else:
                task.accept_result(int(results[0].stdout))
            settled[task.data] += 1

    with golem_for(case, fake, watch) as golem:
        done = list(golem.execute_tasks(task_worker, range(case["items"]), return_exceptions=True))
    assert sorted(t.data for t in done) == list(range(case["items"]))
    for task in done:
        if task.exception is None:
            assert task.result == task.data and task.data not in rejected
    assert all(count == 1 for count in settled.values())
    check_common(case, fake, watch)
