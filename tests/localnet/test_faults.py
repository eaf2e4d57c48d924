"""The test knobs of local providers (``Faults``), without a daemon (fast: not marked slow)."""

from __future__ import annotations

import threading
from typing import Any, List

import pytest

from golem_tasks.localnet import Faults, LocalNet
from golem_tasks.localnet.exeunit.batch import Batch
from golem_tasks.localnet.exeunit.runtime import Runtime
from golem_tasks.providers.local import LocalProvider


def runtime(tmp_path, faults: Faults) -> Runtime:
    states: List[Any] = []
    sandbox = LocalProvider(tmp_path / "sandbox", sandbox="host")
    return Runtime(sandbox, transfers=None, on_state=states.append, faults=faults)  # type: ignore[arg-type]


def run_script(*argv: str) -> Batch:
    capture = {"stdout": {"atEnd": {}}, "stderr": {"atEnd": {}}}
    return Batch("b", [{"deploy": {}}, {"start": {}},
                       {"run": {"entry_point": argv[0], "args": list(argv[1:]), "capture": capture}}])


@pytest.mark.parametrize("bad", [0.5, 0, True, "20"])
def test_a_slowdown_below_one_is_refused(bad):
    with pytest.raises(ValueError, match="slowdown"):
        Faults(slowdown=bad)


def test_faults_must_name_existing_providers():
    with pytest.raises(ValueError, match="faults name providers"):
        LocalNet(providers=2, faults={2: Faults(slowdown=20)})


def test_the_extra_wait_is_the_slowdown_less_one_times_the_real_duration():
    assert Faults(slowdown=20).extra_wait(0.5) == pytest.approx(9.5)
    assert Faults().extra_wait(3.0) == 0.0


def test_a_failing_provider_fails_every_run_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    rt = runtime(tmp_path, Faults(fail_runs="disk full"))
    batch = run_script("/bin/touch", str(marker))
    try:
        rt.run_batch(batch)
    finally:
        rt.stop()
    last = batch.results()[-1]
    assert last["result"] == "Error" and last["stderr"] == "disk full"
    assert "exited with code 1" in last["message"] and not marker.exists()


def test_stopping_the_activity_ends_a_slowed_command_at_once(tmp_path):
    rt = runtime(tmp_path, Faults(slowdown=1e6))  # without the stop it would wait for days
    batch = run_script("/bin/echo", "hi")
    done, slowed = threading.Event(), threading.Event()
    wait = rt._stopped.wait

    def slowing(timeout=None):  # the knob's wait, seen from outside
        slowed.set()
        return wait(timeout)

    rt._stopped.wait = slowing  # type: ignore[method-assign]
    running = threading.Thread(target=lambda: (rt.run_batch(batch), done.set()))
    running.start()
    assert slowed.wait(60)  # the program ended; its result is held back
    rt.stop()
    assert done.wait(60), "the slowed command outlived the stop"  # 60 s: only a hang guard
    running.join()
    assert batch.results()[-1]["stdout"] == "hi\n"
