"""A LocalNet whose Python process is SIGKILLed leaves no yagna daemon behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from golem_tasks.localnet.daemon.parent_death import Spawner, die_with_parent

from .conftest import processes_using

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import sys, time
from golem_tasks.localnet import LocalNet
net = LocalNet(providers=0, workdir=sys.argv[1], binary=sys.argv[2]).start()
print(net.daemon.pid, net.daemon.settings.data_dir, flush=True)
time.sleep(600)
"""


def gone(pid: int) -> bool:
    """True once ``pid`` is no process, or only a zombie waiting for its new parent."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except FileNotFoundError:
        return True


def wait_until(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.skipif(die_with_parent() is None, reason="needs Linux prctl(PR_SET_PDEATHSIG)")
def test_a_sigkilled_localnet_takes_its_daemon_along(yagna_binary: str, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "net"), yagna_binary],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    daemon_pid = 0
    try:
        line = child.stdout.readline().decode().split() if child.stdout else []
        assert len(line) == 2, f"the child did not start its LocalNet (exit code {child.poll()})"
        daemon_pid, data_dir = int(line[0]), line[1]
        assert not gone(daemon_pid)
        child.kill()
        child.wait()
        # A deadline for correctness, not speed: the kernel signals at once.
        assert wait_until(lambda: gone(daemon_pid), 10), f"yagna {daemon_pid} outlived its LocalNet"
        assert wait_until(lambda: not processes_using(data_dir), 10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if daemon_pid and not gone(daemon_pid):  # the fix failed: do not leak it on top
            os.kill(daemon_pid, signal.SIGKILL)
        if child.stdout:
            child.stdout.close()


@pytest.mark.skipif(die_with_parent() is None, reason="needs Linux prctl(PR_SET_PDEATHSIG)")
def test_a_child_lives_as_long_as_the_spawner_not_the_calling_thread() -> None:
    """PR_SET_PDEATHSIG fires when the forking *thread* ends: a child forked straight
    from a thread that then exits is killed, one started through a Spawner is not."""
    spawner = Spawner("test")
    children = []

    def start_both() -> None:
        children.append(subprocess.Popen(["sleep", "30"], preexec_fn=die_with_parent()))
        children.append(spawner.popen(["sleep", "30"]))

    thread = threading.Thread(target=start_both)
    thread.start()
    thread.join()
    direct, spawned = children
    try:
        assert direct.wait(timeout=10) == -signal.SIGKILL  # the hazard the Spawner avoids
        assert spawned.poll() is None
    finally:
        for child in children:
            child.kill()
            child.wait()
        spawner.close()
