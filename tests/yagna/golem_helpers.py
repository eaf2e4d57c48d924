"""Fixtures and helpers of the GolemProvider tests: a fake daemon behind a ``responses``
mock whose every exchange with the daemon is checked against the yagna specs, fast
timeouts, and retry policies that do not sleep.

The fixtures (``daemon_mock``, ``daemon``, ``events``) are made available by conftest.py.
"""

from __future__ import annotations

import time
from typing import Any, List

import attrs
import pytest

from golem_tasks.providers.yagna import DEFAULT_POLICIES, GolemProvider, Timeouts

from .fake_daemon import FakeDaemon, node
from .own_mock import OwnHostsMock
from .yagna_samples import API_URL, APP_KEY, IMAGE_HASH, IMAGE_URL

FAST = Timeouts(negotiation=5, approval=1, activity=5, deploy=5, poll=2, market_poll=0.1, payment_poll=0.1,
                invoices=2, resubscribe=0.3, destroy=1)
#: The default policies (same attempts and kinds) without the waits between attempts.
NO_WAIT = {kind: attrs.evolve(policy, initial_wait=0, max_wait=0, jitter=0)
           for kind, policy in DEFAULT_POLICIES.items()}


def make_provider(**options: Any) -> GolemProvider:
    """A provider on the fake daemon (image given by hash and URL: no registry). Inline
    transfers unless a test asks for a storage: the fake daemon plays no GSB API."""
    settings = dict(image_hash=IMAGE_HASH, image_url=IMAGE_URL, app_key=APP_KEY, api_url=API_URL,
                    timeouts=FAST, policies=NO_WAIT, storage=None)
    settings.update(options)
    return GolemProvider(**settings)


@pytest.fixture
def daemon_mock(contract):
    """A ``responses`` mock; afterwards every daemon exchange must keep the specs."""
    from .conftest import check_calls  # here, not at import: conftest imports this module

    with OwnHostsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps
        if contract is not None:
            calls = [call for call in rsps.calls if call.request.url.startswith(API_URL)]
            problems = check_calls(contract, calls)
            assert not problems, "exchanges break the yagna specs:\n" + "\n".join(problems)


@pytest.fixture
def daemon(daemon_mock, tmp_path) -> FakeDaemon:
    """The fake daemon with two providers."""
    return FakeDaemon(daemon_mock, [node(1), node(2)], tmp=tmp_path)


@pytest.fixture
def events() -> List[Any]:
    """Collects the provider's events: pass ``events=events.append``."""
    return []


def ready(provider: GolemProvider, candidates: int = 2) -> GolemProvider:
    """Start ``provider`` and wait until ``candidates`` drafts are in, so the score (not
    the order drafts happen to arrive in) decides who is engaged first."""
    provider.start()
    end = time.monotonic() + 30  # a hang guard, not a speed bound
    while len(provider._market._candidates) < candidates:
        assert time.monotonic() < end, "the drafts did not arrive"
        time.sleep(0.005)
    return provider


def of_type(collected: List[Any], kind: type) -> List[Any]:
    return [event for event in collected if isinstance(event, kind)]


def assert_key_hidden(caplog: pytest.LogCaptureFixture, *texts: str) -> None:
    """The app key appears in no log record and in none of ``texts``."""
    for record in caplog.records:
        assert APP_KEY not in record.getMessage()
        assert APP_KEY not in str(record.args)
    for text in texts:
        assert APP_KEY not in text


__all__ = ("FAST", "NO_WAIT", "assert_key_hidden", "daemon", "daemon_mock", "events", "make_provider", "node",
           "of_type", "ready")
