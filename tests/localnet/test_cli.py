"""``python -m golem_tasks.localnet up / env / down`` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from golem_tasks.localnet.cli import _alive

from .conftest import assert_no_daemon_left

pytestmark = pytest.mark.slow


def _cli(*args: str, state: Path) -> "subprocess.CompletedProcess[str]":
    command = [sys.executable, "-m", "golem_tasks.localnet", "--state-file", str(state), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_up_env_down(exeunit_ready: str, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    env = dict(os.environ, YAGNA_BIN=exeunit_ready)
    command = [
        sys.executable,
        "-m",
        "golem_tasks.localnet",
        "--state-file",
        str(state),
        "up",
        "--providers",
        "1",
    ]
    up = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert up.stdout is not None
        exports = dict(
            up.stdout.readline().strip()[len("export ") :].split("=", 1) for _ in range(3)
        )
        # How fast it comes up (the < 10 s promise): benchmarks/bench_latency.py.
        assert set(exports) == {"YAGNA_API_URL", "YAGNA_APPKEY", "GOLEM_TASKS_REGISTRY_URL"}
        assert exports["YAGNA_API_URL"].startswith("http://127.0.0.1:")
        with requests.Session() as http:
            http.trust_env = False
            me = http.get(
                exports["YAGNA_API_URL"] + "/me",
                headers={"Authorization": f"Bearer {exports['YAGNA_APPKEY']}"},
                timeout=10,
            )
            image = http.get(
                exports["GOLEM_TASKS_REGISTRY_URL"] + "/v1/image/info",
                params={"tag": "golem/alpine:latest"},
                timeout=10,
            )
        assert me.status_code == 200
        assert image.status_code == 200 and len(image.json()["sha3"]) == 56

        printed = _cli("env", state=state)
        assert (
            printed.returncode == 0
            and f"export YAGNA_APPKEY={exports['YAGNA_APPKEY']}" in printed.stdout
        )
        data_dir = os.path.join(json.loads(state.read_text())["workdir"], "data")

        stopped = _cli("down", state=state)
        assert stopped.returncode == 0, stopped.stderr
        assert up.wait(10) == 0
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        if up.stdout is not None:
            up.stdout.close()
        if up.stderr is not None:
            up.stderr.close()
    assert not state.exists()
    assert_no_daemon_left(data_dir)
    assert _cli("env", state=state).returncode != 0


def test_up_detach_returns_with_the_exports_and_down_stops_it(exeunit_ready: str, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    env = dict(os.environ, YAGNA_BIN=exeunit_ready)
    command = [sys.executable, "-m", "golem_tasks.cli", "localnet", "--state-file", str(state),
               "up", "--providers", "1", "--detach"]
    up = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env, check=False)
    try:
        assert up.returncode == 0, up.stderr
        exports = dict(line[len("export "):].split("=", 1) for line in up.stdout.splitlines())
        assert set(exports) == {"YAGNA_API_URL", "YAGNA_APPKEY", "GOLEM_TASKS_REGISTRY_URL"}
        assert "down" in up.stderr and str(state) + ".log" in up.stderr
        pid = json.loads(state.read_text())["pid"]
        data_dir = os.path.join(json.loads(state.read_text())["workdir"], "data")
        printed = _cli("env", state=state)
        assert printed.stdout == up.stdout
        again = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=False)
        assert again.returncode == 1 and "already running" in again.stderr
    finally:
        stopped = _cli("down", state=state)
    assert stopped.returncode == 0, stopped.stderr
    assert not state.exists()
    assert not _alive(pid)  # gone, or a zombie where nothing reaps orphans (pid 1 in a container)
    assert_no_daemon_left(data_dir)
