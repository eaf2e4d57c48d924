"""Outbound internet end to end on localnet (issue 13 items 1-2): the demand's manifest
meets providers that whitelist domains like ya-provider.

provider-0 whitelists 127.0.0.1, provider-1 whitelists nothing (ya-provider's default),
provider-2's runtime does not advertise ``inet``/``manifest-support``. Two web servers on
127.0.0.1 play the internet; the manifest names one of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Iterator, List

import pytest

from golem_tasks import BrokenPool, FragmentFailed, Golem
from golem_tasks.localnet import LocalNet, Negotiator, OfferSpec
from golem_tasks.providers.outbound import DENIED
from golem_tasks.providers.yagna.market.manifest import UNTRUSTED

from .test_golem_backend_feedback import IMAGE, child_env
from ..web import web_servers

pytestmark = pytest.mark.slow

HANG = 240  # only to catch a hang

FETCH = """
import sys, urllib.request, urllib.error
for url in sys.argv[1:]:
    try:
        print("OK", urllib.request.urlopen(url, timeout=30).read().decode())
    except urllib.error.HTTPError as exc:
        print("HTTP", exc.code, exc.read().decode().strip())
"""


@pytest.fixture(scope="module")
def internet() -> Iterator[List[int]]:
    """Two web servers on 127.0.0.1; their ports."""
    with web_servers(2) as ports:
        yield ports


@pytest.fixture(scope="module")
def net(exeunit_ready: str) -> Iterator[LocalNet]:
    negotiators = [Negotiator(outbound_whitelist=["127.0.0.1"]), Negotiator(),
                   Negotiator(offer=OfferSpec(inet=False))]
    with LocalNet(providers=3, negotiators=negotiators, binary=exeunit_ready) as network:
        yield network


def make_provider(net: LocalNet, **options):
    from golem_tasks.providers.yagna import GolemProvider
    options.setdefault("budget", "5")
    return GolemProvider(app_key=net.requestor.app_key, api_url=net.api_url, **IMAGE, **options)


def test_a_provider_that_whitelists_the_url_runs_the_job_and_only_that_host_is_reached(net, internet):
    allowed, other = internet
    provider = make_provider(net, outbound=[f"http://127.0.0.1:{allowed}"])

    def fetch(ctx):
        results = yield ctx.run("python3", "-c", FETCH, f"http://127.0.0.1:{allowed}/",
                                f"http://127.0.0.1:{other}/")
        return ctx.provider_id, results[0].stdout

    try:
        with Golem(provider, max_workers=1, progress=False) as golem:
            who, out = golem.run(fetch, timeout=HANG)
    finally:
        provider.close()
    assert who == net.agents[0].node_id  # the one provider that trusts the URL
    ok, refused = out.splitlines()
    assert ok == f"OK hello from {allowed} /"
    assert refused.startswith(f"HTTP 403 {DENIED}: 127.0.0.1:{other}")


def test_providers_that_do_not_whitelist_the_url_are_named_in_the_startup_feedback(net, internet):
    allowed, _ = internet
    provider = make_provider(net, outbound=[f"http://localhost:{allowed}"], startup_timeout=8)
    try:
        with Golem(provider, max_workers=1, progress=False) as golem:
            with pytest.raises(BrokenPool) as caught:
                golem.run(lambda ctx: (yield ctx.run("/bin/true")))
    finally:
        provider.close()
    message = str(caught.value)
    assert "2 offers, 2 rejected by outbound" in message
    assert UNTRUSTED in message
    assert "Everyone rule didn't match whitelist (not whitelisted: localhost)" in message
    assert provider.total_cost == 0
    print(f"\nstartup feedback: {message}")


def test_the_scan_names_the_offer_without_outbound_support(net):
    env = child_env(net)
    done = subprocess.run([sys.executable, "-m", "golem_tasks.cli", "market", "scan", "--budget", "1",
                           "--outbound", "https://pypi.org"],
                          capture_output=True, text=True, env=env, timeout=HANG, check=False)
    assert done.returncode == 0, done.stderr
    assert "3 offer(s), 2 match the demand" in done.stdout
    line = next(line for line in done.stdout.splitlines() if "provider-2" in line)
    assert "outbound: the offer lacks runtime capabilities inet, manifest-support" in line
    print(done.stdout)


def test_without_outbound_every_offer_matches(net):
    assert "GOLEM_TASKS_IMAGE" not in os.environ
    provider = make_provider(net)
    try:
        scan = provider.scan(seconds=10)
    finally:
        provider.close()
    assert sorted(o.provider_name for o in scan.matching) == ["provider-0", "provider-1", "provider-2"]


def test_a_command_the_manifest_script_does_not_allow_is_refused_naming_the_manifest(net, internet):
    allowed, _ = internet
    provider = make_provider(net, outbound=[f"http://127.0.0.1:{allowed}"], manifest_commands=["run .*python3.*"])

    def job(ctx):
        fetched = yield ctx.run("python3", "-c", FETCH, f"http://127.0.0.1:{allowed}/")
        yield ctx.run("/bin/echo", "not in the manifest")
        return fetched[0].stdout

    try:
        with Golem(provider, max_workers=1, progress=False, max_retries=0) as golem:
            with pytest.raises(FragmentFailed) as caught:
                golem.run(job, timeout=HANG)
    finally:
        provider.close()
    text = str(caught.value)
    assert "Manifest violation in ExeScript" in text, text
    assert "no matching manifest entry found for 'run /bin/echo not in the manifest'" in text
    print(f"\n{type(caught.value).__name__}: {text}")
