"""The documentation's Golem snippets that a local network can serve run against one
(the others, mainnet or filters naming real providers, are only compiled: tests/test_docs.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from golem_tasks.localnet import LocalNet
from golem_tasks.providers.outbound import DENIED

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SNIPPETS = ROOT / "docs" / "snippets"


@pytest.fixture(scope="module")
def net(exeunit_ready: str) -> Iterator[LocalNet]:
    with LocalNet(providers=2, binary=exeunit_ready) as network:
        yield network


def _run(snippet: str, env: dict) -> "subprocess.CompletedProcess[str]":
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, str(SNIPPETS / snippet)], capture_output=True, text=True,
                          timeout=300, env=env, check=False)


def test_the_golem_quickstart_runs_against_a_local_network(net: LocalNet) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YAGNA_", "GOLEM_TASKS_"))}
    done = _run("golem_quickstart.py", dict(env, **net.env))
    assert done.returncode == 0, done.stderr
    assert "hello from Linux" in done.stdout


def test_the_localnet_snippet_starts_its_own_network(exeunit_ready: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YAGNA_", "GOLEM_TASKS_"))}
    done = _run("golem_localnet.py", dict(env, YAGNA_BIN=exeunit_ready))
    assert done.returncode == 0, done.stderr


def test_the_straggler_snippet_gets_a_backup_that_wins_on_its_own_network(exeunit_ready: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YAGNA_", "GOLEM_TASKS_"))}
    done = _run("golem_localnet_straggler.py", dict(env, YAGNA_BIN=exeunit_ready))
    assert done.returncode == 0, done.stderr
    found = re.search(r"backups: (\d+) started, (\d+) won", done.stdout)
    assert found, done.stdout
    assert int(found[1]) >= int(found[2]) >= 1


def test_the_provider_record_snippet_keeps_its_file_and_prints_it(net: LocalNet, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YAGNA_", "GOLEM_TASKS_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, str(SNIPPETS / "golem_provider_record.py")], capture_output=True,
                          text=True, timeout=300, env=dict(env, **net.env), cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "providers.sqlite").exists() and (tmp_path / "hello.journal").exists()
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("0x")]
    assert rows and sum(int(row[2]) for row in rows) == 6  # done, over the providers that ran


def test_the_spend_guard_snippet_stops_within_the_budget(exeunit_ready: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YAGNA_", "GOLEM_TASKS_"))}
    done = _run("golem_spend_guard.py", dict(env, YAGNA_BIN=exeunit_ready))
    assert done.returncode == 0, done.stderr
    assert "spent 0.3" in done.stdout and "of 0.55 tGLM" in done.stdout  # live, as the bar shows it
    assert "budget of 0.55 tGLM is spent" in done.stdout and "budget=" in done.stdout


def test_the_gpu_snippet_runs_on_the_gpu_provider_and_sees_its_card(exeunit_ready: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YAGNA_", "GOLEM_TASKS_"))}
    done = _run("golem_gpu_localnet.py", dict(env, YAGNA_BIN=exeunit_ready))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["NVIDIA GeForce RTX 3090, 24 GiB, CUDA 12.2",
                                        "provider-1 (NVIDIA GeForce RTX 3090 24 GiB)"]


def test_the_volumes_snippet_sends_into_the_extra_volume_and_downloads_back(exeunit_ready: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YAGNA_", "GOLEM_TASKS_"))}
    done = _run("golem_volumes_localnet.py", dict(env, YAGNA_BIN=exeunit_ready))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["7000 bytes on the provider; downloaded back intact: True",
                                        "volumes: /golem/input, /golem/output, /golem/work, /golem/resource"]


def test_the_outbound_snippet_runs_on_the_whitelisting_provider_and_only_reaches_its_url(exeunit_ready: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YAGNA_", "GOLEM_TASKS_"))}
    done = _run("golem_outbound_localnet.py", dict(env, YAGNA_BIN=exeunit_ready))
    assert done.returncode == 0, done.stderr
    ran, ok, refused = done.stdout.splitlines()
    assert ran == "ran on provider-0"  # provider-1 whitelists nothing
    assert ok == "hello from the internet"
    assert refused.startswith(f"403 {DENIED}: 127.0.0.1:") and "outbound=" in refused
