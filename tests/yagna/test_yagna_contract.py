"""The contract check itself: the specs are there and valid, every deviation it allows is
needed (a real daemon answer fails the bare spec) and enough, and it catches real
mistakes. Every other test's exchanges go through it too (conftest.py ``rsps``)."""

import json
from pathlib import Path

import pytest

from .yagna_contract import DEVIATIONS, load_book, skip_reason
from .yagna_samples import API_URL, APP_KEY, debit_note, exe_result, runtime_event

REASON = skip_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

JSON = {"Content-Type": "application/json"}
AUTH = {"Authorization": f"Bearer {APP_KEY}"}
VERSION = {"current": {"version": "0.17.6", "name": "v0.17.6", "seen": False, "releaseTs": "2025-10-04T10:00:00"},
           "pending": None}
ALLOCATION_REQUEST = {"paymentPlatform": "erc20-holesky-tglm", "totalAmount": "5", "timeout": "2025-10-04T14:00:00Z",
                      "makeDeposit": False}
ALLOCATION = {"allocationId": "AL", "address": "0xa", "paymentPlatform": "erc20-holesky-tglm", "totalAmount": "5",
              "spentAmount": "0", "remainingAmount": "5", "timestamp": "2025-10-04T12:00:00Z"}


def exchange(method, path, status, answer=None, *, body=None, query="", answer_type="application/json",
             headers=None):
    """(method, url, headers, body, status, response headers, response body) for check_exchange."""
    request_headers = {**AUTH, **(JSON if body is not None else {}), **(headers or {})}
    raw = answer if isinstance(answer, bytes) or answer is None else json.dumps(answer).encode()
    return (method, API_URL + path + (f"?{query}" if query else ""), request_headers,
            None if body is None else json.dumps(body).encode(), status,
            {"Content-Type": answer_type} if raw else {}, raw, API_URL)


# One real daemon exchange per deviation: it fails the bare spec, passes with DEVIATIONS.
NEEDS = {
    "created-is-200": exchange("POST", "/market-api/v1/demands/S/proposals/P", 200, "D1",
                               body={"properties": {}, "constraints": "()"}),
    "terminate-is-200-empty": exchange("POST", "/market-api/v1/agreements/AG/terminate", 200, b"",
                                       body={"message": "done"}),
    "null-body": exchange("DELETE", "/activity-api/v1/activity/AC", 200, b"null",
                          query="timeout=10.0"),
    "activity-408": exchange("GET", "/activity-api/v1/activity/AC/exec/BA", 408, {"message": "Timeout"},
                             query="timeout=5.0&commandIndex=1"),
    "released-allocation-410": exchange("POST", "/payment-api/v1/invoices/IN/accept", 410,
                                        {"message": "Allocation released"},
                                        body={"totalAmountAccepted": "1", "allocationId": "AL"}, query="timeout=15.0"),
    "result-output-null": exchange("GET", "/activity-api/v1/activity/AC/exec/BA", 200, [exe_result(0)],
                                   query="timeout=5.0"),
    "state-next-null": exchange("GET", "/activity-api/v1/activity/AC/state", 200, {"state": ["Ready", None]}),
    "version-pending-null": exchange("GET", "/version/get", 200, VERSION),
    "payment-platform-oneof": exchange("POST", "/payment-api/v1/allocations", 201, ALLOCATION,
                                       body=ALLOCATION_REQUEST),
    "error-message-null": exchange("GET", "/payment-api/v1/debitNotes/DN", 404, {"message": None}),
    "401-plain-text": exchange("GET", "/me", 401, b"Invalid application key", answer_type="text/plain"),
    "allocation-problem-json": exchange("POST", "/payment-api/v1/allocations", 400,
                                        {"type": "about:blank", "detail": "Not enough funds"},
                                        body=ALLOCATION_REQUEST, answer_type="application/problem+json"),
    "usage-vector-array": exchange("GET", "/payment-api/v1/debitNotes/DN", 200,
                                   {**debit_note(), "usageCounterVector": [12.5, 3.0]}),
    "deploy-volume-kinds": exchange("POST", "/activity-api/v1/activity/AC/exec", 200, "BA", body={
        "text": json.dumps([{"deploy": {"volumes": {"/golem/resource": {"host": {}}}}}, {"start": {}}])}),
    "scan-delete-path": exchange("DELETE", "/market-api/v1/scan/SC", 201, b""),
    "sse-snake-case": exchange("GET", "/activity-api/v1/activity/AC/exec/BA", 200,
                               b'event: runtime\ndata: {"batch_id":"BA"}\n\n', answer_type="text/event-stream",
                               headers={"Accept": "text/event-stream"}),
}


