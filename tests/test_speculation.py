"""Backup copies of stragglers (issue 11 §1): speculate=True."""

from __future__ import annotations

import collections
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golem_tasks import BatchCancelled, ConfigurationError, Speculation, events

from golem_tasks._scheduler.pool import Pool
from golem_tasks.testing import FakeProvider, RunOutput

from .helpers import HANG_GUARD, echo, echo_provider, make_golem

QUICK = Speculation(min_finished=1, min_runtime=0.001)


def straggling(*indices: int) -> FakeProvider:
    """An echo fake whose first run of each of ``indices`` never ends by itself (until
    cancelled): only a backup copy can finish those fragments."""
    fake = FakeProvider(assert_all_used=False)
    for index in indices:
        fake.on_run(f"echo {index}", hang=True, times=1)
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda command, session: command.args[1])
    return fake


class Runs:
    """How many times each item's command has started, counted from any session's thread."""

    def __init__(self) -> None:
        self.counts: collections.Counter = collections.Counter()
        self._lock = threading.Lock()

    def count(self, item: str) -> int:
        """Count one more start of ``item``'s command; returns its number (1 for the first)."""
        with self._lock:
            self.counts[item] += 1
            return self.counts[item]


def test_a_straggler_gets_a_backup_on_another_provider_and_is_delivered_once():
    fake = straggling(0)
    seen = []
    with make_golem(fake, max_workers=3, speculate=QUICK, events=seen.append) as golem:
        results = list(golem.map(echo, range(6), timeout=60))  # the timeout only catches a hang
    assert [r[0] for r in results] == list(range(6))
    started = [e for e in seen if isinstance(e, events.BackupStarted)]
    finished = [e for e in seen if isinstance(e, events.FragmentFinished) and e.index == 0]
    # Only fragment 0 hangs; on a busy machine another one may also look slow for a moment
    # and get a backup of its own, which is fine as long as everything is delivered once.
    assert 0 in [e.index for e in started]
    assert sorted(e.index for e in seen if isinstance(e, events.FragmentFinished)) == list(range(6))
    assert len(finished) == 1 and finished[0].backup  # exactly once, by the backup
    hung = [b for b in fake.batches if b.commands[0].args == ("echo", "0") and b.error is not None]
    assert len(hung) == 1 and isinstance(hung[0].error, BatchCancelled)  # the slow copy was stopped
    assert hung[0].session_id != finished[0].provider_id
    job = next(e for e in seen if isinstance(e, events.JobFinished))
    assert job.backups == len(started) and 1 <= job.backups_won <= job.backups
    fake.assert_all_released()


def test_a_loser_that_ends_by_itself_keeps_the_fragment_it_takes_next():
    """The winner of a speculated fragment cancels the slots still running its other
    copy. A losing copy that ends by itself first frees its slot, which takes the next
    fragment: that one must not be cancelled in its place (it was, and its
    BatchCancelled reached the caller; found under stress by the property test below)."""
    x_started, copy_released, input_goes_on, z_started, q_started = (threading.Event() for _ in range(5))
    runs = Runs()

    def handler(command, session):
        item = command.args[1]
        nth = runs.count(item)
        if item == "0":  # W ends once X runs: two providers are engaged, one free for the backup
            assert x_started.wait(HANG_GUARD)
        elif item == "1" and nth == 1:  # the first copy of X ends by itself, after the other won
            x_started.set()
            assert copy_released.wait(HANG_GUARD)
        elif item == "2":  # Z, on the loser's slot, runs while the winner cancels what it cancels
            z_started.set()
            assert q_started.wait(HANG_GUARD)  # the winner has moved on to Q: its cancels are done
            if session.cancelled.is_set():
                raise BatchCancelled(f"killed {command}", provider=session.info.id)
        elif item == "3":
            q_started.set()
        return item

    def on_event(event):
        if isinstance(event, events.FragmentFinished) and event.index == 1:
            # The winning copy is delivered; the winner's slot waits here until the
            # loser's slot, free again, runs Z.
            copy_released.set()
            input_goes_on.set()
            assert z_started.wait(HANG_GUARD)

    def items():
        # (No backup provider is engaged while this blocks the caller: W holds a second one.)
        yield 0  # W: finishes first, so a threshold exists and X can get a backup
        yield 1  # X
        assert input_goes_on.wait(HANG_GUARD)
        yield 2  # Z
        yield 3  # Q

    fake = FakeProvider(handler=handler)
    with make_golem(fake, max_workers=2, speculate=QUICK, events=on_event) as golem:
        results = list(golem.map(echo, items(), timeout=HANG_GUARD))
    assert [r[0] for r in results] == [0, 1, 2, 3]
    assert runs.counts["1"] == 2
    fake.assert_all_released()


