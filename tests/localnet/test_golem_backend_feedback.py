"""On the real daemon (issue 9 items 3, 4, 5): what the market shows while nothing is
engaged and the error ``startup_timeout`` ends a job with; the market preflight
(``GolemProvider.scan``, ``golem-tasks market scan``); and SIGTERM/SIGHUP in a child
process running a job, which must leave nothing behind and end with -15 / -1.

The network: provider-0 and provider-1 on subnet ``public``, provider-2 on ``elsewhere``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Dict, Iterator, List, Set

import pytest
import requests

from golem_tasks import BrokenPool, Golem, StartupTimeout
from golem_tasks.localnet import LocalNet, Negotiator, OfferSpec
from ..test_signals import DEFAULT_ACTIONS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
IMAGE = dict(image_hash="a" * 56, image_url="http://127.0.0.1:9/image.gvmi")
HANG = 240  # only to catch a hang


@pytest.fixture(scope="module")
def net(exeunit_ready: str) -> Iterator[LocalNet]:
    negotiators = [Negotiator(), Negotiator(), Negotiator(offer=OfferSpec(subnet="elsewhere"))]
    with LocalNet(providers=3, negotiators=negotiators, binary=exeunit_ready) as network:
        yield network


def make_provider(net: LocalNet, **options):
    from golem_tasks.providers.yagna import GolemProvider
    options.setdefault("budget", "5")
    return GolemProvider(app_key=net.requestor.app_key, api_url=net.api_url, **IMAGE, **options)


def rest(net: LocalNet, path: str) -> requests.Response:
    with requests.Session() as http:
        http.trust_env = False
        http.headers["Authorization"] = f"Bearer {net.requestor.app_key}"
        return http.get(net.api_url + path, timeout=10)


# -- feedback before work starts ---------------------------------------------------------

def test_an_impossible_price_cap_is_reported_at_once_and_ends_the_job_with_the_fix(net):
    from golem_tasks.providers.yagna import MarketStatus
    statuses: List[MarketStatus] = []
    refused = threading.Event()

    def watch(event):
        if isinstance(event, MarketStatus):
            statuses.append(event)
            if dict(event.rejected).get("price caps") == 2:
                refused.set()
    provider = make_provider(net, max_cpu_hour_price="0.01", startup_timeout=8, events=watch)
    started = time.monotonic()
    try:
        with Golem(provider, max_workers=2, progress=False) as golem:
            with pytest.raises(BrokenPool) as caught:
                golem.run(lambda ctx: (yield ctx.run("/bin/true")))
    finally:
        provider.close()
    took = time.monotonic() - started
    assert refused.is_set(), statuses  # said while waiting, not only at the end
    message = str(caught.value)
    # localnet offers ask 0.0001 GLM per CPU-second: 0.36 per CPU-hour.
    assert "2 offers, 2 rejected by price caps: raise max_cpu_hour_price=0.36 or more (now 0.01)" in message
    assert "check the subnet" not in message
    assert isinstance(caught.value.__cause__, StartupTimeout)
    assert provider.total_cost == 0 and provider.costs() == {}
    print(f"\nstartup_timeout=8 s: BrokenPool after {took:.1f} s; first status after "
          f"{statuses[0].waited:.2f} s of waiting")


def test_a_subnet_nobody_is_on_is_named_with_the_subnets_that_have_offers(net):
    provider = make_provider(net, subnet_tag="nowhere", startup_timeout=5)
    try:
        with Golem(provider, max_workers=1, progress=False) as golem:
            with pytest.raises(BrokenPool) as caught:
                golem.run(lambda ctx: (yield ctx.run("/bin/true")))
    finally:
        provider.close()
    message = str(caught.value)
    assert "no offer matches the demand; the market shows 3 other offer(s): 3 on another subnet" in message
    assert "they are on subnet elsewhere, public: set subnet_tag= to theirs" in message


# -- market preflight --------------------------------------------------------------------

def test_scan_shows_the_market_and_prices_a_job(net):
    before = rest(net, "/payment-api/v1/allocations").json(), rest(net, "/market-api/v1/demands").json()
    provider = make_provider(net, budget="1")
    try:
        started = time.monotonic()
        scan = provider.scan(seconds=10)
        took = time.monotonic() - started
    finally:
        provider.close()
    assert sorted(o.provider_name for o in scan.matching) == ["provider-0", "provider-1"]
    [other] = scan.filtered
    assert other.provider_name == "provider-2" and other.refusal.category == "subnet"
    assert "'elsewhere'" in other.refusal.reason
    offer = scan.matching[0]
    assert offer.cpu_hour_price == Decimal("0.36") and offer.threads == 2 and offer.memory_gib == 4.0
    estimate = scan.estimate(fragments=10, seconds=60, providers=2)
    assert estimate.providers == 2 and estimate.wall == 300 and estimate.within_budget
    assert (rest(net, "/payment-api/v1/allocations").json(), rest(net, "/market-api/v1/demands").json()) == before
    print(f"\nmarket scan on localnet (3 offers): {took:.2f} s")


def test_the_command_line_scan(net):
    env = child_env(net)
    done = subprocess.run([sys.executable, "-m", "golem_tasks.cli", "market", "scan", "--budget", "1",
                           "--fragments", "10", "--seconds", "60", "--providers", "2"],
                          capture_output=True, text=True, env=env, timeout=HANG, check=False)
    assert done.returncode == 0, done.stderr
    assert "3 offer(s), 2 match the demand" in done.stdout
    assert "provider-2" in done.stdout and "subnet: on subnet 'elsewhere'" in done.stdout
    assert "10 fragment(s) of 60 s on 2 provider(s)" in done.stdout


# -- SIGTERM and SIGHUP ------------------------------------------------------------------

JOB = textwrap.dedent("""
    import sys
    from golem_tasks import Golem
    from golem_tasks.events import CostsSettled, FragmentStarted

    def slow(ctx, i):
        results = yield ctx.run("/bin/sh", "-c", f"sleep 30; echo {i}")
        return results[0].stdout.strip()

    def report(event):
        if isinstance(event, FragmentStarted):
            sys.stdout.write("running\\n")
            sys.stdout.flush()
        elif isinstance(event, CostsSettled):
            sys.stdout.write(f"unpaid: {' '.join(event.unpaid)}\\n")
            sys.stdout.flush()

    with Golem(provider="golem", image="golem/alpine:latest", max_workers=2, progress=False,
               events=report) as golem:
        for value in golem.map(slow, range(40)):
            print("done", value, flush=True)
