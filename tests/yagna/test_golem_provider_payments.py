"""GolemProvider payments and cleanup: one allocation, debit notes and invoices accepted
with exact amounts, never beyond the budget, a bounded wait for invoices, and nothing
left behind when the provider closes."""

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import attrs
import pytest

from golem_tasks.errors import ApiError, BudgetExhausted, ProviderError
from golem_tasks.providers.yagna import BudgetReached, CostsSettled, DebitNoteAccepted, InvoiceAccepted, PaymentRefused

from ..helpers import finishes
from .golem_helpers import FAST, make_provider, node, of_type, ready
from .yagna_samples import NODE, PLATFORM, offer_properties

ACCEPT = "POST /payment-api/v1/(?P<kind>debitNotes|invoices)/(?P<id>[^/]+)/accept"


def wait_for(condition, seconds=30.0):  # a hang guard, not a speed bound
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.01)


def body_of(daemon_mock, method, path_end):
    call = next(c for c in daemon_mock.calls if c.request.method == method and c.request.url.split("?")[0]
                .endswith(path_end))
    return json.loads(call.request.body)


def test_the_allocation_holds_the_budget_on_the_platform(daemon, daemon_mock):
    with make_provider(budget="2.5") as provider:
        provider.start()
    body = body_of(daemon_mock, "POST", "/payment-api/v1/allocations")
    assert body["paymentPlatform"] == PLATFORM and body["totalAmount"] == "2.5"
    timeout = datetime.fromisoformat(body["timeout"].replace("Z", "+00:00"))
    assert timeout - datetime.now(timezone.utc) > timedelta(hours=23)  # outlives the invoices
    assert daemon.released == list(daemon.allocations)


def test_the_demand_carries_payload_subnet_expiration_and_decoration(daemon, daemon_mock):
    with make_provider(min_mem_gib=2, capabilities=["vpn"]) as provider:
        provider.start()
    demand = body_of(daemon_mock, "POST", "/market-api/v1/demands")
    properties, constraints = demand["properties"], demand["constraints"]
    ahead = properties["golem.srv.comp.expiration"] / 1000 - time.time()
    assert 59 * 60 < ahead <= 60 * 60
    assert properties["golem.node.debug.subnet"] == "public"
    assert properties[f"golem.com.payment.platform.{PLATFORM}.address"] == NODE
    assert properties["golem.com.payment.debit-notes.accept-timeout?"] == 120
    for part in ("(golem.inf.mem.gib>=2.0)", "(golem.runtime.capabilities=vpn)",
                 "(golem.node.debug.subnet=public)", f"(golem.com.payment.platform.{PLATFORM}.address=*)"):
        assert part in constraints


def test_a_debit_note_is_accepted_with_its_exact_amount(daemon, events):
    with make_provider(events=events.append) as provider:
        session = provider.engage()
        note = daemon.debit_note(session.activity_id, "0.000123456789012345678", usage=[10.0, 5.0])
        wait_for(lambda: note in daemon.accepted)
        assert daemon.accepted[note] == "0.000123456789012345678"
        assert provider.costs() == {session.info.id: Decimal("0.000123456789012345678")}
        session.release()
    [accepted] = of_type(events, DebitNoteAccepted)
    assert accepted.amount == Decimal("0.000123456789012345678") and accepted.document_id == note


def test_504_on_accept_is_retried(daemon):
    daemon.fail("POST", r"/debitNotes/[^/]+/accept$", 504, {"message": "ack timeout"})
    with make_provider() as provider:
        session = provider.engage()
        note = daemon.debit_note(session.activity_id, "0.001")
        wait_for(lambda: note in daemon.accepted)
        session.release()
    assert daemon.count(ACCEPT) >= 3  # the debit note twice, then the invoice


