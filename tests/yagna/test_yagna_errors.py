"""Every failure reaches the caller as a golem_tasks error that says what to do, and the
app key shows up nowhere: not in messages, reprs, pickles or logs."""

import logging
import pickle
import socket

import pytest
import requests

from golem_tasks.errors import ApiError, ProviderError
from golem_tasks.providers.yagna import (
    ApiTimeout,
    AppKeyRefused,
    Gone,
    NotFound,
    NotYagna,
    TransportError,
    YagnaUnreachable,
)
from golem_tasks.providers.yagna._client import YagnaClient

from .yagna_samples import ACTIVITY, API_URL, APP_KEY, MARKET, PAYMENT


def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_connection_refused_says_how_to_start_the_daemon(session, waits, caplog):
    caplog.set_level(logging.DEBUG)
    url = closed_port_url()
    client = YagnaClient(session, url, APP_KEY, sleep=waits.append)
    with pytest.raises(YagnaUnreachable) as info:
        client.me()
    message = str(info.value)
    assert f"no yagna daemon answers at {url}" in message
    assert "yagna service run" in message and "golem-tasks localnet up" in message
    assert info.value.status is None
    assert isinstance(info.value, ApiError) and isinstance(info.value, ProviderError)
    assert isinstance(info.value.__cause__, requests.ConnectionError)
    assert waits == []  # nothing listens: waiting would not help
    assert APP_KEY not in caplog.text


def test_401_says_how_to_get_a_key(client, rsps):
    rsps.get(API_URL + "/me", status=401, body="Invalid application key", content_type="text/plain")
    with pytest.raises(AppKeyRefused) as info:
        client.me()
    assert info.value.status == 401
    assert str(info.value) == (
        f"the app key was refused by {API_URL} (Invalid application key): create one with "
        "`yagna app-key create requestor` and pass app_key= or set YAGNA_APPKEY")
    assert APP_KEY not in str(info.value) + repr(info.value)


def test_404_of_a_lapsed_subscription(client, rsps):
    rsps.get(MARKET + "/demands/SUB/events", status=404, json={"message": "Subscription [SUB] expired."})
    with pytest.raises(NotFound, match=r"GET /market-api/v1/demands/SUB/events answered 404: "
                                       r"Subscription \[SUB\] expired."):
        client.market.collect_offers("SUB")


def test_404_with_a_null_message(client, rsps):
    rsps.get(PAYMENT + "/debitNotes/DN", status=404, json={"message": None})
    with pytest.raises(NotFound, match="404: no message"):
        client.payment.get_debit_note("DN")


def test_410_is_gone(client, rsps):
    rsps.post(MARKET + "/agreements/AG/wait", status=410, json={"message": "Agreement [AG] rejected."})
    with pytest.raises(Gone) as info:
        client.market.wait_for_approval("AG")
    assert info.value.status == 410 and "rejected" in info.value.message


def test_other_statuses_are_plain_api_errors(client, rsps):
    rsps.post(MARKET + "/agreements", status=400, json={"message": "No negotiation with Provider took place"})
    with pytest.raises(ApiError) as info:
        client.market.create_agreement("P0", valid_to=__import__("datetime").datetime(
            2025, 10, 4, 13, tzinfo=__import__("datetime").timezone.utc))
    assert type(info.value) is ApiError and info.value.status == 400
    assert "No negotiation with Provider took place" in str(info.value)


def test_408_is_a_timeout_error(client, rsps):
    for _ in range(5):
        rsps.get(ACTIVITY + "/activity/AC/state", status=408, json={"message": "Timeout"})
    with pytest.raises(ApiTimeout) as info:
        client.activity.get_state("AC")
    assert isinstance(info.value, TimeoutError) and info.value.status == 408


def test_problem_json_details_reach_the_message(client, rsps):
    problem = {"type": "about:blank", "title": "Bad Request", "detail": "Not enough funds",
               "requestedFunds": "1000", "availableFunds": "5", "reservedFunds": "0"}
    rsps.post(PAYMENT + "/allocations", status=400, json=problem, content_type="application/problem+json")
    with pytest.raises(ApiError) as info:
        client.payment.create_allocation(total_amount="1000", payment_platform="erc20-hoodi-tglm",
                                          timeout=__import__("datetime").datetime(
                                              2025, 10, 4, 14, tzinfo=__import__("datetime").timezone.utc))
    message = str(info.value)
    assert "Not enough funds (requestedFunds=1000, availableFunds=5, reservedFunds=0)" in message
    assert "yagna payment fund --network hoodi" in message
    assert info.value.status == 400


@pytest.mark.not_yagna
def test_html_instead_of_json_is_not_yagna(client, rsps):
    rsps.get(API_URL + "/me", body="<html><body>Welcome to nginx!</body></html>", content_type="text/html")
    with pytest.raises(NotYagna) as info:
        client.me()
    assert f"{API_URL} answered but is not a yagna daemon" in str(info.value)
    assert "text/html" in str(info.value) and "Welcome to nginx" in str(info.value)


@pytest.mark.not_yagna
def test_json_of_the_wrong_shape_is_not_yagna(client, rsps):
    rsps.get(API_URL + "/me", json={"user": "bob"})
    with pytest.raises(NotYagna, match="unexpected shape"):
        client.me()


def test_a_broken_connection_is_a_transport_error(client, rsps, waits):
    rsps.post(ACTIVITY + "/activity/AC/exec", body=requests.ConnectionError("Connection reset by peer"))
    with pytest.raises(TransportError) as info:
        client.activity.exec_script("AC", [{"deploy": {}}])
    assert info.value.request_sent is True
    assert "Connection reset by peer" in str(info.value)
    assert waits == []  # an exec that may have arrived is never sent twice


def test_a_read_timeout_is_a_transport_error(client, rsps):
    for _ in range(4):
        rsps.get(MARKET + "/demands/SUB/events", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(TransportError, match="did not answer in time") as info:
        client.market.collect_offers("SUB")
    assert info.value.request_sent is True


def test_errors_pickle_with_their_attributes(client, rsps):
    rsps.get(API_URL + "/me", body=requests.ConnectTimeout("connect timed out"))
    rsps.get(API_URL + "/me", status=401, body="Missing application key", content_type="text/plain")
    try:
        client.me()
    except AppKeyRefused as exc:
        copy = pickle.loads(pickle.dumps(exc))
        assert type(copy) is AppKeyRefused and copy.status == 401 and str(copy) == str(exc)
    transport = TransportError("x", request_sent=False)
    copy = pickle.loads(pickle.dumps(transport))
    assert copy.request_sent is False and copy.message == "x"


def test_the_app_key_never_reaches_logs_or_errors(client, rsps, caplog):
    caplog.set_level(logging.DEBUG)
    rsps.get(API_URL + "/me", status=503, json={"message": "overloaded"})
    rsps.get(API_URL + "/me", body=requests.ConnectTimeout("connect timed out"))
    rsps.get(API_URL + "/me", status=401, body="Invalid application key", content_type="text/plain")
    with pytest.raises(AppKeyRefused) as info:
        client.me()
    assert caplog.text.count("GET /me in ") == 2  # the retries were logged...
    texts = [caplog.text, str(info.value), repr(info.value), repr(info.value.__context__),
             str(info.value.__cause__), repr(client), str(pickle.dumps(info.value))]
    assert not [text for text in texts if APP_KEY in text]  # ...without the key


def test_the_key_object_refuses_to_be_pickled(client):
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(client._t._key)
