"""Fixtures every test gets: no leaked threads, no stray environment, bounded hypothesis."""

from __future__ import annotations

import os
import signal
from typing import Iterator

import pytest
from hypothesis import HealthCheck, settings

from .helpers import threads_left_check
from .yagna.yagna_contract import configured_specs, skip_reason

# CI runs on 2 cores: a bounded example count keeps the property tests within minutes.
settings.register_profile("ci", max_examples=100, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# The Ctrl-C tests send SIGINT to this process and to child interpreters. A background job
# of a non-interactive shell (nohup, `cmd &` in a CI script) starts with SIGINT ignored, and
# Python then keeps it ignored: those tests would wait for an interrupt that never comes.
# A Python-level handler here also makes every child start with the default action again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


REQUIRE_SPECS_ENV = "GOLEM_TASKS_REQUIRE_YAGNA_SPECS"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--require-yagna-specs", action="store_true",
                     help="fail (instead of skipping the contract checks) when the yagna OpenAPI specs are "
                          f"missing; {REQUIRE_SPECS_ENV}=1 does the same (.ci/run sets it)")


def pytest_configure(config: pytest.Config) -> None:
    # Read GOLEM_TASKS_YAGNA_SPECS now, once, before _clean_environment removes it from
    # every test: the contract layer must not depend on which test asks first.
    configured_specs()
    required = config.getoption("--require-yagna-specs") or os.environ.get(REQUIRE_SPECS_ENV) == "1"
    reason = skip_reason()
    if required and reason is not None:
        raise pytest.UsageError(f"the yagna contract tests cannot run: {reason}")


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
def no_leaked_threads() -> Iterator[None]:
    """Fail any test that leaves a thread running (CPython's executor tests do the same)."""
    yield from threads_left_check()