def test_documents_of_other_agreements_are_left_alone(daemon):
    with make_provider() as provider:
        session = provider.engage()
        daemon.agreements["AGX"] = {"node": node(2).id, "state": "Approved", "reason": None}
        daemon.activities["ACX"] = {"agreement": "AGX", "node": node(2).id, "unit": None, "state": "Alive"}
        foreign = daemon.debit_note("ACX", "0.5")
        ours = daemon.debit_note(session.activity_id, "0.001")
        wait_for(lambda: ours in daemon.accepted)
        session.release()
    assert foreign not in daemon.accepted


def test_a_debit_note_over_the_agreed_price_is_refused(daemon, events):
    # offer: 0.0001 GLM per duration second, 0.0002 per CPU second, 0.01 to start
    with make_provider(events=events.append) as provider:
        session = provider.engage()
        fair = daemon.debit_note(session.activity_id, "0.013", usage=[10, 10])
        greedy = daemon.debit_note(session.activity_id, "0.5", usage=[20, 20])
        wait_for(lambda: of_type(events, PaymentRefused))
        session.release()
    assert fair in daemon.accepted and greedy not in daemon.accepted
    [refused] = of_type(events, PaymentRefused)
    assert refused.document_id == greedy and "more than the agreed price" in refused.reason


def test_the_budget_is_never_exceeded(daemon, events):
    # 0.2 leaves room for the start price and the margin of one running agreement
    # (0.0009 GLM/s with its 4 threads busy, over 120 + 10 s: 0.117)
    with make_provider(events=events.append, budget="0.2") as provider:
        session = provider.engage()
        first = daemon.debit_note(session.activity_id, "0.03", usage=[100, 100])
        over = daemon.debit_note(session.activity_id, "0.21", usage=[2000, 100])  # within the agreed price
        wait_for(lambda: of_type(events, PaymentRefused))
        assert first in daemon.accepted and over not in daemon.accepted
        assert "over the budget of 0.2" in of_type(events, PaymentRefused)[0].reason
        wait_for(lambda: not session.usable)  # its work was stopped...
        # ...and its activity destroyed (by a stopper thread: wait, do not race it)
        wait_for(lambda: daemon.activities[session.activity_id]["state"] == "Terminated")
        session.release()
        # whichever of the two providers outgrew the budget first
        spent = (r"budget of 0.2 tGLM is spent: 0.03 tGLM accepted so far, "
                 r"and provider-(1|2) \(0x0(1|2)0(1|2)…0(1|2)0(1|2)\)")
        with pytest.raises(BudgetExhausted, match=spent) as caught:
            provider.engage()
        assert caught.value.spent == Decimal("0.03") and "budget=" in str(caught.value)
        [reached] = of_type(events, BudgetReached)
        assert reached.spent == Decimal("0.03") and reached.budget == Decimal("0.2")
    assert provider.total_cost <= Decimal("0.2")
    assert sum(Decimal(amount) for amount in daemon.accepted.values()) <= Decimal("0.2")


def starting_at(price):
    properties = offer_properties()
    properties["golem.com.pricing.model.linear.coeffs"] = [0, 0, price]
    return properties


def test_no_provider_is_engaged_whose_start_price_does_not_fit_what_is_left(daemon, events):
    for number in (1, 2):
        daemon.nodes[node(number).id].properties = starting_at(0.6)
    with make_provider(events=events.append, budget="1") as provider:
        first = ready(provider).engage()
        with pytest.raises(BudgetExhausted) as caught:
            provider.engage()
        error = caught.value
        assert (error.budget, error.spent, error.expected) == (Decimal(1), Decimal(0), Decimal("0.6"))
        other = "provider-2 (0x0202…0202)" if first.info.id == node(1).id else "provider-1 (0x0101…0101)"
        assert "budget of 1 tGLM" in str(error) and f"{other}'s start price is 0.6 tGLM" in str(error)
        assert "budget=" in str(error)
        with pytest.raises(BudgetExhausted):  # told again at once: the candidate was kept
            provider.engage()
        first.release()
    assert len(daemon.agreements) == 1
    assert of_type(events, BudgetReached)[0].expected == Decimal("0.6")


