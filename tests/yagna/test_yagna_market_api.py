"""MarketApi: one test (or more) per endpoint, request bodies and queries pinned."""

from datetime import datetime, timezone

import pytest
from responses import matchers

from golem_tasks.errors import ApiError, ConfigurationError
from golem_tasks.providers.yagna import Gone, NotFound
from golem_tasks.providers.yagna.market.api import SUCCESS_REASON
from golem_tasks.providers.yagna.market.demand import Demand
from golem_tasks.providers.yagna.market.models import OtherMarketEvent, ProposalEvent, ProposalRejectedEvent

from .yagna_samples import (
    MARKET,
    PROVIDER,
    agreement,
    agreement_event,
    proposal,
    proposal_event,
    proposal_rejected_event,
)

DEMAND = Demand({"golem.node.debug.subnet": "public", "golem.srv.comp.expiration": 1759580000000},
                "(&(golem.runtime.name=vm)(golem.node.debug.subnet=public))")
VALID_TO = datetime(2025, 10, 4, 13, 0, tzinfo=timezone.utc)


def test_subscribe_demand(client, rsps):
    rsps.post(MARKET + "/demands", status=201, json="SUB",
              match=[matchers.json_params_matcher(DEMAND.to_json())])
    assert client.market.subscribe_demand(DEMAND) == "SUB"


def test_unsubscribe_demand(client, rsps):
    rsps.delete(MARKET + "/demands/SUB", status=204)
    assert client.market.unsubscribe_demand("SUB") is None


def test_unsubscribe_a_lapsed_demand(client, rsps):
    rsps.delete(MARKET + "/demands/SUB", status=404, json={"message": "Subscription [SUB] not found"})
    with pytest.raises(NotFound):
        client.market.unsubscribe_demand("SUB")


def test_collect_offers_parses_every_event_type(client, rsps):
    other = {"eventType": "PropertyQueryEvent", "eventDate": "2025-10-04T12:00:00Z",
             "propertyQuery": {"queriedProperties": ["golem.x"]}}
    rsps.get(MARKET + "/demands/SUB/events",
             json=[proposal_event(), proposal_event("P1", "Draft", prev="D1"), proposal_rejected_event(), other],
             match=[matchers.query_param_matcher({"timeout": "10", "maxEvents": "50"})])
    first, draft, rejected, query = client.market.collect_offers("SUB", timeout=10, max_events=50)
    assert isinstance(first, ProposalEvent) and first.proposal.state == "Initial"
    assert first.proposal.provider_id == PROVIDER and first.proposal.provider_name == "provider-1"
    assert draft.proposal.prev_proposal_id == "D1"
    assert isinstance(rejected, ProposalRejectedEvent) and rejected.reason_message == "No capacity available"
    assert isinstance(query, OtherMarketEvent) and query.event_type == "PropertyQueryEvent"


def test_collect_offers_defaults_and_empty_poll(client, rsps):
    rsps.get(MARKET + "/demands/SUB/events", json=[],
             match=[matchers.query_param_matcher({"timeout": "5.0", "maxEvents": "20"})])
    assert client.market.collect_offers("SUB") == []


def test_collect_offers_waits_longer_than_the_server(client, rsps):
    rsps.get(MARKET + "/demands/SUB/events", json=[],
             match=[matchers.request_kwargs_matcher({"timeout": (5.0, 35.0)})])
    client.market.collect_offers("SUB", timeout=30)


@pytest.mark.parametrize("max_events", [0, 101, 2.5])
def test_collect_offers_checks_max_events(client, max_events):
    with pytest.raises(ConfigurationError, match="max_events"):
        client.market.collect_offers("SUB", max_events=max_events)


def test_counter_proposal(client, rsps):
    countered = DEMAND.with_properties({"golem.com.payment.chosen-platform": "erc20-holesky-tglm"})
    rsps.post(MARKET + "/demands/SUB/proposals/P0", json="D1",
              match=[matchers.json_params_matcher(countered.to_json())])
    assert client.market.counter_proposal("SUB", "P0", countered) == "D1"


def test_counter_proposal_twice_is_gone(client, rsps):
    # The spec gives this 410 no body (the daemon's may carry an ErrorMessage; both work).
    rsps.post(MARKET + "/demands/SUB/proposals/P0", status=410)
    with pytest.raises(Gone, match="answered 410: Gone"):
        client.market.counter_proposal("SUB", "P0", DEMAND)


def test_get_proposal(client, rsps):
    rsps.get(MARKET + "/demands/SUB/proposals/P1", json=proposal("P1", "Draft", prev="D1"))
    assert client.market.get_proposal("SUB", "P1").state == "Draft"


