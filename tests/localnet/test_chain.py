"""The loopback JSON-RPC stub: unit checks, then allocations through the real daemon."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator

import pytest
import requests

from golem_tasks.localnet.stubs.chain import HOODI_CHAIN_ID, ChainStub
from golem_tasks.localnet.network import LocalNet

from .conftest import assert_no_daemon_left
from .requestor import PLATFORM, PlainRequestor


def _rpc(chain: ChainStub, method: str, *params: Any) -> Dict[str, Any]:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    ).encode()
    return dict(json.loads(chain.handle(body)))


def _words(hex_data: str) -> list:
    data = hex_data[2:]
    return [int(data[i : i + 64], 16) for i in range(0, len(data), 64)]


def test_chain_id_and_recent_block() -> None:
    chain = ChainStub()
    assert int(_rpc(chain, "eth_chainId")["result"], 16) == HOODI_CHAIN_ID
    block = _rpc(chain, "eth_getBlockByNumber", "latest", False)["result"]
    assert {"number", "timestamp", "sha3Uncles", "logsBloom", "transactions"} <= set(block)


def test_call_with_details_wraps_balance_of() -> None:
    chain = ChainStub(balance=12345)
    owner = "00" * 12 + "ab" * 20
    inner = "70a08231" + owner  # balanceOf(owner)
    data = "0x863e0a02" + owner + f"{64:064x}" + f"{len(inner) // 2:064x}" + inner + "00" * 28
    result = _rpc(
        chain,
        "eth_call",
        {"to": "0xE168bCa171ccf51066E2106d8955BF22705a6905", "data": data},
        "latest",
    )["result"]
    words = _words(result)
    # offset, then tuple(chainId, block, timestamp, callerBalance, offset of bytes),
    # then the bytes: length, balance
    assert words[0] == 32 and words[1] == HOODI_CHAIN_ID and words[4] == 12345 and words[5] == 160
    assert words[6] == 32 and words[7] == 12345


def test_batches_and_unknown_methods() -> None:
    chain = ChainStub()
    batch = [
        {"jsonrpc": "2.0", "id": i, "method": m, "params": []}
        for i, m in enumerate(["eth_chainId", "eth_foo"])
    ]
    answers = json.loads(chain.handle(json.dumps(batch).encode()))
    assert answers[0]["result"] == hex(HOODI_CHAIN_ID)
    assert answers[1]["error"]["code"] == -32601
    assert chain.calls == ["eth_chainId", "eth_foo"]


def test_serves_on_loopback_and_stops() -> None:
    with ChainStub() as chain:
        url = chain.url
        assert url.startswith("http://127.0.0.1:")
        answer = requests.post(
            url, json={"jsonrpc": "2.0", "id": 7, "method": "eth_chainId"}, timeout=5
        ).json()
        assert answer == {"jsonrpc": "2.0", "id": 7, "result": hex(HOODI_CHAIN_ID)}
    with pytest.raises(requests.ConnectionError):
        requests.post(url, json={}, timeout=5)


@pytest.fixture(scope="module")
def bare_net(yagna_binary: str) -> Iterator[LocalNet]:
    net = LocalNet(providers=0, binary=yagna_binary).start()
    data_dir = net.daemon.settings.data_dir if net.daemon else ""
    try:
        yield net
    finally:
        net.stop()
        assert_no_daemon_left(data_dir)


@pytest.mark.slow
def test_allocation_created_decorated_and_released(bare_net: LocalNet) -> None:
    assert bare_net.requestor is not None and bare_net.chain is not None
    with PlainRequestor(bare_net.api_url, bare_net.requestor.app_key) as client:
        allocation = client.allocate("5")
        assert allocation["paymentPlatform"] == PLATFORM and allocation["remainingAmount"] in (
            "5",
            "5.0",
        )
        assert {"eth_chainId", "eth_getBlockByNumber", "eth_call"} <= set(bare_net.chain.calls)

        path = f"/payment-api/v1/allocations/{allocation['allocationId']}"
        decoration = client.request(
            "GET",
            "/payment-api/v1/demandDecorations",
            200,
            params={"allocationIds": allocation["allocationId"]},
        )
        keys = {p["key"] for p in decoration["properties"]}
        assert f"golem.com.payment.platform.{PLATFORM}.address" in keys

        client.request("DELETE", path, 200)
        client.allocations.remove(allocation["allocationId"])
        client.request("GET", path, 404)  # yagna 0.17.6 answers 404, not 410, once released


@pytest.mark.slow
def test_allocation_above_the_balance_is_refused(bare_net: LocalNet) -> None:
    assert bare_net.requestor is not None
    with PlainRequestor(bare_net.api_url, bare_net.requestor.app_key) as client:
        body: Dict[str, Any] = {
            "totalAmount": "2000000",
            "paymentPlatform": PLATFORM,
            "makeDeposit": False,
        }
        response = client.http.post(
            bare_net.api_url + "/payment-api/v1/allocations", json=body, timeout=30
        )
        assert response.status_code == 400, response.text
        assert "insufficient" in response.text.lower()
