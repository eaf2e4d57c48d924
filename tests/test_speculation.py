"""Backup copies of stragglers (issue 11 §1): speculate=True."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golem_tasks import BatchCancelled, ConfigurationError, Speculation, events

from golem_tasks.testing import FakeProvider

from .helpers import echo, echo_provider, make_golem

QUICK = Speculation(min_finished=1, min_runtime=0.001)


def straggling(*indices: int) -> FakeProvider:
    """An echo fake whose first run of each of ``indices`` never ends by itself (until
    cancelled): only a backup copy can finish those fragments."""
    fake = FakeProvider(assert_all_used=False)
    for index in indices:
        fake.on_run(f"echo {index}", hang=True, times=1)
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda command, session: command.args[1])
    return fake


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