def test_when_both_copies_fail_the_fragment_is_still_decided(monkeypatch):
    """Two copies of a fragment fail one after the other. The first leaves the decision
    to the copy still running; that one, failing too, must not leave it to the first
    (which has not left the slot's books yet): the fragment is retried, not lost. The
    first copy's slot is held, by a wrapper, between its outcome and its leaving until
    the second outcome is settled; before the fix the job hung there."""
    second_started, first_settled, second_settled = (threading.Event() for _ in range(3))
    first_thread: list = []
    runs = Runs()

    def handler(command, session):
        item = command.args[1]
        nth = runs.count(item)
        if item == "1" and nth == 1:  # the first copy fails once the second runs
            assert second_started.wait(HANG_GUARD)
            return RunOutput(exit_code=1, stderr="first copy failed")
        if item == "1" and nth == 2:  # the second fails once the first's outcome is settled
            second_started.set()
            assert first_settled.wait(HANG_GUARD)
            return RunOutput(exit_code=1, stderr="second copy failed")
        return item

    real_settle, real_finished = Pool._settle, Pool._finished_running

    def settle(self, outcome, slot):
        verdict = real_settle(self, outcome, slot)
        if outcome.fragment.index == 1 and outcome.error is not None:
            if not first_thread:
                first_thread.append(threading.current_thread())
                first_settled.set()
            else:
                second_settled.set()
        return verdict

    def finished_running(self, slot, job, fragment):
        if fragment.index == 1 and first_thread == [threading.current_thread()] and not second_settled.is_set():
            assert second_settled.wait(HANG_GUARD)
        return real_finished(self, slot, job, fragment)

    monkeypatch.setattr(Pool, "_settle", settle)
    monkeypatch.setattr(Pool, "_finished_running", finished_running)
    fake = FakeProvider(handler=handler)
    with make_golem(fake, max_workers=2, speculate=QUICK) as golem:
        results = list(golem.map(echo, [0, 1], timeout=HANG_GUARD))  # the timeout only catches the hang
    assert [r[0] for r in results] == [0, 1]
    assert runs.counts["1"] == 3  # two failed copies, then the retry
    fake.assert_all_released()


def test_without_speculate_no_copy_starts():
    fake = echo_provider(latency=0.0)
    seen = []
    with make_golem(fake, max_workers=3, events=seen.append) as golem:
        assert [r[0] for r in golem.map(echo, range(10))] == list(range(10))
    assert not [e for e in seen if isinstance(e, events.BackupStarted)]
    assert len(fake.batches) == 10


def test_speculate_per_call_overrides_the_golem():
    fake = straggling(0)
    with make_golem(fake, max_workers=2) as golem:
        assert [r[0] for r in golem.map(echo, range(3), speculate=QUICK, timeout=60)] == [0, 1, 2]


@pytest.mark.parametrize("bad", ["yes", 1.5, Speculation, 0])
def test_a_bad_speculate_is_refused_before_anything_runs(bad):
    fake = echo_provider()
    with pytest.raises(ConfigurationError, match="speculate must be"):
        make_golem(fake, speculate=bad)
    assert fake.sessions == []


