"""Fixtures every test gets: no leaked threads, no stray environment, bounded hypothesis."""

from __future__ import annotations

import os
import threading
import time

import pytest
from hypothesis import HealthCheck, settings

# CI runs on 2 cores: a bounded example count keeps the property tests within minutes.
settings.register_profile("ci", max_examples=100, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's environment must not leak into results (requests' proxy fixture)."""
    for name in list(os.environ):
        if name.startswith("YAGNA_") or name.startswith("GOLEM_TASKS_"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _own_cache_directory(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The Golem provider keeps its provider record in the cache directory: each test
    gets its own, so tests never write to the user's and never see each other's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(autouse=True)
def no_leaked_threads() -> object:
    """Fail any test that leaves a thread running (CPython's executor tests do the same)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert not leaked, f"threads left running: {leaked}"