@pytest.fixture(scope="module")
def book():
    return load_book()


def test_every_deviation_has_a_proof():
    assert sorted(NEEDS) == sorted(deviation.name for deviation in DEVIATIONS)
    documented = Path(__file__).parents[2] / "docs" / "daemon-deviations.md"
    for deviation in DEVIATIONS:
        if not deviation.cite.startswith("§"):  # not in the shared notes: our own record has it
            assert deviation.cite.startswith("docs/daemon-deviations.md")
            assert f"`{deviation.name}`" in documented.read_text(), deviation.name


@pytest.mark.parametrize("deviation", DEVIATIONS, ids=lambda d: d.name)
def test_each_deviation_is_needed_and_enough(book, deviation):
    from .yagna_specbook import SpecBook

    without = SpecBook(book.directory, [d for d in DEVIATIONS if d is not deviation])
    assert without.check_exchange(*NEEDS[deviation.name]), f"{deviation.name} is not needed"
    assert book.check_exchange(*NEEDS[deviation.name]) == []


def test_runtime_events_need_the_sse_normalisation(book):
    event = runtime_event(0, {"finished": {"return_code": 1, "message": None}})
    assert book.schema_errors("activity-api.yaml", "/components/schemas/RuntimeEvent", event, write=False)
    assert book.check_runtime_event(event) == []
    assert book.check_runtime_event(runtime_event(0, {"stdout": "x"})) == []
    assert book.check_runtime_event({"index": 0, "kind": {}})  # still catches a broken one


def test_the_specs_are_valid_openapi(book):
    from openapi_spec_validator import validate
    from openapi_spec_validator.readers import read_from_filename

    for name in ("market-api.yaml", "activity-api.yaml", "payment-api.yaml", "gsb-api.yaml"):
        spec, base_uri = read_from_filename(str(book.directory / name))
        validate(spec, base_uri=base_uri)


