"""The scheduler on the real local provider: timeouts, break and Ctrl-C kill real
processes and remove the sandboxes. (How fast: benchmarks/bench_latency.py.)"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from golem_tasks import BatchTimeoutError, FragmentFailed, Golem, LocalProvider

from .helpers import NO_WAIT
from .test_local_provider import marker_pids, unique_sleep, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(params=["host", "bwrap"])
def provider(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "bwrap":
        from golem_tasks.providers._sandbox import choose
        try:
            choose("bwrap", False)
        except Exception as exc:  # noqa: BLE001
            pytest.skip(f"bwrap sandbox unavailable: {exc}")
    with LocalProvider(tmp_path / "root", sandbox=request.param) as provider:
        yield provider


def sleeper(marker):
    def worker(ctx, item):
        yield ctx.run("sleep", marker)
    return worker


def sandboxes(provider: LocalProvider) -> list:
    return [p for p in provider.root.iterdir()] if provider.root.exists() else []


def test_batch_timeout_kills_the_program_and_reports_every_attempt(provider):
    marker = unique_sleep()
    with Golem(provider, max_workers=2, batch_timeout=0.3, max_retries=1, retry_wait=NO_WAIT,
               progress=False) as golem:
        with pytest.raises(FragmentFailed) as info:
            golem.run(sleeper(marker), 0)
    assert [type(a) for a in info.value.attempts] == [BatchTimeoutError, BatchTimeoutError]
    assert wait_for(lambda: not marker_pids(marker), 30)
    assert sandboxes(provider) == []


def test_break_kills_running_programs_and_releases_them(provider):
    marker = unique_sleep()

    def quick_then_sleepy(ctx, item):
        yield ctx.run("true") if item == 0 else ctx.run("sleep", marker)

    with Golem(provider, max_workers=3, progress=False) as golem:
        for done in golem.as_completed(quick_then_sleepy, range(6)):
            assert done.item == 0
            assert wait_for(lambda: len(marker_pids(marker)) >= 2, 30)
            break
        # The break returns only once the programs are killed and the providers released.
        assert golem.engaged == 0
        assert not marker_pids(marker)
        assert sandboxes(provider) == []


def test_ctrl_c_kills_running_programs_and_releases_them(provider):
    marker = unique_sleep()

    def interrupt_when_running():
        if wait_for(lambda: len(marker_pids(marker)) >= 2, 30):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        with Golem(provider, max_workers=2, progress=False) as golem:
            threading.Thread(target=interrupt_when_running).start()
            list(golem.map(sleeper(marker), range(4)))
    assert not marker_pids(marker)
    assert sandboxes(provider) == []
