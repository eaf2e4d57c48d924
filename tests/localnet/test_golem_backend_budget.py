"""End to end on the real daemon (issue #4): a provider that rejects our agreements, and
a budget too small for the prices. Amounts accepted are read back from the daemon."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Dict, Iterable, Iterator, List, Tuple

import pytest
import requests

from golem_tasks import BrokenPool, Golem
from golem_tasks.events import CostsSettled
from golem_tasks.localnet import LocalNet
from golem_tasks.localnet.provider.negotiator import Negotiator
from golem_tasks.localnet.provider.offer import OfferSpec
from golem_tasks._format import money
from golem_tasks.progress import format_costs

pytestmark = pytest.mark.slow

IMAGE = dict(image_hash="a" * 56, image_url="http://127.0.0.1:9/image.gvmi")
REFUSES = "maintenance window, come back later"
HANG = 120.0  # only catches a hang
#: A start price, a price per second of activity, and a debit note every second, so a
#: small budget is reached within seconds.
PRICED = dict(price_start="0.3", price_duration_sec="0.01", price_cpu_sec="0", debit_note_interval=1)


@pytest.fixture(scope="module")
def net(exeunit_ready: str) -> Iterator[LocalNet]:
    """provider-0 and provider-1 accept; provider-2 is the cheapest (so it is tried first)
    and rejects every agreement."""
    negotiators = [Negotiator(offer=OfferSpec(**PRICED)), Negotiator(offer=OfferSpec(**PRICED)),
                   Negotiator(offer=OfferSpec(**{**PRICED, "price_start": "0.1"}), reject_agreements=REFUSES)]
    with LocalNet(providers=3, negotiators=negotiators, binary=exeunit_ready) as network:
        yield network


def make_provider(net: LocalNet, **options):
    from golem_tasks.providers.yagna import GolemProvider
    return GolemProvider(app_key=net.requestor.app_key, api_url=net.api_url, storage=None, **IMAGE, **options)


def ready(provider, drafts: int) -> None:
    """Start ``provider`` and wait for ``drafts`` candidates, so the score decides who is
    engaged first (not the order the drafts happen to arrive in)."""
    provider.start()
    deadline = time.monotonic() + 30
    while len(provider._market._candidates) < drafts:
        assert time.monotonic() < deadline, "the providers' drafts did not arrive"
        time.sleep(0.05)


def echo(ctx, i):
    results = yield ctx.run("/bin/echo", str(i))
    return results[0].stdout.strip()


def accepted_by_daemon(net: LocalNet, agreement_ids: Iterable[str]) -> Dict[str, Decimal]:
    """Per agreement, what the daemon says the requestor accepted: the invoice, else the
    latest debit note of each activity."""
    wanted = set(agreement_ids)
    with requests.Session() as http:
        http.trust_env = False
        http.headers["Authorization"] = f"Bearer {net.requestor.app_key}"
        notes = http.get(f"{net.api_url}/payment-api/v1/debitNotes", timeout=10).json()
        invoices = http.get(f"{net.api_url}/payment-api/v1/invoices", timeout=10).json()
    ok = ("ACCEPTED", "SETTLED")
    invoiced = {i["agreementId"]: Decimal(i["amount"]) for i in invoices
                if i["agreementId"] in wanted and i["status"] in ok}
    latest: Dict[str, Tuple[str, Decimal]] = {}  # activity -> (agreement, highest accepted amount)
    for note in notes:
        if note["agreementId"] in wanted and note["status"] in ok:
            _, before = latest.get(note["activityId"], ("", Decimal(0)))
            latest[note["activityId"]] = (note["agreementId"], max(before, Decimal(note["totalAmountDue"])))
    totals: Dict[str, Decimal] = {}
    for agreement_id, amount in latest.values():
        totals[agreement_id] = totals.get(agreement_id, Decimal(0)) + amount
    totals.update(invoiced)  # an accepted invoice covers the whole agreement
    return totals


def test_a_provider_that_rejects_agreements_is_reported_and_the_job_completes_on_the_others(net):
    from golem_tasks.providers.yagna import AgreementApproved, AgreementFailed
    from golem_tasks.providers.yagna.provider import AGREEMENT_REJECTIONS
    seen: List[object] = []
    provider = make_provider(net, budget="5", events=seen.append)
    try:
        ready(provider, drafts=3)  # so the cheapest, provider-2, is the first choice
        with Golem(provider, max_workers=2, progress=False) as g:
            answers = list(g.map(echo, range(6)))
    finally:
        provider.close()
    assert answers == [str(i) for i in range(6)]
    failed = [e for e in seen if isinstance(e, AgreementFailed) and e.provider_name == "provider-2"]
    assert failed, "provider-2, the cheapest, was never tried"
    assert all(REFUSES in e.reason for e in failed), failed  # its own words, not just "Rejected"
    rejected = [e for e in net.agents[2].events if e.kind == "agreement-rejected"]
    assert 1 <= len(rejected) <= AGREEMENT_REJECTIONS
    approved = {e.agreement_id: e.provider_name for e in seen if isinstance(e, AgreementApproved)}
    assert set(approved.values()) <= {"provider-0", "provider-1"}
    # the bill: cost per provider and the total, as the end-of-run summary prints it
    [settled] = [e for e in seen if isinstance(e, CostsSettled)]
    accepted = accepted_by_daemon(net, approved)
    assert settled.total == sum(accepted.values()) == provider.total_cost > 0
    assert dict(settled.costs) == provider.costs()
    summary = format_costs(settled)
    assert settled.token == "tGLM"  # a testnet
    assert f"cost: {money(settled.total, 'tGLM')} in total" in summary
    names = dict(settled.names)
    for provider_id, amount in settled.costs:  # by name: the localnet's are all different
        assert names[provider_id] in set(approved.values())
        assert f"  {names[provider_id]}: {money(amount, 'tGLM')}" in summary


def test_a_budget_for_one_start_price_engages_one_provider_and_says_so(net):
    from golem_tasks.providers.yagna import AgreementApproved, BudgetReached
    seen: List[object] = []
    reached = threading.Event()

    def record(event: object) -> None:
        seen.append(event)
        if isinstance(event, BudgetReached):
            reached.set()

    def echo_once_the_budget_said_so(ctx, i):
        if i == 0:
            # Work that runs this long needs another provider: the engagement held before
            # signing is let sign, and the budget refuses it.
            assert reached.wait(HANG), "the budget never refused a second provider"
        return (yield from echo(ctx, i))

    # 0.55: one start price of 0.3 and its stop margin (0.11) fit, with ~14 s of work
    provider = make_provider(net, budget="0.55", deny_providers=["provider-2"], events=record)
    try:
        with Golem(provider, max_workers=3, progress=False) as g:
            answers = list(g.map(echo_once_the_budget_said_so, range(4)))
    finally:
        provider.close()
    assert answers == ["0", "1", "2", "3"]
    approved = [e.agreement_id for e in seen if isinstance(e, AgreementApproved)]
    assert len(approved) == 1  # a second start price of 0.3 would not fit in 0.55
    [first, *_] = [e for e in seen if isinstance(e, BudgetReached)]
    assert "budget of 0.55 tGLM" in first.reason and "start price is 0.3 tGLM" in first.reason
    assert "budget=" in first.reason and first.expected == Decimal("0.3")
    accepted = accepted_by_daemon(net, approved)
    assert sum(accepted.values()) <= Decimal("0.55")
    assert sum(accepted.values()) == provider.total_cost
    assert provider.unpaid_agreements() == ()


def invoices_by_daemon(net: LocalNet, agreement_ids: Iterable[str]) -> List[Tuple[str, str, Decimal]]:
    """``(agreement, status, amount)`` of every invoice the daemon holds for these agreements."""
    wanted = set(agreement_ids)
    with requests.Session() as http:
        http.trust_env = False
        http.headers["Authorization"] = f"Bearer {net.requestor.app_key}"
        invoices = http.get(f"{net.api_url}/payment-api/v1/invoices", timeout=10).json()
    return [(i["agreementId"], i["status"], Decimal(i["amount"])) for i in invoices if i["agreementId"] in wanted]


def test_work_that_outgrows_the_budget_stops_with_a_margin_so_every_invoice_is_accepted(net):
    """The spend guard (issue 11): long fragments outgrow a budget mid-job. The work stops
    while a debit-note interval and the stop still fit (0.3 to start, 0.01 a second, a note
    every second: a margin of 0.01 x (1 + 10 s) = 0.11), so the provider's final invoice fits
    the allocation and is accepted: nothing is refused, the provider is paid."""
    from golem_tasks import BudgetExhausted
    from golem_tasks.events import FragmentFinished
    from golem_tasks.providers.yagna import AgreementApproved, BudgetReached, PaymentRefused, SpendUpdated
    seen: List[object] = []
    budget = Decimal("0.55")  # one provider (a second start price and margin would not fit); ~14 s of work
    provider = make_provider(net, budget=str(budget), deny_providers=["provider-2"])

    def long(ctx, i):
        results = yield ctx.run("/bin/sh", "-c", f"sleep 4; echo {i}")
        return results[0].stdout.strip()

    try:
        with pytest.raises(BrokenPool) as caught:
            with Golem(provider, max_workers=2, progress=False, events=seen.append) as g:
                list(g.map(long, range(10)))
    finally:
        provider.close()
    message = str(caught.value)
    assert "budget of 0.55 tGLM is spent" in message and "before its next debit note (1 s)" in message, message
    assert "budget=" in message and isinstance(caught.value.__cause__, BudgetExhausted)
    assert any(isinstance(e, BudgetReached) for e in seen)
    assert not any(isinstance(e, PaymentRefused) for e in seen), [e for e in seen if isinstance(e, PaymentRefused)]
    finished = [e for e in seen if isinstance(e, FragmentFinished)]
    assert 0 < len(finished) < 10  # the budget ran out mid-job
    approved = [e.agreement_id for e in seen if isinstance(e, AgreementApproved)]
    assert len(approved) == 1
    # from the daemon: every invoice accepted, and in all no more than the budget
    invoices = invoices_by_daemon(net, approved)
    assert len(invoices) == len(approved) and all(status in ("ACCEPTED", "SETTLED") for _, status, _ in invoices)
    accepted = accepted_by_daemon(net, approved)
    total = sum(accepted.values())
    assert Decimal("0.3") < total <= budget
    assert provider.total_cost == total and provider.unpaid_agreements() == ()
    spend = [e for e in seen if isinstance(e, SpendUpdated)]
    assert spend and all(e.projected >= e.spent and e.budget == budget for e in spend)
    assert spend[-1].spent == total
    print(f"\nspend guard on localnet: budget {budget} tGLM, {len(invoices)} invoice(s) accepted, "
          f"accepted total {total} tGLM, {len(finished)} of 10 fragments done before the stop")
    # everything engaged was released: the agreement ended and no activity is left
    with requests.Session() as http:
        http.trust_env = False
        http.headers["Authorization"] = f"Bearer {net.requestor.app_key}"
        state = http.get(f"{net.api_url}/market-api/v1/agreements/{approved[0]}", timeout=10).json()["state"]
    assert state == "Terminated"
    assert not any(agent.activities.live() for agent in net.agents)


def test_two_providers_outgrowing_the_budget_are_both_stopped_in_time_and_both_paid(net):
    """Two agreements running at once keep a margin each (0.11): the first debit note that
    leaves no room for both stops its agreement, the other is stopped at its next note,
    and both final invoices fit together."""
    from golem_tasks.providers.yagna import AgreementApproved, PaymentRefused
    seen: List[object] = []
    budget = Decimal("1")  # two start prices (0.6) and two margins (0.22) fit; ~9 s of work each
    provider = make_provider(net, budget=str(budget), deny_providers=["provider-2"])

    def long(ctx, i):
        results = yield ctx.run("/bin/sh", "-c", f"sleep 3; echo {i}")
        return results[0].stdout.strip()

    try:
        ready(provider, drafts=2)  # both candidates in before the job: engaged together
        with pytest.raises(BrokenPool):
            with Golem(provider, max_workers=2, progress=False, events=seen.append) as g:
                list(g.map(long, range(12)))
    finally:
        provider.close()
    assert not any(isinstance(e, PaymentRefused) for e in seen)
    approved = [e.agreement_id for e in seen if isinstance(e, AgreementApproved)]
    assert 1 <= len(approved) <= 2  # the second is engaged unless the pace already says it won't fit
    invoices = invoices_by_daemon(net, approved)
    assert len(invoices) == len(approved) and all(status in ("ACCEPTED", "SETTLED") for _, status, _ in invoices)
    total = sum(accepted_by_daemon(net, approved).values())
    assert total <= budget and provider.total_cost == total and provider.unpaid_agreements() == ()
    print(f"\nspend guard on localnet, two providers: budget {budget} tGLM, {len(invoices)} invoice(s) accepted "
          f"({', '.join(str(amount) for _, _, amount in invoices)}), accepted total {total} tGLM")
