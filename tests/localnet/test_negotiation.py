"""Provider agents on the real daemon: offers, counter-proposals, agreements.

The requestor side is plain REST (see ``requestor.py``); the fixture's providers are
``provider-0`` (accepts), ``provider-1`` (rejects proposals), ``provider-2`` (rejects
agreements).
"""

from __future__ import annotations

import time

import pytest

from golem_tasks.localnet.network import LocalNet

from .requestor import PlainRequestor

pytestmark = pytest.mark.slow


def _eventually(condition, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def test_offer_negotiation_agreement_approval_termination(
    localnet: LocalNet, requestor: PlainRequestor
) -> None:
    provider, agent = localnet.providers[0], localnet.agents[0]
    started = time.monotonic()
    allocation = requestor.allocate()
    demand_body = requestor.demand_body(allocation["allocationId"])
    demand = requestor.subscribe(demand_body)

    draft = requestor.negotiate(demand, demand_body, provider.node_id)
    assert draft["eventType"] == "ProposalEvent" and draft["proposal"]["state"] == "Draft"
    offered = draft["proposal"]["properties"]
    assert offered["golem.runtime.name"] == "vm"
    assert (
        offered["golem.com.pricing.model"] == "linear"
        and len(offered["golem.com.pricing.model.linear.coeffs"]) == 3
    )
    assert offered["golem.inf.mem.gib"] >= 0.5 and offered["golem.inf.cpu.threads"] >= 1
    assert offered["golem.com.payment.platform.erc20-hoodi-tglm.address"] == provider.node_id
    assert (
        offered["golem.com.payment.debit-notes.accept-timeout?"] == 120
    )  # our lower value, echoed

    agreement = requestor.agree(draft["proposal"]["proposalId"])
    approval = requestor.wait_for_approval(agreement)
    first_agreement = time.monotonic() - started
    assert approval.status_code == 204, approval.text
    assert (
        requestor.request("GET", f"/market-api/v1/agreements/{agreement}", 200)["state"]
        == "Approved"
    )
    assert agent.live_agreements == 1
    print(f"\ntime to first agreement: {first_agreement:.2f} s")

    requestor.terminate(agreement)
    assert _eventually(lambda: agent.live_agreements == 0)
    assert [e.kind for e in agent.events if e.id == agreement] == ["approved", "terminated"]


def test_provider_that_rejects_proposals(localnet: LocalNet, requestor: PlainRequestor) -> None:
    allocation = requestor.allocate()
    body = requestor.demand_body(allocation["allocationId"])
    demand = requestor.subscribe(body)
    answer = requestor.negotiate(demand, body, localnet.providers[1].node_id)
    assert answer["eventType"] == "ProposalRejectedEvent"
    assert answer["reason"]["message"] == "busy with other work"


def test_provider_that_rejects_agreements(localnet: LocalNet, requestor: PlainRequestor) -> None:
    allocation = requestor.allocate()
    body = requestor.demand_body(allocation["allocationId"])
    demand = requestor.subscribe(body)
    draft = requestor.negotiate(demand, body, localnet.providers[2].node_id)
    agreement = requestor.agree(draft["proposal"]["proposalId"])
    answer = requestor.wait_for_approval(agreement)
    assert answer.status_code == 410, answer.text
    assert "Rejected" in answer.text
    agent = localnet.agents[2]
    assert _eventually(lambda: any(e.id == agreement for e in agent.events))
    assert [(e.kind, e.detail) for e in agent.events if e.id == agreement] == [
        ("agreement-rejected", "changed my mind")
    ]


def test_provider_rules_reject_a_demand_expiring_too_soon(
    localnet: LocalNet, requestor: PlainRequestor
) -> None:
    # Real providers refuse demands expiring in less than 5 minutes; so do local ones.
    allocation = requestor.allocate()
    body = requestor.demand_body(allocation["allocationId"], expires_in=120)
    demand = requestor.subscribe(body)
    answer = requestor.negotiate(demand, body, localnet.providers[0].node_id)
    assert answer["eventType"] == "ProposalRejectedEvent"
    assert "less than 5m" in answer["reason"]["message"]


def test_capacity_one_agreement_at_a_time(localnet: LocalNet, requestor: PlainRequestor) -> None:
    provider, agent = localnet.providers[0], localnet.agents[0]
    allocation = requestor.allocate()
    body = requestor.demand_body(allocation["allocationId"])
    first_demand = requestor.subscribe(body)
    draft = requestor.negotiate(first_demand, body, provider.node_id)
    agreement = requestor.agree(draft["proposal"]["proposalId"])
    assert requestor.wait_for_approval(agreement).status_code == 204
    try:
        second_demand = requestor.subscribe(body)
        answer = requestor.negotiate(second_demand, body, provider.node_id)
        assert answer["eventType"] == "ProposalRejectedEvent"
        assert answer["reason"]["message"] == "No capacity available"
    finally:
        requestor.terminate(agreement)
    assert _eventually(lambda: agent.live_agreements == 0)