@pytest.mark.parametrize("method,path,operation_id", [
    ("GET", "/me", "getIdentity"),
    ("GET", "/version/get", "getVersion"),
    ("POST", "/market-api/v1/demands", "subscribeDemand"),
    ("DELETE", "/market-api/v1/demands/S", "unsubscribeDemand"),
    ("GET", "/market-api/v1/demands/S/events", "collectOffers"),
    ("POST", "/market-api/v1/demands/S/proposals/P", "counterProposalDemand"),
    ("GET", "/market-api/v1/demands/S/proposals/P", "getProposalOffer"),
    ("POST", "/market-api/v1/demands/S/proposals/P/reject", "rejectProposalOffer"),
    ("POST", "/market-api/v1/agreements", "createAgreement"),
    ("POST", "/market-api/v1/agreements/A/confirm", "confirmAgreement"),
    ("POST", "/market-api/v1/agreements/A/wait", "waitForApproval"),
    ("GET", "/market-api/v1/agreements/A", "getAgreement"),
    ("POST", "/market-api/v1/agreements/A/terminate", "terminateAgreement"),
    ("POST", "/market-api/v1/agreements/A/cancel", "cancelAgreement"),
    ("GET", "/market-api/v1/agreementEvents", "collectAgreementEvents"),
    ("POST", "/activity-api/v1/activity", "createActivity"),
    ("POST", "/activity-api/v1/activity/A/exec", "exec"),
    ("GET", "/activity-api/v1/activity/A/exec/B", "getExecBatchResults"),
    ("GET", "/activity-api/v1/activity/A/state", "GetActivityState"),
    ("DELETE", "/activity-api/v1/activity/A", "DestroyActivity"),
    ("POST", "/payment-api/v1/allocations", "createAllocation"),
    ("GET", "/payment-api/v1/allocations/A", "getAllocation"),
    ("DELETE", "/payment-api/v1/allocations/A", "releaseAllocation"),
    ("GET", "/payment-api/v1/demandDecorations", "getDemandDecorations"),
    ("GET", "/payment-api/v1/requestorAccounts", "getRequestorAccounts"),
    ("GET", "/payment-api/v1/debitNoteEvents", "getDebitNoteEvents"),
    ("GET", "/payment-api/v1/debitNotes/D", "getDebitNote"),
    ("POST", "/payment-api/v1/debitNotes/D/accept", "acceptDebitNote"),
    ("GET", "/payment-api/v1/invoiceEvents", "getInvoiceEvents"),
    ("GET", "/payment-api/v1/invoices/I", "getInvoice"),
    ("POST", "/payment-api/v1/invoices/I/accept", "acceptInvoice"),
    ("POST", "/gsb-api/v1/services", "bindServices"),
    ("DELETE", "/gsb-api/v1/services/S", "unbindServices"),
])
def test_every_endpoint_the_client_uses_is_in_the_specs(book, method, path, operation_id):
    assert book.find(method, path).operation_id == operation_id


@pytest.mark.parametrize("case,problem", [
    (exchange("GET", "/market-api/v1/nowhere", 200, []), "not in the yagna specs"),
    (exchange("POST", "/market-api/v1/agreements", 200, "AG", body={"proposalId": "P"}), "'validTo' is a required"),
    (exchange("GET", "/market-api/v1/demands/S/events", 200, [], query="maxEvents=0"), "query maxEvents"),
    (exchange("GET", "/market-api/v1/demands/S/events", 200, [], query="pollTimeout=5"), "not in the spec"),
    (exchange("GET", "/payment-api/v1/debitNoteEvents", 200, [], query="afterTimestamp=yesterday"), "date-time"),
    (exchange("GET", "/market-api/v1/agreements/A", 200, {"agreementId": "A"}), "response <body>"),
    (exchange("GET", "/activity-api/v1/activity/A/state", 403, {"message": "x"}, headers={"Authorization": ""}),
     "no Bearer app key"),
    (exchange("GET", "/activity-api/v1/activity/A/state", 502, {"message": "x"}), "status 502 is not in the spec"),
    (exchange("GET", "/payment-api/v1/invoiceEvents", 200,
              [{"eventType": "InvoiceReceivedEvent", "eventDate": "2025-10-04T12:00:00Z"}]), "invoiceId"),
    (exchange("GET", "/market-api/v1/agreementEvents", 200,
              [{"eventType": "AgreementTerminatedEvent", "eventDate": "2025-10-04T12:00:00Z",
                "agreementId": "A"}]), "AgreementTerminatedEvent"),
    (exchange("POST", "/activity-api/v1/activity/A/exec", 200, "B",
              body={"text": json.dumps([{"run": {"entry_point": "/x", "capture": {"stdout": {"atEnd": {
                  "format": "str"}}}}}])}), "exec command #0"),
    (exchange("GET", "/me", 200, {"identity": "0x1"}), "'name' is a required"),
])
def test_the_check_catches_mistakes(book, case, problem):
    problems = book.check_exchange(*case)
    assert any(problem in text for text in problems), problems


def test_a_clean_exchange_passes(book):
    assert book.check_exchange(*exchange("GET", "/market-api/v1/demands/S/events", 200, [],
                                         query="timeout=5.0&maxEvents=20")) == []
