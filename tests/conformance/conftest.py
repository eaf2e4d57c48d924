"""One set of behaviour tests, many providers (CPython's test_concurrent_futures runs
one ``ExecutorMixin`` suite against every executor the same way).

The ``backend`` fixture gives each test a fresh provider of one kind: the fake, the
local provider in the host sandbox and in bwrap (skipped where bwrap cannot run), and,
for the tests that take ``any_backend``, the Golem provider on a local network (slow).
Every worker speaks ``/bin/sh -c LINE`` with three lines, so the same test runs
everywhere: ``echo X``, ``exit N`` and ``sleep <marker>`` (runs until killed).
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest

from golem_tasks import Golem, LocalProvider, Provider
from golem_tasks.testing import FakeProvider, RunOutput

from ..helpers import NO_WAIT, threads_left_check
from ..test_local_provider import marker_pids, wait_for

#: A generous limit that only catches hangs; nothing here measures speed.
HANG = 60.0
#: Images are not booted on local Golem providers; hash and URL only have to be well formed.
IMAGE = dict(image_hash="a" * 56, image_url="http://127.0.0.1:9/image.gvmi")


class Backend:
    """A provider of one kind for one test, and how to check it was left clean."""

    def __init__(self, name: str, provider: Provider, *, root: Optional[Path] = None,
                 fake: Optional[FakeProvider] = None) -> None:
        self.name = name
        self.provider = provider
        self.fake = fake
        self.root = root
        # A sleep length nobody else uses: it marks this test's programs in /proc.
        self.marker = f"600.{random.randrange(10**8):08d}"

    def golem(self, **options: Any) -> Golem:
        options.setdefault("max_workers", 2)
        options.setdefault("retry_wait", NO_WAIT)
        options.setdefault("progress", False)
        return Golem(self.provider, **options)

    @property
    def sleep_line(self) -> str:
        return f"sleep {self.marker}"

    def sleeping(self) -> int:
        """How many of this test's ``sleep`` programs are running now."""
        if self.fake is not None:
            return sum(1 for s in self.fake.sessions if s.in_command and not s.released)
        return len(marker_pids(self.marker))

    def wait_sleeping(self, count: int) -> bool:
        return wait_for(lambda: self.sleeping() >= count, HANG)

    def wait_released(self) -> bool:
        """Wait until every provider engaged in this test was released (after
        ``shutdown(wait=False)``); True when so."""
        if self.fake is not None:
            return self.fake.wait_for_released(HANG)
        return wait_for(self._clean, HANG)

    def _clean(self) -> bool:
        if self.root is not None and self.root.exists() and any(self.root.iterdir()):
            return False
        return not marker_pids(self.marker)

    def assert_released(self) -> None:
        """Every engaged provider was released and none of the test's programs runs."""
        if self.fake is not None:
            self.fake.assert_all_released()
            return
        assert not marker_pids(self.marker), f"programs left running on {self.name}"
        if self.root is not None and self.root.exists():
            assert list(self.root.iterdir()) == [], f"sandboxes left behind on {self.name}"

    def close(self) -> None:
        self.provider.close()


def fake_provider() -> FakeProvider:
    """A fake that plays the three shell lines every conformance worker uses."""
    fake = FakeProvider(assert_all_used=False)
    fake.on_run(re.compile(r"/bin/sh -c sleep .*"), hang=True)
    fake.on_run(re.compile(r"/bin/sh -c exit \d+"),
                handler=lambda command, session: RunOutput(exit_code=int(command.args[2].split()[1])))
    fake.on_run(re.compile(r"/bin/sh -c echo .*"), handler=lambda command, session: command.args[2][5:] + "\n")
    return fake


def _bwrap_or_skip() -> None:
    from golem_tasks.providers._sandbox import choose
    try:
        choose("bwrap", False)
    except Exception as exc:  # noqa: BLE001 - any reason bwrap cannot run here
        pytest.skip(f"bwrap sandbox unavailable: {exc}")


def _make(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if name == "fake":
        fake = fake_provider()
        return Backend(name, fake, fake=fake)
    if name in ("host", "bwrap"):
        if name == "bwrap":
            _bwrap_or_skip()
        root = tmp_path / "root"
        return Backend(name, LocalProvider(root, sandbox=name), root=root)
    assert name == "golem"
    net = request.getfixturevalue("conformance_net")
    from golem_tasks.providers.yagna import GolemProvider
    monkeypatch = request.getfixturevalue("monkeypatch")
    for key, value in net.env.items():
        monkeypatch.setenv(key, value)
    return Backend(name, GolemProvider.from_env(budget="5", **IMAGE))


@pytest.fixture(autouse=True)
def no_leaked_threads(request: pytest.FixtureRequest) -> Iterator[None]:
    """The suite's leak check, but with the shared local network (and its threads)
    started first, so they do not count as left behind by the first test that uses it."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("any_backend") == "golem":
        request.getfixturevalue("conformance_net")
    yield from threads_left_check()


LOCAL = ["fake", "host", pytest.param("bwrap", marks=pytest.mark.slow)]


@pytest.fixture(params=LOCAL)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The fake and the local provider in both sandboxes."""
    made = _make(request.param, request, tmp_path)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(params=LOCAL + [pytest.param("golem", marks=pytest.mark.slow)])
def any_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """``backend`` and the Golem provider on a local network (the marked, slow subset)."""
    made = _make(request.param, request, tmp_path)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(scope="package")
def conformance_net() -> Iterator[Any]:
    """A local Golem network with two providers, shared by the conformance tests.

    Package-scoped, not session-scoped: its provider agents poll their daemon from
    threads of this process, and must be gone before the HTTP-mocking tests run.
    """
    from golem_tasks.localnet import LocalNet, find_yagna
    from golem_tasks.localnet.errors import DaemonNotInstalled
    try:
        find_yagna()
    except DaemonNotInstalled as exc:
        pytest.skip(f"golem-node is not installed ({exc}); pip install 'golem_tasks[localnet]'")
    pytest.importorskip("flatbuffers", reason="local exe-units need flatbuffers: pip install 'golem_tasks[localnet]'")
    with LocalNet(providers=2) as net:
        yield net


def sh(ctx: Any, line: str) -> Any:
    return ctx.run("/bin/sh", "-c", line)


def echo(ctx: Any, item: Any) -> Any:
    """``echo ITEM`` on the provider; returns what it printed."""
    results = yield sh(ctx, f"echo {item}")
    return results[0].stdout.strip()


def sleeper(backend: Backend) -> Callable[..., Any]:
    """A worker whose command runs until it is killed (a timeout, a cancel, a break)."""
    def sleep(ctx: Any, item: Any) -> Any:
        yield sh(ctx, backend.sleep_line)
    return sleep


def quick_then_sleep(backend: Backend) -> Callable[..., Any]:
    """Item 0 answers at once; every other item sleeps until killed."""
    def worker(ctx: Any, item: Any) -> Any:
        results = yield sh(ctx, "echo 0" if item == 0 else backend.sleep_line)
        return results[0].stdout.strip()
    return worker
