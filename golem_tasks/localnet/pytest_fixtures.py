"""pytest fixtures for a local Golem network. Enable them in a ``conftest.py``::

    pytest_plugins = ["golem_tasks.localnet.pytest_fixtures"]

    def test_my_app(localnet):              # LocalNet, started once per session
        run_my_app(**localnet.env)          # YAGNA_API_URL, YAGNA_APPKEY

The number of providers comes from ``--localnet-providers`` (default 2). Tests using
the fixture are skipped, with the reason, when the yagna daemon (``golem-node``) is not
installed. Everything the fixture started is stopped at the end of the session.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from .daemon.process import find_yagna
from .errors import DaemonNotInstalled
from .network import LocalNet


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--localnet-providers", type=int, default=2, help="providers in the localnet fixture"
    )


@pytest.fixture(scope="session")
def localnet(request: pytest.FixtureRequest) -> Iterator[LocalNet]:
    """A started :class:`LocalNet` shared by the session."""
    try:
        binary = find_yagna()
    except DaemonNotInstalled as exc:
        pytest.skip(str(exc))
    net = LocalNet(providers=int(request.config.getoption("--localnet-providers")), binary=binary)
    net.start()
    try:
        yield net
    finally:
        net.stop()