def test_a_start_price_is_held_while_the_agreement_is_made(daemon):
    with make_provider(budget="1") as provider:
        provider.start()
        provider._payments.reserve("a", "provider-1", starting_at(0.6))
        with pytest.raises(BudgetExhausted):
            provider._payments.reserve("b", "provider-2", starting_at(0.6))
        provider._payments.unreserve("a")
        provider._payments.reserve("b", "provider-2", starting_at(0.6))
        assert provider._payments.remaining == Decimal("0.4")


def test_a_refusal_is_final_only_when_nothing_could_free_part_of_the_budget(daemon):
    # A refusal made while another agreement is being made is not final: that one may
    # fail and free its start price. The provider refuses every engage for good only
    # on a final one.
    with make_provider(budget="1") as provider:
        provider.start()
        provider._payments.reserve("a", "provider-1", starting_at(0.6))
        with pytest.raises(BudgetExhausted) as while_held:
            provider._payments.reserve("b", "provider-2", starting_at(0.6))
        assert not while_held.value.final
        provider._payments.unreserve("a")
        with pytest.raises(BudgetExhausted) as alone:
            provider._payments.reserve("c", "provider-3", starting_at(1.2))
        assert alone.value.final


def test_an_invoice_over_the_budget_is_refused(daemon, events):
    daemon.nodes[node(1).id].invoice = "1.5"
    daemon.nodes.pop(node(2).id)
    # An invoice wait of 10 minutes: close() returns within the hang guard only if a
    # refused invoice is not waited for.
    provider = make_provider(events=events.append, budget="1", timeouts=attrs.evolve(FAST, invoices=600))
    provider.engage().release()
    finishes(provider.close)
    assert daemon.accepted == {}
    assert "over the budget" in of_type(events, PaymentRefused)[0].reason
    assert of_type(events, CostsSettled)[0].unpaid == tuple(daemon.agreements)


def test_invoices_are_accepted_then_the_allocation_released(daemon, daemon_mock, events):
    daemon.nodes[node(2).id].invoice = "0.02"
    with make_provider(events=events.append) as provider:
        sessions = [provider.engage(), provider.engage()]
        for session in sessions:
            session.release()
    assert provider.costs() == {node(1).id: Decimal("0.01"), node(2).id: Decimal("0.02")}
    assert provider.total_cost == Decimal("0.03") and provider.unpaid_agreements() == ()
    [settled] = of_type(events, CostsSettled)
    assert settled.total == Decimal("0.03") and settled.unpaid == ()
    assert len(of_type(events, InvoiceAccepted)) == 2
    urls = [c.request.method + " " + c.request.url.split("?")[0] for c in daemon_mock.calls]
    release = urls.index("DELETE http://127.0.0.1:7465/payment-api/v1/allocations/AL1")
    assert all(i < release for i, url in enumerate(urls) if url.endswith("/accept"))


def test_a_missing_invoice_is_waited_for_a_bounded_time(daemon, events):
    daemon.nodes[node(1).id].invoice = None
    daemon.nodes.pop(node(2).id)
    provider = make_provider(events=events.append, timeouts=attrs.evolve(FAST, invoices=0.3))
    provider.engage().release()
    finishes(provider.close)  # the invoice never comes: the 0.3 s wait ends the close
    assert provider.unpaid_agreements() == tuple(daemon.agreements)
    assert daemon.released == list(daemon.allocations)


def event_poll_timeouts(daemon_mock, kind):
    """The ``timeout`` of every ``kind`` (invoiceEvents, debitNoteEvents) poll made."""
    return [float(parse_qs(urlparse(c.request.url).query)["timeout"][0])
            for c in daemon_mock.calls if urlparse(c.request.url).path.endswith(f"/{kind}")]


