"""End to end, what goes wrong: a wrong app key, no daemon, providers that reject us,
an exe-unit killed mid-fragment, leaving a job early, and no matching offers (issue #4)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Iterator, List

import pytest
import requests

from golem_tasks import Golem
from golem_tasks.localnet import LocalNet
from golem_tasks.localnet.provider.negotiator import Negotiator

pytestmark = pytest.mark.slow

IMAGE = dict(image_hash="a" * 56, image_url="http://127.0.0.1:9/image.gvmi")
REJECTS = "busy with other work"


@pytest.fixture(scope="module")
def net(exeunit_ready: str) -> Iterator[LocalNet]:
    """provider-0 and provider-1 accept; provider-2 rejects every proposal."""
    negotiators = [Negotiator(), Negotiator(), Negotiator(reject_proposals=REJECTS)]
    with LocalNet(providers=3, negotiators=negotiators, binary=exeunit_ready) as network:
        yield network


def make_provider(net: LocalNet, **options):
    from golem_tasks.providers.yagna import GolemProvider
    options.setdefault("budget", "5")
    return GolemProvider(app_key=net.requestor.app_key, api_url=net.api_url, **IMAGE, **options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rest(net: LocalNet, path: str) -> requests.Response:
    with requests.Session() as http:
        http.trust_env = False
        http.headers["Authorization"] = f"Bearer {net.requestor.app_key}"
        return http.get(net.api_url + path, timeout=10)


# -- 1. configuration errors -------------------------------------------------------------

def test_a_wrong_app_key_is_refused_before_anything_is_spent(net):
    from golem_tasks.providers.yagna import AppKeyRefused, GolemProvider
    before = rest(net, "/payment-api/v1/allocations").json()
    with pytest.raises(AppKeyRefused) as caught:
        GolemProvider(app_key="not-the-key", api_url=net.api_url, **IMAGE)
    assert "key" in str(caught.value).lower()
    assert rest(net, "/payment-api/v1/allocations").json() == before


def test_no_daemon_is_a_clear_error_within_seconds():
    from golem_tasks.providers.yagna import GolemProvider, YagnaUnreachable
    with pytest.raises(YagnaUnreachable) as caught:
        GolemProvider(app_key="any", api_url=f"http://127.0.0.1:{free_port()}", **IMAGE)
    assert "127.0.0.1" in str(caught.value)


# -- 2. a provider that rejects ----------------------------------------------------------

def test_a_rejecting_provider_is_reported_and_the_job_completes_on_the_others(net):
    from golem_tasks.providers.yagna import OfferRejected
    seen: List[object] = []
    refused = threading.Event()

    def watch(event: object) -> None:
        seen.append(event)
        if isinstance(event, OfferRejected) and event.provider_name == "provider-2" and event.by_provider:
            refused.set()

    def echo_once_provider_2_answered(ctx, i):
        # provider-0 alone can finish 4 echoes, and the demand is withdrawn, before
        # provider-2's rejection is read: the job waits for it (the hang guard says if
        # it never comes).
        assert refused.wait(120), "provider-2's rejection was never reported"
        results = yield ctx.run("/bin/echo", str(i))
        return results[0].stdout.strip()

    provider = make_provider(net, deny_providers=["provider-1"], events=watch)
    try:
        with Golem(provider, max_workers=2, progress=False) as g:
            answers = list(g.map(echo_once_provider_2_answered, range(4)))
    finally:
        provider.close()
    assert answers == ["0", "1", "2", "3"]
    rejected = [e for e in seen if isinstance(e, OfferRejected) and e.provider_name == "provider-2"]
    assert any(e.by_provider and REJECTS in e.reason for e in rejected), rejected


# -- 3. an exe-unit killed mid-fragment --------------------------------------------------

def test_a_killed_exe_unit_is_retried_on_another_provider(net):
    # Default timeouts: how fast this goes is measured by benchmarks/bench_golem_failures.py.
    from golem_tasks.providers.yagna import AgreementTerminated, InvoiceAccepted
    seen: List[object] = []
    provider = make_provider(net, deny_providers=["provider-2"], events=seen.append)
    crashed: List[str] = []

    def killer() -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not crashed:
            for agent in net.agents:
                if agent.activities.live():
                    time.sleep(1.5)  # into the sleep
                    crashed.extend(agent.activities.crash())
                    crashed.append(agent.name)
                    return
            time.sleep(0.1)

    def slow(ctx):
        result = yield ctx.run("/bin/sh", "-c", "sleep 5; echo done")
        return result[0].stdout.strip()

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        with Golem(provider, max_workers=1, progress=False) as g:
            answer = g.run(slow)
    finally:
        thread.join()
        provider.close()
    assert answer == "done"
    assert crashed and crashed[-1] in ("provider-0", "provider-1")
    dead = {e.agreement_id for e in seen if isinstance(e, AgreementTerminated) and e.provider_name == crashed[-1]}
    assert dead, "the dead provider's agreement was not terminated"
    assert dead <= {e.agreement_id for e in seen if isinstance(e, InvoiceAccepted)}
    assert provider.unpaid_agreements() == ()


# -- 4. leaving the job early ------------------------------------------------------------

def assert_nothing_left(net: LocalNet, approved: List[str]) -> None:
    assert approved
    for agreement_id in approved:
        state = rest(net, f"/market-api/v1/agreements/{agreement_id}").json()["state"]
        assert state == "Terminated", (agreement_id, state)
    deadline = time.monotonic() + 5
    while any(agent.activities.live() for agent in net.agents) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(agent.activities.live() for agent in net.agents)


def test_an_early_break_leaves_no_agreement_or_activity(net):
    from golem_tasks.providers.yagna import AgreementApproved
    approved: List[str] = []
    provider = make_provider(net, deny_providers=["provider-2"],
                             events=lambda e: isinstance(e, AgreementApproved) and approved.append(e.agreement_id))
    try:
        with Golem(provider, max_workers=2, progress=False) as g:
            for done in g.as_completed(lambda ctx, i: (yield ctx.run("/bin/echo", str(i)))[0].stdout, range(20)):
                break
    finally:
        provider.close()
    assert_nothing_left(net, approved)
    assert provider.unpaid_agreements() == ()


def test_an_exception_in_the_with_block_leaves_no_agreement_or_activity(net):
    from golem_tasks.providers.yagna import AgreementApproved
    approved: List[str] = []
    provider = make_provider(net, deny_providers=["provider-2"],
                             events=lambda e: isinstance(e, AgreementApproved) and approved.append(e.agreement_id))
    try:
        with pytest.raises(KeyError):
            with Golem(provider, max_workers=2, progress=False) as g:
                g.run(lambda ctx: (yield ctx.run("/bin/true")))
                raise KeyError("boom")
    finally:
        provider.close()
    assert_nothing_left(net, approved)
    assert provider.unpaid_agreements() == ()


# -- 5. no matching offers ---------------------------------------------------------------

def test_no_matching_offers_is_a_clear_error_and_nothing_is_spent(net):
    from golem_tasks.providers.yagna import Timeouts
    provider = make_provider(net, offer_filter=lambda proposal: False,
                             timeouts=Timeouts(negotiation=3))
    try:
        with pytest.raises(Exception) as caught:
            with Golem(provider, max_workers=1, progress=False) as g:
                g.run(lambda ctx: (yield ctx.run("/bin/true")))
    finally:
        provider.close()
    message = str(caught.value)
    assert "no Golem provider could be engaged" in message and "offer_filter" in message, message
    assert provider.total_cost == 0
    assert provider.costs() == {}
