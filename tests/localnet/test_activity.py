"""Activities on local providers: exe-unit over GSB, ExeScript, heartbeat, billing.

Requestor side in plain REST (``requestor.py``) against the real daemon.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
from decimal import Decimal
from typing import Any, Dict, Iterator, List, NamedTuple

import pytest

from golem_tasks.localnet.exeunit.gsb import GsbClient
from golem_tasks.localnet.provider.negotiator import Negotiator
from golem_tasks.localnet.network import LocalNet
from golem_tasks.localnet.provider.offer import OfferSpec

from .conftest import assert_no_daemon_left, assert_no_dns_attempts, sockets_of
from .requestor import PlainRequestor, iso_in

pytestmark = pytest.mark.slow

CAPTURE: Dict[str, Any] = {"stdout": {"atEnd": {}}, "stderr": {"atEnd": {}}}


def sh(line: str, capture: Any = CAPTURE) -> Dict[str, Any]:
    return {"run": {"entry_point": "/bin/sh", "args": ["-c", line], "capture": capture}}


@pytest.fixture(scope="module")
def net(exeunit_ready: str) -> Iterator[LocalNet]:
    # Debit notes every 2 s so a short test sees several.
    negotiators = [Negotiator(offer=OfferSpec(debit_note_interval=2)) for _ in range(2)]
    local = LocalNet(providers=2, negotiators=negotiators, binary=exeunit_ready).start()
    data_dir = local.daemon.settings.data_dir if local.daemon else ""
    try:
        yield local
    finally:
        local.stop()
        assert_no_daemon_left(data_dir)


class Engaged(NamedTuple):
    requestor: PlainRequestor
    allocation: str
    agreement: str
    activity: str
    since: str


@pytest.fixture
def engaged(net: LocalNet) -> Iterator[Engaged]:
    assert net.requestor is not None
    with PlainRequestor(net.api_url, net.requestor.app_key) as requestor:
        since = iso_in(-1)
        allocation = requestor.allocate()["allocationId"]
        agreement = requestor.engage(net.providers[0].node_id, allocation)
        activity = requestor.create_activity(agreement)
        try:
            yield Engaged(requestor, allocation, agreement, activity, since)
        finally:
            requestor.http.delete(
                f"{net.api_url}/activity-api/v1/activity/{activity}", params={"timeout": 10}
            )
            requestor.http.post(
                f"{net.api_url}/market-api/v1/agreements/{agreement}/terminate",
                json={"message": "end"},
            )


def test_deploy_start_run_with_output_and_exit_codes(engaged: Engaged) -> None:
    r, activity = engaged.requestor, engaged.activity
    assert r.state(activity) == ["Initialized", None]

    early = r.run_script(activity, [sh("true")])
    assert (
        early[0]["result"] == "Error" and "deploy() command is expected now" in early[0]["message"]
    )

    results = r.run_script(activity, [{"deploy": {}}, {"start": {}}, sh("echo out; echo err >&2")])
    assert [x["result"] for x in results] == ["Ok", "Ok", "Ok"]
    assert (
        results[2]["stdout"] == "out\n"
        and results[2]["stderr"] == "err\n"
        and results[2]["isBatchFinished"]
    )
    assert r.state(activity) == ["Ready", None]

    failed = r.run_script(activity, [sh("exit 7"), sh("echo never")])
    assert len(failed) == 1 and failed[0]["result"] == "Error" and failed[0]["isBatchFinished"]
    assert failed[0]["message"] == "ExeScript command exited with code 7"

    discarded = r.run_script(activity, [{"run": {"entry_point": "/bin/echo", "args": ["x"]}}])
    assert discarded[0]["stdout"] is None  # no capture: output discarded, as in yagna


def test_results_by_command_index(engaged: Engaged) -> None:
    r, activity = engaged.requestor, engaged.activity
    r.run_script(activity, [{"deploy": {}}, {"start": {}}])
    batch = r.exec(activity, [sh("echo a"), sh("sleep 3; echo b")])
    first = r.results(activity, batch, timeout=5, commandIndex=0)
    assert (
        first.status_code == 200
        and first.json()[0]["stdout"] == "a\n"
        and first.json()[0]["isBatchFinished"]
    )
    late = r.results(activity, batch, timeout=0.5, commandIndex=1)
    assert late.status_code == 408  # command 1 still sleeping


def test_heartbeat_keeps_the_activity_alive_and_billing_follows(
    net: LocalNet, engaged: Engaged
) -> None:
    r, activity = engaged.requestor, engaged.activity
    r.run_script(activity, [{"deploy": {}}, {"start": {}}])
    # Past the daemon's 5 s "unresponsive" limit: only the usage heartbeat keeps it Ready.
    slept_at = time.time()
    time.sleep(6.5)
    assert r.state(activity) == ["Ready", None]
    usage = r.request("GET", f"/activity-api/v1/activity/{activity}/usage", 200)
    assert (
        len(usage["currentUsage"]) == 2
        and usage["currentUsage"][1] >= 6
        and usage["timestamp"] > slept_at  # a heartbeat came during the wait (order, not speed)
    )

    notes = r.request(
        "GET",
        "/payment-api/v1/debitNoteEvents",
        200,
        params={"afterTimestamp": engaged.since, "timeout": 1},
    )
    received = [e["debitNoteId"] for e in notes if e["eventType"] == "DebitNoteReceivedEvent"]
    assert len(received) >= 2
    last = r.request("GET", f"/payment-api/v1/debitNotes/{received[-1]}", 200)
    assert last["activityId"] == activity and Decimal(last["totalAmountDue"]) > 0
    accept = {"totalAmountAccepted": last["totalAmountDue"], "allocationId": engaged.allocation}
    r.request("POST", f"/payment-api/v1/debitNotes/{received[-1]}/accept", 200, json=accept)

    r.destroy(activity)
    r.terminate(engaged.agreement)
    invoice = _invoice_for(r, engaged)
    assert invoice["activityIds"] == [activity]
    assert Decimal(invoice["amount"]) >= Decimal(last["totalAmountDue"])
    accept = {"totalAmountAccepted": invoice["amount"], "allocationId": engaged.allocation}
    r.request("POST", f"/payment-api/v1/invoices/{invoice['invoiceId']}/accept", 200, json=accept)
    allocation = r.request("GET", f"/payment-api/v1/allocations/{engaged.allocation}", 200)
    assert Decimal(allocation["spentAmount"]) == Decimal(invoice["amount"])


def _invoice_for(r: PlainRequestor, engaged: Engaged) -> Dict[str, Any]:
    end = time.monotonic() + 15
    while time.monotonic() < end:
        events = r.request(
            "GET",
            "/payment-api/v1/invoiceEvents",
            200,
            params={"afterTimestamp": engaged.since, "timeout": 2},
        )
        for event in events:
            invoice = r.request("GET", f"/payment-api/v1/invoices/{event['invoiceId']}", 200)
            if invoice["agreementId"] == engaged.agreement:
                return dict(invoice)
    raise AssertionError("no invoice")


class _Files(http.server.BaseHTTPRequestHandler):
    uploads: Dict[str, bytes] = {}

    def do_GET(self) -> None:
        data = b"from http\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:
        self.uploads[self.path] = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_transfers_http_and_gftp(net: LocalNet, engaged: Engaged) -> None:
    r, activity = engaged.requestor, engaged.activity
    assert net.requestor is not None and net.daemon is not None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    payload = bytes(range(256)) * 400  # 100 kB: three GFTP chunks
    uploaded: Dict[Any, Any] = {}

    def gftp(address: str, caller: str, message: Any) -> Any:  # the requestor's GFTP service
        name = address.rsplit("/", 1)[1]
        if name == "GetMetadata":
            return {"Ok": {"fileSize": len(payload)}}
        if name == "GetChunk":
            return {
                "Ok": {
                    "offset": message["offset"],
                    "content": payload[message["offset"] : message["offset"] + message["size"]],
                }
            }
        if name == "UploadChunk":
            uploaded[message["chunk"]["offset"]] = bytes(message["chunk"]["content"])
        elif name == "UploadFinished":
            uploaded["hash"] = message["hash"]
        return {"Ok": None}

    me = net.requestor.node_id
    try:
        with GsbClient(net.daemon.settings.gsb_url, caller=me) as bus:
            bus.register("/public/gftp/in-1", gftp)
            bus.register("/public/gftp/out-1", gftp)
            script: List[Dict[str, Any]] = [
                {"deploy": {}},
                {"start": {}},
                {"transfer": {"from": f"{base}/a.txt", "to": "container:/golem/input/a.txt"}},
                {"transfer": {"from": f"gftp://{me}/in-1", "to": "container:/golem/input/big.bin"}},
                # $GOLEM_* rather than /golem/... inside the script: without bubblewrap the
                # host sandbox maps arguments and these variables, not script text.
                sh(
                    'cat "$GOLEM_INPUT/a.txt"; cp "$GOLEM_INPUT/big.bin" "$GOLEM_OUTPUT/o.bin";'
                    ' echo done > "$GOLEM_OUTPUT/r.txt"'
                ),
                {"transfer": {"from": "container:/golem/output/r.txt", "to": f"{base}/r.txt"}},
                {"transfer": {"from": "/golem/output/o.bin", "to": f"gftp://{me}/out-1"}},
            ]
            results = r.run_script(activity, script)
    finally:
        server.shutdown()
        server.server_close()
    assert [x["result"] for x in results] == ["Ok"] * 7, results
    # After a whole flow with payments and transfers, the daemon still holds only
    # loopback TCP sockets and no UDP socket (no DNS look-up was ever opened).
    assert net.daemon is not None and net.daemon.pid is not None
    tcp, udp = sockets_of(net.daemon.pid)
    assert all(address.startswith("0100007F:") for address in tcp) and udp == []
    assert_no_dns_attempts(net.daemon.log_path)
    assert results[4]["stdout"] == "from http\n"
    assert _Files.uploads["/r.txt"] == b"done\n"
    assert b"".join(uploaded[k] for k in sorted(k for k in uploaded if k != "hash")) == payload
    assert uploaded["hash"] == hashlib.sha3_256(payload).hexdigest()

    missing = r.run_script(
        activity, [{"transfer": {"from": "container:/golem/output/nope", "to": f"{base}/x"}}]
    )
    assert missing[0]["result"] == "Error" and "Transfer error" in missing[0]["message"]


def test_streamed_output_over_sse(engaged: Engaged) -> None:
    r, activity = engaged.requestor, engaged.activity
    r.run_script(activity, [{"deploy": {}}, {"start": {}}])
    batch = r.exec(activity, [sh("sleep 0.5; echo streamed; exit 3", {"stdout": {"stream": {}}})])
    url = f"{r.api_url}/activity-api/v1/activity/{activity}/exec/{batch}"
    kinds = []
    with r.http.get(
        url, headers={"Accept": "text/event-stream"}, stream=True, timeout=15
    ) as stream:
        assert stream.status_code == 200
        for line in stream.iter_lines():
            if line.startswith(b"data:"):
                kinds.append(line)
                if b'"finished"' in line:
                    break
    assert b'"stdout":"streamed\\n"' in kinds[-2] and b'"return_code":3' in kinds[-1]


def test_killed_exe_unit_terminates_the_activity(net: LocalNet, engaged: Engaged) -> None:
    r, activity = engaged.requestor, engaged.activity
    r.run_script(activity, [{"deploy": {}}, {"start": {}}])
    batch = r.exec(activity, [sh("sleep 30")])
    agent = net.agents[0]
    assert agent.activities is not None
    assert agent.activities.crash(activity) == [activity]
    answer = r.results(activity, batch, timeout=2)
    assert answer.status_code == 500, answer.text  # GSB error: the exe-unit is gone
    state = r.request("GET", f"/activity-api/v1/activity/{activity}/state", 200)
    assert state["state"][0] == "Terminated" and state["reason"] == "execution aborted"
