"""Fixtures of the yagna client tests.

* YAGNA_* variables and GOLEM_TASKS_REGISTRY_URL are removed before every test, so a
  developer's daemon settings (``golem-tasks localnet env``) never leak into results (as
  requests' conftest does with proxy variables).
* ``rsps`` is a strict ``responses.RequestsMock``; after the test every recorded
  exchange is checked against the official OpenAPI specs (yagna_contract.py), unless
  the test is marked ``not_yagna`` (it feeds answers no yagna daemon would give).
"""

from __future__ import annotations

import os

import pytest
import requests
from responses.registries import FirstMatchRegistry, OrderedRegistry

from golem_tasks.providers.yagna._client import YagnaClient

from .yagna_contract import load_book
from .own_mock import OwnHostsMock
from .yagna_samples import API_URL, APP_KEY


def pytest_configure(config):
    config.addinivalue_line("markers", "ordered: the rsps fixture answers in registration order")
    config.addinivalue_line("markers", "not_yagna: the test feeds non-yagna answers; skip the spec check")


@pytest.fixture(autouse=True)
def _no_yagna_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("YAGNA_") or name == "GOLEM_TASKS_REGISTRY_URL":
            monkeypatch.delenv(name)


@pytest.fixture
def waits():
    """What the retry policies would have slept, in seconds."""
    return []


@pytest.fixture
def session():
    with requests.Session() as session:
        yield session


@pytest.fixture
def client(session, waits):
    return YagnaClient(session, API_URL, APP_KEY, sleep=waits.append)


@pytest.fixture
def contract():
    """The spec book (None without the specs: contract checks are then skipped)."""
    return load_book()


@pytest.fixture
def rsps(request, contract):
    ordered = request.node.get_closest_marker("ordered") is not None
    registry = OrderedRegistry if ordered else FirstMatchRegistry
    with OwnHostsMock(assert_all_requests_are_fired=True, registry=registry) as mock:
        yield mock
        if contract is not None and request.node.get_closest_marker("not_yagna") is None:
            problems = check_calls(contract, mock.calls)
            assert not problems, "exchanges break the yagna specs:\n" + "\n".join(problems)


def check_calls(contract, calls):
    problems = []
    for call in calls:
        response = call.response
        if not isinstance(response, requests.Response):
            continue  # the mock raised a connection error: nothing was answered
        body = call.request.body
        if isinstance(body, str):
            body = body.encode()
        try:
            answer = response.content
        except RuntimeError:  # a stream the client consumed; SSE tests check it themselves
            answer = None
        problems += contract.check_exchange(call.request.method, call.request.url, call.request.headers, body,
                                            response.status_code, response.headers, answer, API_URL)
    return problems


# The GolemProvider tests' fixtures: the fake daemon, its spec-checked mock, an event list.
from .golem_helpers import daemon, daemon_mock, events  # noqa: E402,F401
