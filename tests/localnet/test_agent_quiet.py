"""A provider agent stays quiet about what is expected when a requestor leaves or the
network shuts down, and still warns about everything else."""

from __future__ import annotations

import logging
from typing import Any, Dict, List

import pytest

from golem_tasks.errors import ApiError
from golem_tasks.localnet.provider.agent import ProviderAgent

GONE = ApiError("POST /market-api/v1/offers/O/proposals/P answered 500: Subscription [D] wasn't found.", status=500)


class OneEvent:
    """A Rest stand-in: the offer's event poll answers one proposal, then the agent stops."""

    def __init__(self, agent: ProviderAgent) -> None:
        self.agent = agent
        self.polls = 0

    def get(self, path: str, **_: Any) -> List[Dict[str, Any]]:
        self.polls += 1
        if self.polls > 1:
            self.agent._stopping.set()
            return []
        return [{"eventType": "ProposalEvent", "proposal": {"proposalId": "P"}}]


def follow_one_event(error: ApiError, *, stopping: bool = False) -> ProviderAgent:
    agent = ProviderAgent("http://127.0.0.1:9", "key", node_id="0x1", name="provider-x")
    agent.offer_id = "O"

    def fail(*_: Any) -> None:
        if stopping:
            agent._stopping.set()
        raise error

    agent._on_offer_event = fail  # type: ignore[method-assign]
    try:
        agent._follow_offer(OneEvent(agent))  # type: ignore[arg-type]
    finally:
        agent._market.close()
    return agent


def warnings(caplog: pytest.LogCaptureFixture) -> List[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_demand_withdrawn_while_we_answer_it_is_no_warning(caplog):
    with caplog.at_level(logging.DEBUG, logger="golem_tasks.localnet"):
        follow_one_event(GONE)
    assert warnings(caplog) == []
    assert any("wasn't found" in r.getMessage() for r in caplog.records)  # still there at DEBUG


def test_any_error_while_stopping_is_no_warning(caplog):
    with caplog.at_level(logging.DEBUG, logger="golem_tasks.localnet"):
        follow_one_event(ApiError("connection refused"), stopping=True)
    assert warnings(caplog) == []


def test_a_real_error_is_still_a_warning(caplog):
    with caplog.at_level(logging.DEBUG, logger="golem_tasks.localnet"):
        follow_one_event(ApiError("POST ... answered 400: invalid properties", status=400))
    assert any("invalid properties" in message for message in warnings(caplog))
