"""The value objects: from_json/to_json round trips, Decimal amounts, derived facts."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import attrs
import pytest

from golem_tasks.errors import ConfigurationError
from golem_tasks.providers.yagna import LinearPricing, Proposal
from golem_tasks.providers.yagna.activity.models import ActivityState, ExeScriptCommandResult, RuntimeEvent
from golem_tasks.providers.yagna.market.models import Agreement, AgreementEvent, parse_market_event
from golem_tasks.providers.yagna.payment.models import (
    Allocation,
    DebitNote,
    DebitNoteEvent,
    Invoice,
    InvoiceEvent,
    MarketDecoration,
    payment_platform,
    split_payment_platform,
)
from golem_tasks.providers.yagna._http.json import (
    format_decimal,
    format_timestamp,
    parse_decimal,
    parse_timestamp,
)

from .yagna_samples import (
    PLATFORM,
    PROVIDER,
    agreement,
    agreement_event,
    allocation,
    debit_note,
    decoration,
    exe_result,
    invoice,
    proposal,
    proposal_rejected_event,
    runtime_event,
)

UTC = timezone.utc


# -- timestamps and amounts ------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("2025-10-04T12:00:00Z", datetime(2025, 10, 4, 12, tzinfo=UTC)),
    ("2025-10-04T12:00:00.123456789Z", datetime(2025, 10, 4, 12, 0, 0, 123456, tzinfo=UTC)),
    ("2025-10-04T14:00:00.5+02:00", datetime(2025, 10, 4, 12, 0, 0, 500000, tzinfo=UTC)),
    ("2025-10-04T12:00:00-0130", datetime(2025, 10, 4, 13, 30, tzinfo=UTC)),
    ("2025-10-04T12:00:01.5", datetime(2025, 10, 4, 12, 0, 1, 500000, tzinfo=UTC)),  # SSE: naive UTC
])
def test_parse_timestamp(text, expected):
    assert parse_timestamp(text) == expected and parse_timestamp(text).tzinfo is UTC


@pytest.mark.parametrize("bad", ["yesterday", "2025-10-04", 1759579200, None])
def test_parse_timestamp_refuses(bad):
    with pytest.raises((TypeError, ValueError)):
        parse_timestamp(bad)


def test_format_timestamp():
    assert format_timestamp(datetime(2025, 10, 4, 14, tzinfo=timezone(timedelta(hours=2)))) == "2025-10-04T12:00:00Z"
    assert format_timestamp(datetime(2025, 10, 4, 12, 0, 0, 1500, tzinfo=UTC)) == "2025-10-04T12:00:00.001500Z"
    with pytest.raises(ValueError, match="time zone"):
        format_timestamp(datetime(2025, 10, 4))


@pytest.mark.parametrize("value,text", [
    (Decimal("1E-7"), "0.0000001"), ("5", "5"), (Decimal("5.10"), "5.10"), (3, "3"),
    ("123456789.123456789123456789", "123456789.123456789123456789")])
def test_format_decimal_is_plain(value, text):
    assert format_decimal(value) == text


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "1,5", True, None, [1]])
def test_parse_decimal_refuses(bad):
    with pytest.raises((TypeError, ValueError)):
        parse_decimal(bad)


def test_parse_decimal_of_a_float_keeps_its_short_form():
    assert parse_decimal(0.1) == Decimal("0.1")


# -- payment platforms -----------------------------------------------------------------
@pytest.mark.parametrize("kwargs,name", [
    ({}, "erc20-hoodi-tglm"),
    ({"network": "holesky"}, "erc20-holesky-tglm"),
    ({"network": "amoy"}, "erc20-amoy-tglm"),
    ({"network": "polygon"}, "erc20-polygon-glm"),
    ({"mainnet": True}, "erc20-polygon-glm"),
    ({"network": "mainnet"}, "erc20-mainnet-glm"),
    ({"driver": "erc20next", "network": "sepolia"}, "erc20next-sepolia-tglm"),
])
def test_payment_platform(kwargs, name):
    assert payment_platform(**kwargs) == name


@pytest.mark.parametrize("kwargs,match", [
    ({"network": "newnet"}, "unknown payment network 'newnet': use one of hoodi"),
    ({"network": "newnet", "token": "tglm"}, "unknown payment network"),
    ({"network": "goerli"}, "unknown payment network"),
    ({"network": "Holesky"}, "lowercase"),
    ({"token": "tGLM"}, "lowercase"),
    ({"network": "holesky", "mainnet": True}, "test network"),
])
def test_payment_platform_refuses(kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        payment_platform(**kwargs)


def test_split_payment_platform():
    assert split_payment_platform(PLATFORM) == ("erc20", "hoodi", "tglm")
    with pytest.raises(ValueError):
        split_payment_platform("erc20-holesky")


# -- round trips -----------------------------------------------------------------------
@pytest.mark.parametrize("cls,sample", [
    (Proposal, proposal("P1", "Draft", prev="D1")),
    (Allocation, allocation()),
    (DebitNote, debit_note()),
    (Invoice, invoice()),
    (MarketDecoration, decoration()),
    (AgreementEvent, agreement_event("Terminated")),
    (DebitNoteEvent, {"eventType": "DebitNoteRejectedEvent", "eventDate": "2025-10-04T12:00:00Z",
                      "debitNoteId": "DN", "rejection": {"rejectionReason": "BAD_SERVICE",
                                                        "totalAmountAccepted": "0"}}),
    (InvoiceEvent, {"eventType": "InvoiceSettledEvent", "eventDate": "2025-10-04T12:00:00Z", "invoiceId": "IN"}),
    (ExeScriptCommandResult, exe_result(2, "Error", True, "out", "err", "ExeScript command exited with code 1")),
    (ActivityState, {"state": ["Ready", "Terminated"], "reason": "x", "errorMessage": "y"}),
], ids=lambda value: value.__name__ if isinstance(value, type) else "")
def test_round_trip(cls, sample):
    parsed = cls.from_json(sample)
    assert cls.from_json(parsed.to_json()) == parsed
    # Everything the model keeps is written back under the daemon's names.
    written = parsed.to_json()
    assert set(written) <= set(sample) | {"makeDeposit"}


def test_models_are_frozen():
    result = ExeScriptCommandResult.from_json(exe_result(0))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        result.index = 3
    note = DebitNote.from_json(debit_note())
    assert attrs.evolve(note, status="ACCEPTED").status == "ACCEPTED" and note.status == "RECEIVED"


def test_models_are_hashable_even_with_mappings():
    assert len({Proposal.from_json(proposal()), Proposal.from_json(proposal())}) == 1


def test_amounts_are_decimal_and_exact():
    assert Invoice.from_json(invoice("0.30000000000000000001")).amount == Decimal("0.30000000000000000001")
    allocation_value = Allocation.from_json(allocation(total="10", spent="0.1", remaining="9.9"))
    assert allocation_value.spent_amount + allocation_value.remaining_amount == allocation_value.total_amount
    assert all(isinstance(getattr(allocation_value, name), Decimal)
               for name in ("total_amount", "spent_amount", "remaining_amount"))


def test_debit_note_optional_fields():
    data = debit_note()
    del data["paymentDueDate"]
    note = DebitNote.from_json({**data, "previousDebitNoteId": "DN0"})
    assert note.payment_due_date is None and note.previous_debit_note_id == "DN0"


# -- market ----------------------------------------------------------------------------
def test_proposal_facts():
    offer = Proposal.from_json(proposal())
    assert offer.provider_id == PROVIDER and offer.provider_name == "provider-1"
    assert offer.payment_platforms == ("erc20-hoodi-tglm", "erc20-polygon-glm")
    assert offer.debit_note_accept_timeout == 240
    assert offer.timestamp == datetime(2025, 10, 4, 12, 0, 0, 123456, tzinfo=UTC)


def test_proposal_without_a_name_is_named_by_its_id():
    data = proposal()
    del data["properties"]["golem.node.id.name"]
    assert Proposal.from_json(data).provider_name == PROVIDER


def test_proposal_refuses_an_unknown_state():
    with pytest.raises(ValueError):
        Proposal.from_json(proposal(state="Pondering"))


def test_linear_pricing():
    pricing = Proposal.from_json(proposal()).pricing
    assert pricing == LinearPricing(Decimal("0.01"), {"golem.usage.duration_sec": Decimal("0.0001"),
                                                      "golem.usage.cpu_sec": Decimal("0.0002")})
    cost = pricing.cost({"golem.usage.duration_sec": 100, "golem.usage.cpu_sec": Decimal("50")})
    assert cost == Decimal("0.01") + Decimal("0.01") + Decimal("0.01")


@pytest.mark.parametrize("coeffs,vector", [([0.1], ["a"]), ("x", ["a"]), ([0.1, "z"], ["a"]), (None, None)])
def test_linear_pricing_absent_or_malformed(coeffs, vector):
    assert LinearPricing.from_properties({"golem.com.pricing.model.linear.coeffs": coeffs,
                                          "golem.com.usage.vector": vector}) is None


def test_market_events():
    rejected = parse_market_event(proposal_rejected_event("D1"))
    assert rejected.proposal_id == "D1" and rejected.reason_message == "No capacity available"
    bare = parse_market_event({"eventType": "ProposalRejectedEvent", "eventDate": "2025-10-04T12:00:00Z",
                               "proposalId": "D2"})
    assert bare.reason is None and bare.reason_message == "no reason given"


def test_agreement():
    value = Agreement.from_json(agreement("Terminated"))
    assert value.state == "Terminated" and value.app_session_id == "session-1"
    assert value.offer_properties["golem.node.id.name"] == "provider-1"
    assert value.valid_to == datetime(2025, 10, 4, 13, tzinfo=UTC)


@pytest.mark.parametrize("kind", ["Approved", "Rejected", "Cancelled", "Terminated"])
def test_agreement_event_kinds(kind):
    assert AgreementEvent.from_json(agreement_event(kind)).kind == kind


# -- activity --------------------------------------------------------------------------
@pytest.mark.parametrize("result,message,code", [
    ("Ok", None, 0),
    ("Error", "ExeScript command exited with code 127", 127),
    ("Error", "ExeScript command exited with code -9", -9),
    ("Error", "Transfer error: path not found in container: /x", None),
    ("Error", None, None),
])
def test_exit_code(result, message, code):
    assert ExeScriptCommandResult.from_json(exe_result(0, result, True, message=message)).exit_code == code


def test_binary_output_is_decoded():
    value = ExeScriptCommandResult.from_json(exe_result(0, stdout=list(b"caf\xc3\xa9\n"), stderr=[255]))
    assert value.stdout == "café\n" and value.stderr == "\ufffd"


def test_results_refuse_bad_shapes():
    with pytest.raises((TypeError, ValueError)):
        ExeScriptCommandResult.from_json(exe_result(0, result="Maybe"))
    with pytest.raises(TypeError):
        ExeScriptCommandResult.from_json({**exe_result(0), "index": "0"})
    with pytest.raises(TypeError):
        ExeScriptCommandResult.from_json(exe_result(0, stdout={"weird": 1}))


def test_runtime_events_in_both_spellings():
    snake = RuntimeEvent.from_json(runtime_event(1, {"finished": {"return_code": 2, "message": "bad"}}))
    camel = RuntimeEvent.from_json({"batchId": "BA", "index": 1, "timestamp": "2025-10-04T12:00:01.5Z",
                                    "kind": {"finished": {"returnCode": 2, "message": "bad"}}})
    assert snake == camel
    assert snake.return_code == 2 and snake.message == "bad" and snake.output is None
    assert snake.timestamp == datetime(2025, 10, 4, 12, 0, 1, 500000, tzinfo=UTC)


def test_runtime_output_events():
    assert RuntimeEvent.from_json(runtime_event(0, {"stdout": "x"})).output == "x"
    assert RuntimeEvent.from_json(runtime_event(0, {"stderr": {"str": "y"}})).output == "y"
    assert RuntimeEvent.from_json(runtime_event(0, {"stdout": list(b"z")})).output == "z"
    progress = RuntimeEvent.from_json(runtime_event(0, {"progress": {"step": [0, 1], "progress": [5, None]}}))
    assert progress.kind == "progress" and progress.payload["step"] == [0, 1] and progress.return_code is None


def test_activity_state():
    assert ActivityState.from_json({"state": ["Ready", None]}).ready
    assert not ActivityState.from_json({"state": ["Ready", "Terminated"]}).alive
    assert ActivityState.from_json({"state": ["Deployed"]}).next_state is None
    with pytest.raises(ValueError):
        ActivityState.from_json({"state": ["Sleeping", None]})
