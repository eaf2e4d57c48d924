"""The mocked-daemon benchmark (benchmarks/bench_golem_mock.py) on a tiny workload, so
it keeps working: the Golem backend over real loopback HTTP to the fake daemon in its own
process gets every result right in two round trips per one-command fragment, and leaves
nothing behind on the daemon. Figures are the benchmark's business; nothing here is timed."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from .golem_helpers import FAST
from .http_daemon import MockDaemonProcess

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_golem_mock.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_golem_mock", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def daemon():
    with MockDaemonProcess(providers=3) as running:
        yield running


def test_backend_workload_on_the_mocked_daemon(bench, daemon):
    ours = bench.backend(daemon, 20, 3, timeouts=FAST)  # checks every fragment's result itself
    assert ours["steady_work_per_fragment"] <= 2 and ours["job_work_per_fragment"] <= 2
    # The warm-up holds each of its fragments until all 3 providers run one, so the timed
    # map finds every provider engaged and engages none again.
    assert ours["engaged"] == 3
    stats = daemon.stats()
    work = stats["batches"]["work"]
    assert work["batches"] == 23 and work["exec"] + work["results"] <= 2 * 23  # 3 warm-up fragments
    # Nothing left Pending or Approved: agreements that ran end Terminated; one still waiting
    # for the provider when its engagement was let go (pacing, issue 9) ends Cancelled.
    ended = stats["agreements"].values()
    assert "Terminated" in ended and set(ended) <= {"Terminated", "Cancelled"}
    assert set(stats["activities"].values()) == {"Terminated"}
    assert stats["allocations"] and stats["released"] == stats["allocations"]
    assert stats["subscriptions"] == []
    assert stats["invoices"] and sorted(stats["accepted"]) == sorted(stats["invoices"])


def test_the_bare_baseline_runs_on_the_mocked_daemon(bench, daemon):
    base = bench.bare(daemon, 20, 3)  # checks every command's output itself
    assert base["per_fragment"] == 2
    stats = daemon.stats()
    assert set(stats["agreements"].values()) == {"Terminated"}
    assert stats["released"] == stats["allocations"] and stats["subscriptions"] == []
