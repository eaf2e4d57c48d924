"""The per-provider initializer: once per engaged provider, failures replaced."""

from __future__ import annotations

import collections

import pytest

from golem_tasks import BrokenPool, CommandExecutionError, WorkerError, events
from golem_tasks.testing import FakeProvider

from .helpers import echo, echo_provider, make_golem


def upload_shared(ctx):
    yield ctx.batch().send_bytes(b"shared", "/golem/input/shared.bin")


def test_initializer_runs_exactly_once_per_provider_before_its_first_fragment():
    fake = echo_provider()
    with make_golem(fake, max_workers=3, initializer=upload_shared) as golem:
        list(golem.map(echo, range(30)))
    per_session = collections.defaultdict(list)
    for call in fake.calls:
        per_session[call.session_id].append(call.command.describe())
    for commands in per_session.values():
        assert commands[0].startswith("send 6 bytes")
        assert sum(c.startswith("send") for c in commands) == 1


def test_before_each_sets_the_initializer_like_golem_js():
    fake = echo_provider()
    with make_golem(fake, max_workers=2) as golem:
        @golem.before_each
        def init(ctx):
            yield ctx.run("echo", "init")
        list(golem.map(echo, range(5)))
    # Every provider that ran work was initialised first, once. (A provider whose
    # engagement finished after the queue drained is let go before its initializer:
    # engagement follows demand.)
    by_session = {}
    for call in fake.calls:
        by_session.setdefault(call.session_id, []).append(" ".join(call.command.args))
    worked = {sid: lines for sid, lines in by_session.items() if any(line != "echo init" for line in lines)}
    assert worked and all(lines[0] == "echo init" and lines.count("echo init") == 1 for lines in worked.values())


def test_a_failing_initializer_replaces_the_provider_without_charging_a_fragment():
    fake = echo_provider()
    fake.fail_command(1, CommandExecutionError)  # the first initializer's command
    seen = []
    with make_golem(fake, max_workers=1, initializer=upload_shared, events=seen.append) as golem:
        results = list(golem.map(echo, range(3)))
    assert [r[0] for r in results] == [0, 1, 2]
    assert [e.provider_id for e in seen if isinstance(e, events.InitializerFailed)] == ["fake-1"]
    assert not any(isinstance(e, events.FragmentRetried) for e in seen)
    assert all(r[2] == "fake-2" for r in results)


def test_an_initializer_that_always_fails_breaks_the_pool_with_a_clear_error():
    fake = FakeProvider(assert_all_used=False)
    fake.on_run("setup", exit_code=1, stderr="no disk")

    def init(ctx):
        yield ctx.run("setup")

    with make_golem(fake, max_workers=2, initializer=init, max_retries=2) as golem:
        # 3 failures in a row break it; the other slot's setup may fail once more before it sees that
        with pytest.raises(BrokenPool, match=r"initializer failed on [34] provider"):
            list(golem.map(echo, range(4)))
    assert 3 <= len(fake.sessions) <= 4
    assert fake.assert_all_released() is None


def test_an_initializer_bug_breaks_the_pool_at_once():
    fake = echo_provider()

    def init(ctx):
        yield ctx.run("echo", "x")
        raise NameError("typo in init")

    with make_golem(fake, max_workers=2, initializer=init) as golem:
        with pytest.raises(BrokenPool, match="its own code") as info:
            golem.run(echo, 1)
    assert isinstance(info.value.__cause__, NameError)
    assert len(fake.sessions) == 1


def test_initializer_must_be_a_generator_function():
    def init(ctx):
        return None

    with pytest.raises(WorkerError, match="initializer"):
        make_golem(echo_provider(), initializer=init)