@pytest.mark.parametrize("field, value", [("multiplier", 0), ("quantile", 1.5), ("min_finished", 0),
                                          ("min_runtime", -1)])
def test_bad_speculation_settings_name_the_field(field, value):
    with pytest.raises(ConfigurationError, match=field):
        Speculation(**{field: value})


def test_the_threshold_is_a_multiple_of_a_quantile_once_enough_finished():
    rule = Speculation(multiplier=1.5, quantile=0.75, min_finished=4, min_runtime=0.01)
    assert rule.threshold([1.0, 1.0, 1.0]) is None  # too few to say
    assert rule.threshold([1.0, 2.0, 3.0, 4.0, 5.0]) == pytest.approx(1.5 * 4.0)
    assert rule.threshold([0.001] * 10) == 0.01  # never below min_runtime


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 12), workers=st.integers(2, 4), data=st.data())
def test_speculated_fragments_are_delivered_exactly_once_in_order(n, workers, data):
    # Fewer stragglers than providers and than fragments: some fragment finishes (the
    # threshold needs one) and one provider is free to run the backups. With every
    # provider stuck no backup can start (max_workers is a hard cap), as in Spark.
    stragglers = data.draw(st.sets(st.integers(0, n - 1), max_size=min(workers - 1, n - 1)))
    fake = straggling(*sorted(stragglers))
    seen = []
    with make_golem(fake, max_workers=workers, speculate=QUICK, events=seen.append) as golem:
        results = list(golem.map(echo, range(n), timeout=60))
    assert [r[0] for r in results] == list(range(n))
    finished = [e.index for e in seen if isinstance(e, events.FragmentFinished)]
    assert sorted(finished) == list(range(n))  # each delivered exactly once
    fake.assert_all_released()


def test_a_retry_whose_failed_first_copy_is_still_winding_down_is_decided(monkeypatch):
    # A speculative fragment fails on fake-1 and is put back; before fake-1's slot has
    # taken its failed copy off the books, fake-2 runs the retry and fails too. That
    # failure must be decided (retried again), not left to a copy that is over: the
    # fragment would then be neither queued nor running, and the job would hang.
    fake = FakeProvider(assert_all_used=False)
    fake.on_run("fail", exit_code=3)
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda command, session: command.args[1])
    one_done = threading.Event()
    attempts: list = []

    def flaky(ctx, item):
        if item == 1:
            return (yield from echo(ctx, item))
        attempts.append(ctx.provider_id)
        if len(attempts) == 1:
            assert one_done.wait(HANG_GUARD)  # fake-2 is free for the retry
        if len(attempts) <= 2:
            yield ctx.run("fail")  # raises CommandExecutionError: retried
        return (yield from echo(ctx, item))

    def watch(event):
        if isinstance(event, events.FragmentFinished) and event.index == 1:
            one_done.set()

    with make_golem(fake, max_workers=2, max_retries=3, speculate=True, events=watch) as golem:
        pool = golem._pool
        finished_running = pool._finished_running
        calls: list = []
        second_settled = threading.Event()

        def winding_down(slot, job, fragment):
            # fake-1's slot is held here, its failed copy still on the books, until
            # the retry's copy has been settled on fake-2.
            if fragment.index == 0:
                calls.append(slot)
                if len(calls) == 1:
                    assert second_settled.wait(HANG_GUARD), "the retry never ran elsewhere"
                elif len(calls) == 2:
                    second_settled.set()
            finished_running(slot, job, fragment)

        monkeypatch.setattr(pool, "_finished_running", winding_down)
        results = [r[0] for r in golem.map(flaky, range(2), timeout=HANG_GUARD)]
    assert results == [0, 1]
    assert len(attempts) == 3 and attempts[0] != attempts[1]
