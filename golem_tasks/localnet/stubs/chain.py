"""A loopback Ethereum JSON-RPC stub: just enough chain for yagna's erc20 driver.

The driver checks balances before it accepts an allocation. It asks for the chain id,
the latest block (whose timestamp must be recent) and calls the Golem wrapper contract's
``callWithDetails(address,bytes)`` around ``balanceOf``; the answer must decode as
``(uint256 chainId, uint256 blockNumber, uint256 blockTimestamp, uint256 callerBalance,
bytes callResult)`` (research/yagna-offline.md, "Payment"). Everybody is rich here.

Transactions the driver sends after an invoice is accepted are recorded and never
mined, so payouts never confirm: this is a stub, not a chain.

Usage::

    with ChainStub() as chain:          # binds 127.0.0.1 on a free port
        YagnaDaemon(workdir, rpc_url=chain.url)
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, Dict, List, Type

from .loopback import LoopbackServer

logger = logging.getLogger(__name__)

HOLESKY_CHAIN_ID = 17000
HOODI_CHAIN_ID = 560048
#: The chain id the erc20 driver expects on each payment network it knows.
CHAIN_IDS = {"hoodi": HOODI_CHAIN_ID, "holesky": HOLESKY_CHAIN_ID, "sepolia": 11155111, "amoy": 80002,
             "polygon": 137, "mainnet": 1}

_CALL_WITH_DETAILS = "863e0a02"  # callWithDetails(address,bytes)
_BALANCE_OF = "70a08231"  # balanceOf(address)
_ALLOWANCE = "dd62ed3e"  # allowance(address,address)

#: Roughly one block per 12 s since this moment, so block numbers grow like a chain's.
_GENESIS = 1_700_000_000


def _word(value: int) -> str:
    return f"{value:064x}"


def _hash(number: int) -> str:
    return "0x" + hashlib.sha256(str(number).encode()).hexdigest()


def _encode_call_details(
    chain_id: int, block: int, timestamp: int, caller_balance: int, result: bytes
) -> str:
    """ABI-encode ``tuple(uint256,uint256,uint256,uint256,bytes)`` as a function result.

    A tuple with a dynamic member is itself dynamic: one offset word, then the tuple.
    """
    padded = result + b"\0" * (-len(result) % 32)
    head = _word(chain_id) + _word(block) + _word(timestamp) + _word(caller_balance) + _word(5 * 32)
    return "0x" + _word(32) + head + _word(len(result)) + padded.hex()


class ChainStub(LoopbackServer):
    """A threaded JSON-RPC server on 127.0.0.1 that plays an Ethereum node.

    Args:
        port: 0 picks a free port.
        chain_id: the id the driver expects for its network (:data:`CHAIN_IDS`; hoodi by default).
        balance: every account's token and native balance, in wei (default 10**24,
            i.e. one million tGLM and tETH).

    Attributes:
        calls: names of the RPC methods received, in order (tests read it).
        transactions: raw transactions the driver tried to send.
    """

    name = "chain stub"

    def __init__(
        self, *, port: int = 0, chain_id: int = HOODI_CHAIN_ID, balance: int = 10**24
    ) -> None:
        self.chain_id = chain_id
        self.balance = balance
        self.calls: List[str] = []
        self.transactions: List[str] = []
        super().__init__(port=port)
        self._lock = threading.Lock()
        self._methods: Dict[str, Callable[[List[Any]], Any]] = {
            "eth_chainId": lambda p: hex(self.chain_id),
            "net_version": lambda p: str(self.chain_id),
            "web3_clientVersion": lambda p: "golem-tasks-chain-stub",
            "eth_blockNumber": lambda p: hex(self._block()[0]),
            "eth_getBlockByNumber": self._get_block,
            "eth_getBalance": lambda p: hex(self.balance),
            "eth_call": self._call,
            "eth_getTransactionCount": lambda p: hex(self._nonce()),
            "eth_gasPrice": lambda p: hex(2 * 10**9),
            "eth_maxPriorityFeePerGas": lambda p: hex(10**9),
            "eth_estimateGas": lambda p: hex(100_000),
            "eth_feeHistory": self._fee_history,
            "eth_sendRawTransaction": self._send_raw,
            "eth_getTransactionReceipt": lambda p: None,  # never mined
            "eth_getTransactionByHash": lambda p: None,
        }

    def _handler(self) -> Type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = stub.handle(self.rfile.read(length))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("chain stub: " + format, *args)

        return Handler

    # -- JSON-RPC ------------------------------------------------------------------

    def handle(self, body: bytes) -> bytes:
        """Answer one JSON-RPC request or batch (bytes in, bytes out)."""
        try:
            request = json.loads(body)
        except ValueError:
            return json.dumps(
                {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
            ).encode()
        if isinstance(request, list):
            return json.dumps([self._answer(r) for r in request]).encode()
        return json.dumps(self._answer(request)).encode()

    def _answer(self, request: Dict[str, Any]) -> Dict[str, Any]:
        method = request.get("method", "")
        with self._lock:
            self.calls.append(method)
        reply: Dict[str, Any] = {"jsonrpc": "2.0", "id": request.get("id")}
        handler = self._methods.get(method)
        if handler is None:
            logger.warning("chain stub: unsupported method %s", method)
            reply["error"] = {
                "code": -32601,
                "message": f"method {method} not supported by the stub",
            }
            return reply
        try:
            reply["result"] = handler(list(request.get("params") or []))
        except Exception as exc:  # noqa: BLE001 - a bad request must not kill the server thread
            logger.warning("chain stub: %s failed: %r", method, exc)
            reply["error"] = {"code": -32602, "message": str(exc)}
        return reply

    def _block(self) -> "tuple[int, int]":
        now = int(time.time())
        return (now - _GENESIS) // 12, now

    def _get_block(self, params: List[Any]) -> Dict[str, Any]:
        number, timestamp = self._block()
        zero_hash = "0x" + "00" * 32
        # Every field of rust-web3's Block: the driver's endpoint check decodes them all.
        return {
            "number": hex(number),
            "hash": _hash(number),
            "parentHash": _hash(number - 1),
            "sha3Uncles": zero_hash,
            "miner": "0x" + "00" * 20,
            "stateRoot": zero_hash,
            "transactionsRoot": zero_hash,
            "receiptsRoot": zero_hash,
            "logsBloom": "0x" + "00" * 256,
            "difficulty": "0x0",
            "totalDifficulty": "0x0",
            "extraData": "0x",
            "mixHash": zero_hash,
            "nonce": "0x" + "00" * 8,
            "size": hex(1000),
            "timestamp": hex(timestamp),
            "baseFeePerGas": hex(10**9),
            "gasLimit": hex(30_000_000),
            "gasUsed": hex(0),
            "transactions": [],
            "uncles": [],
        }

    def _call(self, params: List[Any]) -> str:
        data = str((params[0] or {}).get("data") or (params[0] or {}).get("input") or "0x")[2:]
        selector = data[:8]
        if selector == _CALL_WITH_DETAILS:
            # args: address (word 0), offset of bytes (word 1); bytes: length, data
            offset = int(data[8 + 64 : 8 + 128], 16) * 2
            length = int(data[8 + offset : 8 + offset + 64], 16)
            inner = data[8 + offset + 64 : 8 + offset + 64 + 2 * length]
            number, timestamp = self._block()
            result = bytes.fromhex(self._plain_call(inner[:8]))
            return _encode_call_details(self.chain_id, number, timestamp, self.balance, result)
        return "0x" + self._plain_call(selector)

    def _plain_call(self, selector: str) -> str:
        if selector in (_BALANCE_OF, _ALLOWANCE):
            return _word(self.balance)
        return _word(0)

    def _nonce(self) -> int:
        with self._lock:
            return len(self.transactions)

    def _fee_history(self, params: List[Any]) -> Dict[str, Any]:
        count = int(str(params[0]), 0) if params else 1
        number, _ = self._block()
        return {
            "oldestBlock": hex(number - count + 1),
            "baseFeePerGas": [hex(10**9)] * (count + 1),
            "gasUsedRatio": [0.5] * count,
            "reward": [[hex(10**9)] for _ in range(count)],
        }

    def _send_raw(self, params: List[Any]) -> str:
        raw = str(params[0])
        with self._lock:
            self.transactions.append(raw)
        return "0x" + hashlib.sha256(bytes.fromhex(raw[2:])).hexdigest()
