"""Bad arguments and the requestor's own mistakes are raised where they are made, before
anything is sent, naming the problem: never retried, never blamed on a provider (issue 8
"Why" 4 and 6). The fake provider is enough: nothing here depends on where work runs.
"""

from __future__ import annotations

import pytest
import tenacity

from golem_tasks import BrokenPool, ConfigurationError, Golem
from golem_tasks.testing import FakeProvider

from .conftest import HANG, echo, fake_provider, sh


def golem(fake: FakeProvider, **options) -> Golem:
    options.setdefault("progress", False)
    return Golem(fake, **options)


# -- retry_wait ------------------------------------------------------------------------

@pytest.mark.parametrize("wait", [0, 0.0, 1.5, tenacity.wait_none(), tenacity.wait_fixed(0)])
def test_retry_wait_takes_seconds_or_a_tenacity_wait(wait):
    golem(fake_provider(), retry_wait=wait).shutdown()


@pytest.mark.parametrize("wait", ["soon", -1, True, object(), float("nan")])
def test_a_retry_wait_that_is_neither_is_refused_at_construction(wait):
    with pytest.raises(ConfigurationError, match="retry_wait"):
        golem(fake_provider(), retry_wait=wait)


def test_a_retry_after_retry_wait_zero_runs():
    fake = fake_provider()
    fake.fail_command(1)
    with golem(fake, max_workers=1, retry_wait=0) as g:
        assert list(g.map(echo, range(3), timeout=HANG)) == ["0", "1", "2"]
    fake.assert_all_released()


class Exploding(tenacity.wait.wait_base):
    """A wait strategy with a bug: the scheduler's thread runs it, and must survive it."""

    def __call__(self, retry_state):
        raise RuntimeError("the wait strategy exploded")


def test_a_crashed_slot_thread_breaks_the_pool_naming_the_error():
    fake = fake_provider()
    fake.fail_command(1)
    with golem(fake, max_workers=1, retry_wait=Exploding()) as g:
        with pytest.raises(BrokenPool, match="the wait strategy exploded"):
            list(g.map(echo, range(3)))
    fake.assert_all_released()


# -- counts ----------------------------------------------------------------------------

def test_a_per_call_max_workers_above_the_golems_is_refused_naming_both():
    with golem(fake_provider(), max_workers=2) as g:
        with pytest.raises(ConfigurationError, match=r"(?s)(56.*\b2\b|\b2\b.*56)"):
            g.for_each(echo, range(3), max_workers=56)
        with pytest.raises(ConfigurationError, match="max_workers"):
            g.map(echo, range(3), max_workers=3)


def test_booleans_are_refused_as_counts():
    fake = fake_provider()
    with pytest.raises(ConfigurationError, match="window"):
        golem(fake, window=True)
    with golem(fake, max_workers=2) as g:
        with pytest.raises(ConfigurationError, match="max_workers"):
            g.map(echo, range(3), max_workers=True)


def test_counts_that_are_not_whole_numbers_are_refused():
    fake = fake_provider()
    for bad in (0, -1, 1.5, "2"):
        with pytest.raises(ConfigurationError, match="max_workers"):
            golem(fake, max_workers=bad)
        with pytest.raises(ConfigurationError, match="window"):
            golem(fake, window=bad)


# -- mistakes in a batch ---------------------------------------------------------------

def run_once(fake: FakeProvider, worker):
    """Run ``worker`` with retries allowed; returns (what it raised, how often it ran)."""
    calls = []

    def counted(ctx, item):
        calls.append(item)
        return (yield from worker(ctx))

    with golem(fake, max_workers=1, max_retries=3, retry_wait=tenacity.wait_none()) as g:
        with pytest.raises(Exception) as caught:
            g.run(counted, 0, timeout=HANG)
    fake.assert_all_released()
    return caught.value, len(calls)


def test_sending_a_missing_local_file_fails_where_the_batch_is_built(tmp_path):
    missing = tmp_path / "no-such-input.txt"
    fake = fake_provider()

    def sends_missing(ctx):
        yield ctx.batch().send_file(missing, "/golem/input/in.txt").run("/bin/sh", "-c", "echo x")

    error, runs = run_once(fake, sends_missing)
    assert isinstance(error, FileNotFoundError) and str(missing) in str(error)
    assert runs == 1 and fake.batches == []  # raised at the call, nothing sent, not retried


@pytest.mark.parametrize("where", ["send", "download"])
def test_a_path_outside_the_providers_volumes_fails_where_the_batch_is_built(where):
    fake = FakeProvider(assert_all_used=False, strict=False, volumes=("/golem/input", "/golem/output"))

    def strays(ctx):
        batch = ctx.batch()
        if where == "send":
            batch.send_bytes(b"x", "/etc/stray")
        else:
            batch.download_bytes("/root/stray")
        yield batch

    error, runs = run_once(fake, strays)
    assert isinstance(error, ConfigurationError), repr(error)
    assert "/etc/stray" in str(error) or "/root/stray" in str(error)
    assert runs == 1 and fake.batches == []


@pytest.mark.parametrize("env", [{"A=B": "1"}, {"GOOD": "nul\x00byte"}], ids=["equals-in-name", "nul-in-value"])
def test_a_bad_environment_fails_where_the_batch_is_built(env):
    fake = fake_provider()

    def bad_env(ctx):
        yield ctx.run("/bin/sh", "-c", "echo x", env=env)

    error, runs = run_once(fake, bad_env)
    assert isinstance(error, ValueError), repr(error)
    assert next(iter(env)) in str(error)  # names the variable
    assert runs == 1 and fake.batches == []


def test_the_fake_reports_its_volumes():
    fake = FakeProvider(volumes=("/golem/input",))
    session = fake.engage()
    try:
        assert session.info.volumes == ("/golem/input",)
    finally:
        session.release()
        fake.close()


def test_a_worker_that_is_not_a_generator_function_is_refused_at_the_call():
    def plain(ctx, item):
        return sh(ctx, "echo x")

    with golem(fake_provider()) as g:
        with pytest.raises(TypeError):
            g.map(plain, [1])
