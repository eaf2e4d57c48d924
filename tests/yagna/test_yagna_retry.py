"""The retry policies: what is repeated, how often, how long it waits, what is logged."""

import json
import logging
import re
from datetime import datetime, timezone

import pytest
import requests
import responses
import tenacity

from golem_tasks.errors import ApiError
from golem_tasks.providers.yagna import (
    DEFAULT_POLICIES,
    ApiTimeout,
    CallKind,
    Gone,
    NotFound,
    RetryPolicy,
    TransportError,
    YagnaUnreachable,
)
from golem_tasks.providers.yagna._client import YagnaClient
from golem_tasks.providers.yagna._http.retry import is_transient, was_never_sent

from .yagna_samples import ACTIVITY, API_URL, APP_KEY, MARKET, PAYMENT, exe_result

GSB_500 = {"message": "GSB error: GSB failure: Bad request: endpoint address not found"}
STATE = {"state": ["Ready", None]}


@pytest.fixture
def exact(session, waits):
    """A client whose policies have no jitter, so the waits are exact."""
    policies = {kind: RetryPolicy(retry_on=policy.retry_on, max_attempts=policy.max_attempts,
                                  max_delay=policy.max_delay, initial_wait=policy.initial_wait,
                                  max_wait=policy.max_wait, jitter=0)
                for kind, policy in DEFAULT_POLICIES.items()}
    return YagnaClient(session, API_URL, APP_KEY, policies=policies, sleep=waits.append)


@pytest.mark.ordered
def test_gsb_500s_then_success(exact, rsps, waits):
    first = rsps.get(ACTIVITY + "/activity/AC/state", status=500, json=GSB_500)
    second = rsps.get(ACTIVITY + "/activity/AC/state", status=500, json=GSB_500)
    third = rsps.get(ACTIVITY + "/activity/AC/state", json=STATE)
    assert exact.activity.get_state("AC").ready
    assert (first.call_count, second.call_count, third.call_count) == (1, 1, 1)
    assert waits == [0.5, 1.0]


@pytest.mark.ordered
def test_reads_give_up_after_five_attempts(exact, rsps, waits):
    answers = [rsps.get(MARKET + "/agreements/AG", status=503, json={"message": "busy"})
               for _ in range(5)]
    with pytest.raises(ApiError) as info:
        exact.market.get_agreement("AG")
    assert info.value.status == 503
    assert [answer.call_count for answer in answers] == [1] * 5
    assert waits == [0.5, 1.0, 2.0, 4.0]


def test_default_waits_stay_within_their_jitter(client, rsps, waits):
    for _ in range(5):
        rsps.get(MARKET + "/agreements/AG", status=503, json={"message": "busy"})
    with pytest.raises(ApiError):
        client.market.get_agreement("AG")
    assert len(waits) == 4
    for wait, base in zip(waits, [0.5, 1.0, 2.0, 4.0]):
        assert base <= wait <= base + 0.5


def test_a_500_without_gsb_is_not_retried(client, rsps, waits):
    rsps.get(ACTIVITY + "/activity/AC/state", status=500, json={"message": "database is locked"})
    with pytest.raises(ApiError, match="database is locked"):
        client.activity.get_state("AC")
    assert waits == []


@pytest.mark.parametrize("status,error", [(400, ApiError), (404, NotFound), (410, Gone)])
def test_final_answers_are_not_retried(client, rsps, waits, status, error):
    rsps.get(MARKET + "/agreements/AG", status=status, json={"message": "no"})
    with pytest.raises(error):
        client.market.get_agreement("AG")
    assert waits == []


@pytest.mark.ordered
def test_accept_is_retried_on_ack_timeouts(exact, rsps, waits):
    body = {"totalAmountAccepted": "0.5", "allocationId": "AL"}
    answers = [rsps.post(PAYMENT + "/invoices/IN/accept", status=504, json={"message": "ack timeout"}),
               rsps.post(PAYMENT + "/invoices/IN/accept", status=504, json={"message": "ack timeout"}),
               rsps.post(PAYMENT + "/invoices/IN/accept", json=None)]
    exact.payment.accept_invoice("IN", "0.5", "AL")
    assert [answer.call_count for answer in answers] == [1, 1, 1]
    assert waits == [1.0, 2.0]
    accepts = [call for call in rsps.calls if "/invoices/IN/accept" in call.request.url]
    assert len(accepts) == 3 and all(json.loads(call.request.body) == body for call in accepts)


@pytest.mark.ordered
def test_polls_retry_a_slow_link_408(exact, rsps):
    rsps.get(ACTIVITY + "/activity/AC/exec/BA", status=408, json={"message": "Timeout"})
    rsps.get(ACTIVITY + "/activity/AC/exec/BA", json=[exe_result(0, finished=True)])
    assert exact.activity.get_exec_batch_results("AC", "BA")[0].is_batch_finished


def test_the_408_of_wait_is_an_answer_not_a_failure(client, rsps, waits):
    rsps.post(MARKET + "/agreements/AG/wait", status=408, json={"message": "Timeout"})
    assert client.market.wait_for_approval("AG") is False
    assert waits == [] and len(rsps.calls) == 1