""")


def child_env(net: LocalNet) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YAGNA_", "GOLEM_TASKS_"))}
    env.update(net.env)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return env


def requestor_agreements(net: LocalNet) -> Set[str]:
    # Provider identities live on the same daemon: their side of each agreement is listed too.
    return {a["id"] for a in rest(net, "/market-api/v1/agreements").json() if a["role"] == "Requestor"}


def ids(net: LocalNet, path: str, key: str) -> Set[str]:
    return {item[key] for item in rest(net, path).json()}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_mid_job_leaves_nothing_behind_and_ends_with_its_status(net, tmp_path, signum):
    allocations = ids(net, "/payment-api/v1/allocations", "allocationId")
    demands = ids(net, "/market-api/v1/demands", "demandId")
    agreements = requestor_agreements(net)
    script = tmp_path / "job.py"
    script.write_text(DEFAULT_ACTIONS + JOB)  # as from a terminal, even when the suite runs under nohup
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=child_env(net))
    try:
        first = child.stdout.readline()
        assert first.startswith("running"), (first, child.poll())
        deadline = time.monotonic() + HANG
        while not any(agent.activities.live() for agent in net.agents) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ids(net, "/payment-api/v1/allocations", "allocationId") - allocations, "no allocation made"
        sent = time.monotonic()
        child.send_signal(signum)
        out, err = child.communicate(timeout=HANG)
        took = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signum, (child.returncode, err[-3000:])
    assert f"terminated by {signal.Signals(signum).name}" in err

    new = requestor_agreements(net) - agreements
    assert new, "the child made no agreement"
    for agreement_id in new:
        state = rest(net, f"/market-api/v1/agreements/{agreement_id}").json()["state"]
        assert state == "Terminated", (agreement_id, state)
    assert not any(agent.activities.live() for agent in net.agents)
    assert ids(net, "/payment-api/v1/allocations", "allocationId") == allocations  # released
    assert ids(net, "/market-api/v1/demands", "demandId") == demands
    # Every due invoice accepted, or reported as unpaid by the child.
    unpaid = set(next(line for line in out.splitlines() if line.startswith("unpaid:")).split()[1:])
    invoices = {i["agreementId"]: i["status"] for i in rest(net, "/payment-api/v1/invoices").json()
                if i["agreementId"] in new}
    for agreement_id in new:
        assert invoices.get(agreement_id) in ("ACCEPTED", "SETTLED") or agreement_id in unpaid, \
            (agreement_id, invoices.get(agreement_id), unpaid)
    print(f"\n{signal.Signals(signum).name}: exit {child.returncode} {took:.2f} s after the signal, "
          f"{len(new)} agreement(s) terminated, {len(unpaid)} unpaid")
