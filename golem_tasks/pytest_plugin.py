"""The golem_tasks pytest plugin: a ``fake_provider`` fixture for testing workers.

pytest loads it by itself through the ``pytest11`` entry point once golem_tasks is
installed (disable it with ``-p no:golem_tasks``). Usage::

    from golem_tasks.testing import run_worker

    def test_render(fake_provider):
        fake_provider.on_run("python3 /golem/input/render.py", stdout="done")
        assert run_worker(render, "scene", provider=fake_provider) == "done"

    @pytest.mark.fake_provider(strict=False, latency=0.01)
    def test_slow_provider(fake_provider):
        ...

The ``fake_provider`` marker passes its keyword arguments to ``FakeProvider``. After
the test the provider is closed and, unless built with ``assert_all_used=False``,
every scripted rule must have been used (skipped when the test itself failed, so one
mistake gives one report).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generator, Iterator

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from .testing import FakeProvider

# Set on a test item whose call phase failed; read by the fixture's teardown.
_CALL_FAILED = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fake_provider(**kwargs): keyword arguments for the FakeProvider built by the "
        "fake_provider fixture (latency=, strict=, handler=, assert_all_used=, ...)",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        item.stash[_CALL_FAILED] = True


@pytest.fixture
def fake_provider(request: pytest.FixtureRequest) -> Iterator["FakeProvider"]:
    """A fresh :class:`golem_tasks.testing.FakeProvider`, closed after the test.

    Configure it with ``@pytest.mark.fake_provider(**kwargs)``.
    """
    # Imported here, not at module level: pytest loads this plugin in every test run
    # of an environment where golem_tasks is installed, used or not.
    from .testing import FakeProvider

    marker = request.node.get_closest_marker("fake_provider")
    fake = FakeProvider(**(marker.kwargs if marker else {}))
    yield fake
    fake.close()
    if fake.assert_all_used and not request.node.stash.get(_CALL_FAILED, False):
        fake.assert_all_rules_used()
