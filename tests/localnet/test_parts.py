"""The local network's pure parts, without a daemon (fast: not marked slow)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from golem_tasks.localnet.exeunit import capture as _capture
from golem_tasks.localnet.exeunit import gsb_wire as wire
from golem_tasks.localnet.exeunit.batch import Batch
from golem_tasks.localnet.provider.negotiator import Negotiator
from golem_tasks.localnet.provider.offer import OfferSpec
from golem_tasks.localnet.daemon.settings import DaemonSettings
from golem_tasks.localnet.exeunit.transfer import TransferError, container_path, split_hash

NOW = 1_800_000_000.0
DEMAND = {
    "golem.srv.comp.expiration": int((NOW + 20 * 60) * 1000),
    "golem.com.payment.chosen-platform": "erc20-hoodi-tglm",
}


# -- GSB wire -----------------------------------------------------------------------


def test_call_request_round_trip() -> None:
    frame = wire.encode(
        "call_request", caller="0xab", address="/public/x/Exec", request_id="r1", data=b"\x00\x01"
    )
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    kind, fields = wire.decode(frame[4:])
    assert kind == "call_request"
    assert fields == {
        "caller": "0xab",
        "address": "/public/x/Exec",
        "request_id": "r1",
        "data": b"\x00\x01",
        "no_reply": 0,
    }


def test_defaults_are_omitted_and_restored() -> None:
    frame = wire.encode("call_reply", request_id="r", code=0, reply_type=wire.FULL, data=b"")
    kind, fields = wire.decode(frame[4:])
    assert kind == "call_reply" and fields == {
        "request_id": "r",
        "code": 0,
        "reply_type": 0,
        "data": b"",
    }
    assert wire.decode(wire.encode("ping")[4:]) == ("ping", {})


def test_large_enum_codes_use_multi_byte_varints() -> None:
    kind, fields = wire.decode(
        wire.encode("register_reply", code=409, message="already registered")[4:]
    )
    assert (kind, fields["code"], fields["message"]) == (
        "register_reply",
        409,
        "already registered",
    )


def test_flexbuffers_payloads_round_trip() -> None:
    pytest.importorskip("flatbuffers")
    from golem_tasks.localnet.exeunit import flex as _flex

    value = {
        "activityId": "a",
        "state": {"state": ["Ready", None]},
        "timeout": None,
        "usage": [0.5, 3],
    }
    assert _flex.loads(_flex.dumps(value)) == value


# -- capture --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("capture", "expected"),
    [
        (None, None),
        ({"stdout": {"atEnd": {}}}, "abcdef"),
        ({"stdout": {"atEnd": {"head": 2}}}, "ab"),
        ({"stdout": {"atEnd": {"tail": 2}}}, "ef"),
        ({"stdout": {"atEnd": {"headTail": 3}}}, "abf"),
        ({"stdout": {"atEnd": {"format": "bin"}}}, list(b"abcdef")),
        ({"stdout": {"stream": {"limit": 3}}}, "abc"),
    ],
)
def test_capture_modes(capture: object, expected: object) -> None:
    assert _capture.render(b"abcdef", capture, "stdout") == expected  # type: ignore[arg-type]


def test_empty_output_is_null() -> None:
    assert _capture.render(b"", {"stdout": {"atEnd": {}}}, "stdout") is None


# -- batch waiting rules -------------------------------------------------------------------


def test_results_wait_for_the_last_command() -> None:
    batch = Batch("b", [{"run": {}}, {"run": {}}])
    batch.finished(0, 0, None, "x")
    assert not batch.wait(None, 0.05)
    assert [r["index"] for r in batch.results()] == [0] and not batch.results()[0][
        "isBatchFinished"
    ]
    threading.Timer(0.05, lambda: batch.finished(1, 0, None, "y")).start()
    assert batch.wait(None, 5)
    assert batch.results()[-1]["isBatchFinished"]


def test_an_early_error_does_not_wake_a_wait_for_the_last_command() -> None:
    # yagna's quirk: only the command index awaited wakes the waiter.
    batch = Batch("b", [{"run": {}}, {"run": {}}])
    batch.finished(0, 3, "ExeScript command exited with code 3")
    assert not batch.wait(None, 0.2)
    assert batch.results()[0]["isBatchFinished"] and batch.results()[0]["result"] == "Error"


def test_command_index_gives_output_at_that_index_only() -> None:
    batch = Batch("b", [{"run": {}}, {"run": {}}])
    batch.finished(0, 0, None, "zero")
    batch.finished(1, 0, None, "one")
    first = batch.results(0)
    assert len(first) == 1 and first[0]["stdout"] == "zero" and first[0]["isBatchFinished"]
    both = batch.results(1)
    assert both[0]["stdout"] is None and both[1]["stdout"] == "one"


# -- negotiation rules -----------------------------------------------------------------------


def test_counter_echoes_a_lower_accept_timeout_and_drops_unasked_terms() -> None:
    offer = OfferSpec()
    properties = offer.properties(node_id="0x1", name="p")
    demand = dict(DEMAND, **{"golem.com.payment.debit-notes.accept-timeout?": 100})
    decision = Negotiator(offer=offer).on_proposal(demand, properties, live_agreements=0, now=NOW)
    assert decision.reject is None and decision.counter is not None
    assert decision.counter["golem.com.payment.debit-notes.accept-timeout?"] == 100
    assert "golem.com.scheme.payu.debit-note.interval-sec?" not in decision.counter


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"golem.com.payment.chosen-platform": None}, "does not specify"),
        ({"golem.com.payment.chosen-platform": "erc20-polygon-glm"}, "not supported"),
        ({"golem.srv.comp.expiration": int((NOW + 60) * 1000)}, "less than 5m"),
        ({"golem.srv.comp.expiration": int((NOW + 3600) * 1000)}, "more than 30m"),
        ({"golem.com.payment.debit-notes.accept-timeout?": 500}, "above 240"),
    ],
)
def test_demands_real_providers_refuse(change: dict, reason: str) -> None:
    demand = {k: v for k, v in dict(DEMAND, **change).items() if v is not None}
    decision = Negotiator().on_proposal(demand, {}, live_agreements=0, now=NOW)
    assert decision.reject is not None and reason in decision.reject


def test_capacity_and_scripted_rejections() -> None:
    assert Negotiator().on_agreement(DEMAND, live_agreements=1, now=NOW) == "No capacity available"
    assert Negotiator(max_agreements=2).on_agreement(DEMAND, live_agreements=1, now=NOW) is None
    assert (
        Negotiator(reject_agreements="no").on_agreement(DEMAND, live_agreements=0, now=NOW) == "no"
    )


def test_linear_price() -> None:
    offer = OfferSpec(price_cpu_sec="0.1", price_duration_sec="0.01", price_start="1")
    assert offer.cost(10, 100) == Decimal(3)


# -- settings and URLs ---------------------------------------------------------------------


def test_daemon_environment_pins_everything_to_loopback() -> None:
    settings = DaemonSettings(
        data_dir="/d", api_port=1234, gsb_port=4321, app_key="k", rpc_url="http://127.0.0.1:9999"
    )
    env = settings.daemon_environ(
        {"YAGNA_APPKEY": "user", "HTTPS_PROXY": "http://corp:3128", "PATH": "/bin"}
    )
    assert env["PATH"] == "/bin" and "YAGNA_APPKEY" not in env
    assert env["GSB_URL"] == "tcp://127.0.0.1:4321" and env["CENTRAL_NET_HOST"] == "127.0.0.1:4321"
    assert env["YA_NET_TYPE"] == "central" and env["HTTPS_PROXY"] == "http://127.0.0.1:9"
    assert (
        env["HOODI_GETH_ADDR"] == "http://127.0.0.1:9999"  # hoodi: the default network
        and env["HOLESKY_GETH_ADDR"] == "http://127.0.0.1:9"
        and env["POLYGON_GETH_ADDR"] == "http://127.0.0.1:9"
    )
    with pytest.raises(ValueError):
        DaemonSettings(
            data_dir="/d", api_port=1, gsb_port=12345, app_key="k"
        )  # 5 digits: DNS fallback


def test_transfer_urls() -> None:
    assert container_path("container:/golem/input/a") == "/golem/input/a"
    assert container_path("/golem/output/b") == "/golem/output/b"
    assert container_path("http://x/y") is None
    assert split_hash("hash:sha3:" + "ab" * 32 + ":http://x/y") == ("ab" * 32, "http://x/y")
    with pytest.raises(TransferError):
        split_hash("hash:md5:00:http://x")


def test_a_local_network_runs_hoodi_unless_told_and_refuses_unknown_networks() -> None:
    from golem_tasks.localnet import LocalNet

    assert LocalNet(providers=0).network == "hoodi"
    assert DaemonSettings(data_dir="/d", api_port=1, gsb_port=2, app_key="k").network == "hoodi"
    assert OfferSpec().platform == "erc20-hoodi-tglm"
    with pytest.raises(ValueError, match="unknown payment network 'goerli'"):
        LocalNet(providers=0, network="goerli")