def test_the_408_of_a_command_index_wait_means_not_yet(client, rsps, waits):
    rsps.get(ACTIVITY + "/activity/AC/exec/BA", status=408, json={"message": "Timeout"})
    assert client.activity.get_exec_batch_results("AC", "BA", command_index=2) == []
    assert waits == []


@pytest.mark.parametrize("call", [
    lambda c: c.activity.exec_script("AC", [{"deploy": {}}]),
    lambda c: c.activity.create_activity("AG"),
    lambda c: c.market.create_agreement("P1", datetime(2025, 10, 4, 13, tzinfo=timezone.utc)),
    lambda c: c.payment.create_allocation(total_amount=1, payment_platform="erc20-holesky-tglm",
                                          timeout=datetime(2025, 10, 4, 14, tzinfo=timezone.utc)),
], ids=["exec", "create_activity", "create_agreement", "create_allocation"])
def test_non_idempotent_calls_are_never_repeated_once_sent(client, rsps, waits, call):
    rsps.add(responses.Response(method=responses.POST, url=re.compile(r".*"),
                                body=requests.ConnectionError("Connection reset by peer")))
    with pytest.raises(TransportError):
        call(client)
    assert len(rsps.calls) == 1 and waits == []


@pytest.mark.ordered
def test_non_idempotent_calls_are_repeated_when_never_sent(exact, rsps, waits):
    rsps.post(ACTIVITY + "/activity/AC/exec", body=requests.ConnectTimeout("connect timed out"))
    rsps.post(ACTIVITY + "/activity/AC/exec", json="BA")
    assert exact.activity.exec_script("AC", [{"deploy": {}}]) == "BA"
    assert waits == [0.5]


def test_non_idempotent_calls_do_not_retry_gsb_errors(client, rsps, waits):
    rsps.post(ACTIVITY + "/activity/AC/exec", status=500, json=GSB_500)
    with pytest.raises(ApiError, match="GSB error"):
        client.activity.exec_script("AC", [{"deploy": {}}])
    assert waits == []


@pytest.mark.ordered
def test_retries_are_logged_as_warnings(client, rsps, caplog):
    caplog.set_level(logging.WARNING, logger="golem_tasks.providers.yagna")
    rsps.get(ACTIVITY + "/activity/AC/state", status=500, json=GSB_500)
    rsps.get(ACTIVITY + "/activity/AC/state", json=STATE)
    client.activity.get_state("AC")
    [record] = caplog.records
    assert record.levelno == logging.WARNING and record.name == "golem_tasks.providers.yagna._http.retry"
    assert "GET /activity-api/v1/activity/AC/state in" in record.getMessage()
    assert "GSB error" in record.getMessage()


# -- the policies as pure objects ------------------------------------------------------
def state(attempt, seconds, exc=None):
    retrying = tenacity.Retrying()
    retry_state = tenacity.RetryCallState(retrying, fn=None, args=(), kwargs={})
    retry_state.attempt_number = attempt
    retry_state.outcome_timestamp = retry_state.start_time + seconds
    if exc is not None:
        retry_state.outcome = tenacity.Future.construct(attempt, exc, True)
    return retry_state


@pytest.mark.parametrize("kind,attempts,delay", [
    (CallKind.READ, 5, 30), (CallKind.POLL, 4, 90), (CallKind.ACK, 5, 120),
    (CallKind.CLEANUP, 3, 30), (CallKind.CREATE, 3, 15)])
def test_every_policy_stops_on_attempts_or_time(kind, attempts, delay):
    stop = DEFAULT_POLICIES[kind].stop()
    assert not stop(state(attempts - 1, delay - 0.1))
    assert stop(state(attempts, 0.0))
    assert stop(state(1, delay + 0.001))


def test_every_kind_has_a_policy():
    assert set(DEFAULT_POLICIES) == set(CallKind)


def test_a_client_needs_every_policy(session):
    with pytest.raises(ValueError, match="no retry policy"):
        YagnaClient(session, API_URL, APP_KEY, policies={CallKind.READ: DEFAULT_POLICIES[CallKind.READ]})


@pytest.mark.parametrize("error,transient", [
    (TransportError("x", request_sent=True), True),
    (TransportError("x", request_sent=False), True),
    (ApiTimeout("x", status=408), True),
    (ApiError("x", status=502), True),
    (ApiError("x", status=503), True),
    (ApiError("x", status=504), True),
    (ApiError("GSB error: endpoint address not found", status=500), True),
    (ApiError("internal", status=500), False),
    (ApiError("bad", status=400), False),
    (NotFound("x", status=404), False),
    (Gone("x", status=410), False),
    (YagnaUnreachable("x"), False),
    (ValueError("x"), False),
])
def test_what_is_transient(error, transient):
    assert is_transient(error) is transient


def test_what_was_never_sent():
    assert was_never_sent(TransportError("x", request_sent=False))
    assert not was_never_sent(TransportError("x", request_sent=True))
    assert not was_never_sent(ApiError("x", status=503))


def test_policies_validate_their_numbers():
    with pytest.raises(ValueError):
        RetryPolicy(retry_on=is_transient, max_attempts=0, max_delay=1, initial_wait=1, max_wait=1)
    with pytest.raises(ValueError):
        RetryPolicy(retry_on=is_transient, max_attempts=1, max_delay=0, initial_wait=1, max_wait=1)