def test_close_waits_for_a_late_invoice_in_one_poll_that_it_answers(daemon, daemon_mock, events):
    daemon.nodes[node(1).id].invoice = None  # sent late, by hand
    daemon.nodes.pop(node(2).id)
    provider = make_provider(events=events.append, timeouts=attrs.evolve(FAST, invoices=30))
    session = provider.engage()
    session.release()
    late = threading.Timer(0.3, daemon.invoice, args=(session.agreement_id, "0.01"))
    late.start()
    provider.close()
    late.join()
    assert provider.unpaid_agreements() == () and len(of_type(events, InvoiceAccepted)) == 1
    # Not slices of payment_poll: one poll waiting all the time left, answered by the
    # invoice; then no more polls (close returns as soon as the invoice is accepted).
    closing = [t for t in event_poll_timeouts(daemon_mock, "invoiceEvents") if t > FAST.payment_poll]
    assert len(closing) == 1 and closing[0] > 20
    assert all(t <= FAST.payment_poll for t in event_poll_timeouts(daemon_mock, "debitNoteEvents"))


def test_without_invoices_due_close_does_not_poll_for_payments(daemon, daemon_mock):
    provider = make_provider(timeouts=attrs.evolve(FAST, invoices=30))
    provider.engage().release()
    wait_for(lambda: provider.unpaid_agreements() == ())  # both invoices accepted during the run
    provider.close()
    assert all(t <= FAST.payment_poll for t in event_poll_timeouts(daemon_mock, "invoiceEvents"))


def test_an_invoice_for_another_payer_is_refused(daemon, events):
    for provider_node in daemon.nodes.values():
        provider_node.invoice = None
    with make_provider(events=events.append, timeouts=attrs.evolve(FAST, invoices=0.3)) as provider:
        session = provider.engage()
        session.release()
        daemon.invoice(session.agreement_id, "0.01", payer="0x" + "99" * 20)
        wait_for(lambda: of_type(events, PaymentRefused))
    assert "not by our allocation" in of_type(events, PaymentRefused)[0].reason


def test_repeated_payment_events_are_handled_once(daemon):
    for provider_node in daemon.nodes.values():
        provider_node.invoice = None
    with make_provider() as provider:
        session = provider.engage()
        session.release()
        invoice = daemon.invoice(session.agreement_id, "0.01")
        with daemon.lock:
            daemon._payment_event("invoice", "InvoiceReceivedEvent", invoice)
        wait_for(lambda: invoice in daemon.accepted)
    assert daemon.count("GET /payment-api/v1/invoices/(?P<id>[^/]+)") == 1


def test_close_leaves_nothing_behind(daemon, daemon_mock):
    provider = make_provider()
    session = provider.engage()
    provider.close()
    provider.close()  # idempotent
    assert daemon.activities[session.activity_id]["state"] == "Terminated"
    agreement = daemon.agreements[session.agreement_id]
    assert agreement["state"] == "Terminated" and agreement["reason"]["golem.requestor.code"] == "Cancelled"
    assert daemon.subscriptions == {} and daemon.unsubscribed
    assert daemon.released == list(daemon.allocations)
    with pytest.raises(ProviderError, match="closed"):
        provider.engage()


def test_a_released_session_ends_with_success(daemon):
    with make_provider() as provider:
        session = provider.engage()
        session.release()
        session.release()  # idempotent
    reason = daemon.agreements[session.agreement_id]["reason"]
    assert reason == {"message": "Successfully finished all work", "golem.requestor.code": "Success"}


def test_a_failed_start_gives_the_allocation_back(daemon):
    daemon.fail("POST", r"/market-api/v1/demands$", 400, {"message": "bad constraint"})
    with make_provider() as provider:
        with pytest.raises(ApiError, match="bad constraint"):
            provider.engage()
        assert daemon.released == list(daemon.allocations)
        provider.engage().release()  # a later engage starts again


def test_short_funds_say_how_to_fund(daemon):
    daemon.fail("POST", r"/allocations$", 400, {"message": "Insufficient funds to make allocation"})
    with make_provider() as provider:
        with pytest.raises(ApiError, match="yagna payment fund --network hoodi"):
            provider.start()
    assert daemon.subscriptions == {}