def test_reject_proposal(client, rsps):
    rsps.post(MARKET + "/demands/SUB/proposals/P0/reject", status=204,
              match=[matchers.json_params_matcher({"message": "No common payment platform"})])
    client.market.reject_proposal("SUB", "P0", "No common payment platform")


def test_ids_cannot_add_path_segments(client, rsps):
    rsps.post(MARKET + "/demands/S%2F..%2Fx/proposals/P%3F0/reject", status=204)
    client.market.reject_proposal("S/../x", "P?0", "no")


def test_create_agreement(client, rsps):
    rsps.post(MARKET + "/agreements", json="AG",
              match=[matchers.json_params_matcher({"proposalId": "P1", "validTo": "2025-10-04T13:00:00Z"})])
    assert client.market.create_agreement("P1", VALID_TO) == "AG"


def test_create_agreement_from_an_initial_proposal(client, rsps, waits):
    rsps.post(MARKET + "/agreements", status=400, json={"message": "No negotiation with Provider took place"})
    with pytest.raises(ApiError, match="No negotiation") as info:
        client.market.create_agreement("P0", VALID_TO)
    assert info.value.status == 400 and waits == []


def test_create_agreement_needs_an_aware_valid_to(client):
    with pytest.raises(ValueError, match="time zone"):
        client.market.create_agreement("P1", datetime(2025, 10, 4, 13))


def test_confirm_agreement(client, rsps):
    rsps.post(MARKET + "/agreements/AG/confirm", status=204,
              match=[matchers.query_param_matcher({"appSessionId": "s-1"})])
    client.market.confirm_agreement("AG", app_session_id="s-1")


def test_wait_for_approval_approved(client, rsps):
    rsps.post(MARKET + "/agreements/AG/wait", status=204,
              match=[matchers.query_param_matcher({"timeout": "15.0"})])
    assert client.market.wait_for_approval("AG") is True


def test_wait_for_approval_rejected_is_final(client, rsps):
    rsps.post(MARKET + "/agreements/AG/wait", status=410, json={"message": "Agreement [AG] rejected"})
    with pytest.raises(Gone, match="rejected"):
        client.market.wait_for_approval("AG")


def test_wait_for_approval_on_a_terminated_agreement(client, rsps):
    rsps.post(MARKET + "/agreements/AG/wait", status=400, json={"message": "Agreement [AG] is Terminated"})
    with pytest.raises(ApiError) as info:
        client.market.wait_for_approval("AG")
    assert info.value.status == 400


def test_get_agreement(client, rsps):
    rsps.get(MARKET + "/agreements/AG", json=agreement())
    result = client.market.get_agreement("AG")
    assert result.state == "Approved" and result.provider_id == PROVIDER


def test_terminate_agreement_sends_the_success_reason(client, rsps):
    rsps.post(MARKET + "/agreements/AG/terminate", status=200, body="",
              match=[matchers.json_params_matcher(dict(SUCCESS_REASON))])
    assert client.market.terminate_agreement("AG") is None


def test_terminate_agreement_with_a_reason(client, rsps):
    reason = {"message": "Task failed", "golem.requestor.code": "Error"}
    rsps.post(MARKET + "/agreements/AG/terminate", status=200, match=[matchers.json_params_matcher(reason)])
    client.market.terminate_agreement("AG", reason)


def test_terminate_twice_is_gone(client, rsps):
    rsps.post(MARKET + "/agreements/AG/terminate", status=410, json={"message": "Agreement [AG] Terminated"})
    with pytest.raises(Gone):
        client.market.terminate_agreement("AG")


def test_cancel_agreement(client, rsps):
    rsps.post(MARKET + "/agreements/AG/cancel", status=200,
              match=[matchers.json_params_matcher({"message": "took too long"})])
    client.market.cancel_agreement("AG", "took too long")


def test_collect_agreement_events(client, rsps):
    rsps.get(MARKET + "/agreementEvents",
             json=[agreement_event("Approved"), agreement_event("Terminated"), agreement_event("Rejected")],
             match=[matchers.query_param_matcher({"timeout": "2", "afterTimestamp": "2025-10-04T12:00:00Z",
                                                  "maxEvents": "10", "appSessionId": "s-1"})])
    approved, terminated, rejected = client.market.collect_agreement_events(
        after_timestamp=datetime(2025, 10, 4, 12, tzinfo=timezone.utc), timeout=2, max_events=10,
        app_session_id="s-1")
    assert approved.kind == "Approved" and approved.agreement_id == "AG"
    assert terminated.kind == "Terminated" and terminated.terminator == "Provider"
    assert rejected.reason["message"] == "No capacity available"
