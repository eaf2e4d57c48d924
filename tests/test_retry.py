"""Retries: elsewhere when possible, bounded, with backoff; failing providers dropped."""

from __future__ import annotations

import pytest
import tenacity

from golem_tasks import FragmentFailed, ProviderLost, events
from golem_tasks.testing import FakeProvider

from .helpers import echo, echo_provider, make_golem


def test_a_failed_fragment_is_retried_on_another_provider():
    fake = FakeProvider(assert_all_used=False)
    fake.on_run("echo 0", exit_code=1, times=1)
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda c, s: c.args[1])
    with make_golem(fake, max_workers=2) as golem:
        (item, out, provider), = golem.map(echo, [0])
    first = [b for b in fake.batches if b.error is not None][0]
    assert out == "0"
    assert provider != first.session_id


def test_retries_are_bounded_and_every_cause_is_reported():
    fake = FakeProvider(assert_all_used=False)
    fake.on_run("echo 0", exit_code=3, stderr="always")
    with make_golem(fake, max_workers=2, max_retries=2, provider_failure_limit=0) as golem:
        with pytest.raises(FragmentFailed) as info:
            golem.run(echo, 0)
    assert len(info.value.attempts) == 3
    assert fake.runs.count("echo 0") == 3
    assert "attempt 3" in str(info.value)


def test_backoff_waits_come_from_the_policy():
    recorded = []
    fake = FakeProvider(assert_all_used=False)
    fake.on_run("echo 0", exit_code=1, times=2)
    fake.on_run("echo 0", stdout="0")
    collector = recorded.append
    with make_golem(fake, max_workers=1, retry_wait=tenacity.wait_fixed(0.05), events=collector) as golem:
        golem.run(echo, 0)
    retried = [e for e in recorded if isinstance(e, events.FragmentRetried)]
    assert [e.delay for e in retried] == [0.05, 0.05]
    assert [e.attempt for e in retried] == [1, 2]


def test_a_lost_provider_is_released_cooled_down_and_its_work_retried():
    # issue 9: one lost exe-unit puts its provider on a cool-down, not a run-long ban
    fake = echo_provider()
    fake.lose_provider("fake-1", after_commands=2)
    seen = []
    with make_golem(fake, max_workers=1, events=seen.append) as golem:
        results = list(golem.map(echo, range(6)))
    assert [r[0] for r in results] == list(range(6))
    released = [e for e in seen if isinstance(e, events.ProviderReleased) and e.provider_id == "fake-1"]
    assert released and not released[0].excluded
    assert "lost" in released[0].reason
    assert all(r[2] != "fake-1" for r in results[2:])


def test_a_provider_that_keeps_failing_is_not_engaged_again():
    fake = FakeProvider(assert_all_used=False)

    def answer(command, session):
        if session.id == "fake-1":
            return __import__("golem_tasks.testing", fromlist=["RunOutput"]).RunOutput(exit_code=9)
        return command.args[1]

    fake.on_run(lambda line: True, handler=answer)
    seen = []
    with make_golem(fake, max_workers=1, provider_failure_limit=2, max_retries=5, events=seen.append) as golem:
        results = list(golem.map(echo, range(4)))
    assert [r[0] for r in results] == list(range(4))
    excluded = [e.provider_id for e in seen if isinstance(e, events.ProviderReleased) and e.excluded]
    assert excluded == ["fake-1"]
    assert all(b.session_id != "fake-1" for b in fake.batches[2:])


def test_provider_lost_in_the_middle_of_a_hang_is_retried_elsewhere():
    fake = FakeProvider(assert_all_used=False)
    fake.on_run("echo 0", hang=True, times=1)
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda c, s: c.args[1])
    with make_golem(fake, max_workers=2) as golem:
        future = golem.submit(echo, 0)
        assert fake.wait_for_commands(1)
        fake.lose_provider("fake-1")
        assert future.result(timeout=10)[1] == "0"
    assert isinstance(fake.batches[0].error, ProviderLost)
