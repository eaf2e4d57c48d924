"""PaymentApi: allocations, decorations, debit notes, invoices; amounts stay Decimal."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from responses import matchers

from golem_tasks.errors import ApiError, ConfigurationError
from golem_tasks.providers.yagna import Gone, NotFound
from golem_tasks.providers.yagna.payment.models import Account, MarketDecoration

from .yagna_samples import (
    NODE,
    PAYMENT,
    PLATFORM,
    PROVIDER,
    TS,
    allocation,
    debit_note,
    decoration,
    invoice,
)

TIMEOUT = datetime(2025, 10, 4, 14, 0, tzinfo=timezone.utc)


def test_create_allocation_sends_no_read_only_fields(client, rsps):
    body = {"paymentPlatform": PLATFORM, "totalAmount": "5.0", "timeout": "2025-10-04T14:00:00Z",
            "makeDeposit": False, "address": NODE}
    rsps.post(PAYMENT + "/allocations", status=201, json=allocation(),
              match=[matchers.json_params_matcher(body, strict_match=True)])
    result = client.payment.create_allocation(total_amount=Decimal("5.0"), payment_platform=PLATFORM,
                                              timeout=TIMEOUT, address=NODE)
    assert result.allocation_id == "AL" and result.total_amount == Decimal("5")
    assert isinstance(result.remaining_amount, Decimal) and result.timeout == TIMEOUT


def test_create_allocation_leaves_the_address_to_the_daemon(client, rsps):
    body = {"paymentPlatform": PLATFORM, "totalAmount": "0.0000001", "timeout": "2025-10-04T14:00:00Z",
            "makeDeposit": False}
    rsps.post(PAYMENT + "/allocations", status=201, json=allocation(),
              match=[matchers.json_params_matcher(body, strict_match=True)])
    client.payment.create_allocation(total_amount=Decimal("1E-7"), payment_platform=PLATFORM, timeout=TIMEOUT)


@pytest.mark.parametrize("amount", [0, "-1", "abc", None, 1.5])
def test_create_allocation_checks_the_amount(client, amount):
    with pytest.raises(ConfigurationError, match="total_amount"):
        client.payment.create_allocation(total_amount=amount, payment_platform=PLATFORM, timeout=TIMEOUT)


def test_accept_refuses_float_amounts(client):
    with pytest.raises(ConfigurationError, match="not the float"):
        client.payment.accept_invoice("IN", 0.1, "AL")


def test_create_allocation_checks_the_platform(client):
    with pytest.raises(ConfigurationError, match="payment platform"):
        client.payment.create_allocation(total_amount=1, payment_platform="holesky", timeout=TIMEOUT)


def test_get_allocation(client, rsps):
    rsps.get(PAYMENT + "/allocations/AL", json=allocation(spent="1.25", remaining="3.75"))
    assert client.payment.get_allocation("AL").spent_amount == Decimal("1.25")


def test_get_a_released_allocation(client, rsps):
    rsps.get(PAYMENT + "/allocations/AL", status=410, json={"message": "Allocation [AL] released"})
    with pytest.raises(Gone):
        client.payment.get_allocation("AL")


def test_get_an_unknown_allocation(client, rsps):
    rsps.get(PAYMENT + "/allocations/XX", status=404, json={"message": None})
    with pytest.raises(NotFound, match="no message"):
        client.payment.get_allocation("XX")


def test_release_allocation(client, rsps):
    rsps.delete(PAYMENT + "/allocations/AL", json=None)
    client.payment.release_allocation("AL")


def test_release_twice_is_gone(client, rsps):
    rsps.delete(PAYMENT + "/allocations/AL", status=410, json={"message": "Allocation released"})
    with pytest.raises(Gone):
        client.payment.release_allocation("AL")


def test_demand_decorations(client, rsps):
    rsps.get(PAYMENT + "/demandDecorations", json=decoration(),
             match=[matchers.query_param_matcher({"allocationIds": "AL,AL2"})])
    result = client.payment.get_demand_decorations(["AL", "AL2"])
    assert isinstance(result, MarketDecoration)
    assert result.properties[1] == ("golem.com.payment.protocol.version", "3")


@pytest.mark.parametrize("ids", [[], "AL"])
def test_demand_decorations_need_a_list(client, ids):
    with pytest.raises(ConfigurationError):
        client.payment.get_demand_decorations(ids)


def test_requestor_accounts(client, rsps):
    account = {"platform": PLATFORM, "address": NODE, "driver": "erc20", "network": "holesky",
               "token": "tGLM", "send": True, "receive": False}
    rsps.get(PAYMENT + "/requestorAccounts", json=[account])
    assert client.payment.get_requestor_accounts() == [
        Account(platform=PLATFORM, address=NODE, driver="erc20", network="holesky", token="tGLM",
                send=True, receive=False)]


def test_debit_note_events(client, rsps):
    rsps.get(PAYMENT + "/debitNoteEvents",
             json=[{"eventType": "DebitNoteReceivedEvent", "eventDate": TS, "debitNoteId": "DN"}],
             match=[matchers.query_param_matcher({"timeout": "5.0", "afterTimestamp": "2025-10-04T12:00:00.5Z"})])
    [event] = client.payment.collect_debit_note_events(after_timestamp="2025-10-04T12:00:00.5Z")
    assert event.event_type == "DebitNoteReceivedEvent" and event.debit_note_id == "DN"


def test_get_debit_note_keeps_every_digit(client, rsps):
    rsps.get(PAYMENT + "/debitNotes/DN", json=debit_note("0.000123456789012345678"))
    note = client.payment.get_debit_note("DN")
    assert note.total_amount_due == Decimal("0.000123456789012345678")
    assert note.issuer_id == PROVIDER and note.activity_id == "AC"


def test_accept_debit_note_with_the_exact_amount(client, rsps):
    rsps.post(PAYMENT + "/debitNotes/DN/accept", json=None,
              match=[matchers.json_params_matcher({"totalAmountAccepted": "0.000123456789012345678",
                                                   "allocationId": "AL"}),
                     matchers.query_param_matcher({"timeout": "15.0"})])
    client.payment.accept_debit_note("DN", Decimal("0.000123456789012345678"), "AL")


def test_accept_debit_note_never_writes_scientific_notation(client, rsps):
    rsps.post(PAYMENT + "/debitNotes/DN/accept", json=None,
              match=[matchers.json_params_matcher({"totalAmountAccepted": "0.00000010", "allocationId": "AL"})])
    client.payment.accept_debit_note("DN", Decimal("1.0E-7"), "AL")


def test_accept_debit_note_with_a_released_allocation(client, rsps, waits):
    rsps.post(PAYMENT + "/debitNotes/DN/accept", status=410, json={"message": "Allocation [AL] released"})
    with pytest.raises(Gone):
        client.payment.accept_debit_note("DN", "1", "AL")
    assert waits == []


def test_accept_debit_note_with_a_wrong_amount(client, rsps):
    rsps.post(PAYMENT + "/debitNotes/DN/accept", status=400, json={"message": "Invalid amount accepted"})
    with pytest.raises(ApiError, match="Invalid amount accepted"):
        client.payment.accept_debit_note("DN", "2", "AL")


def test_invoice_events(client, rsps):
    rsps.get(PAYMENT + "/invoiceEvents",
             json=[{"eventType": "InvoiceReceivedEvent", "eventDate": TS, "invoiceId": "IN"}],
             match=[matchers.query_param_matcher({"timeout": "10", "maxEvents": "5",
                                                  "afterTimestamp": "2025-10-04T12:00:00Z"})])
    [event] = client.payment.collect_invoice_events(
        after_timestamp=datetime(2025, 10, 4, 12, tzinfo=timezone.utc), timeout=10, max_events=5)
    assert event.invoice_id == "IN"


def test_get_invoice(client, rsps):
    rsps.get(PAYMENT + "/invoices/IN", json=invoice("0.0100315"))
    result = client.payment.get_invoice("IN")
    assert result.amount == Decimal("0.0100315") and result.activity_ids == ("AC",)


def test_accept_invoice(client, rsps):
    rsps.post(PAYMENT + "/invoices/IN/accept", json=None,
              match=[matchers.json_params_matcher({"totalAmountAccepted": "0.0100315", "allocationId": "AL"}),
                     matchers.query_param_matcher({"timeout": "30"})])
    client.payment.accept_invoice("IN", Decimal("0.0100315"), "AL", timeout=30)
