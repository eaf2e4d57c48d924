"""Market preflight (issue 9 item 5): ``GolemProvider.scan()`` lists the offers our
demand would take and the others with their reason, and prices a job; it reserves and
spends nothing. Also: a startup timeout with no offer at all is explained by a scan."""

from __future__ import annotations

from decimal import Decimal

import logging
import threading

import attrs
import pytest

from golem_tasks import BrokenPool, Golem, LocalProvider
from golem_tasks.errors import ConfigurationError, StartupTimeout
from golem_tasks.providers.yagna import MarketScan, MarketStatus
from golem_tasks.providers.yagna.market.status import (
    BUDGET,
    HARDWARE,
    PAYMENT_NETWORK,
    PRICE_CAPS,
    SUBNET,
)
from golem_tasks.testing import FakeProvider

from .golem_helpers import FAST, make_provider, node
from .fake_daemon import Node
from .yagna_samples import PLATFORM, offer_properties


def offer(**changes):
    properties = offer_properties()
    properties.update(changes)
    return properties


@pytest.fixture
def market(daemon):
    """Six providers: two that fit at different prices, and four refused for a reason each."""
    nodes = [
        Node(id=node(1).id, name="cheap", properties=offer(**{
            "golem.com.pricing.model.linear.coeffs": [0.00001, 0.0001, 0.001], "golem.inf.cpu.cores": 2})),
        Node(id=node(2).id, name="dear", properties=offer(**{
            "golem.com.pricing.model.linear.coeffs": [0.0001, 0.001, 0.01]})),
        Node(id=node(3).id, name="elsewhere", properties=offer(**{"golem.node.debug.subnet": "devnet-beta"})),
        Node(id=node(4).id, name="polygon", properties={
            k: v for k, v in offer().items() if k != f"golem.com.payment.platform.{PLATFORM}.address"}),
        Node(id=node(5).id, name="small", properties=offer(**{"golem.inf.mem.gib": 0.25})),
        Node(id=node(6).id, name="greedy", properties=offer(**{
            "golem.com.pricing.model.linear.coeffs": [0.1, 0.1, 0.001]})),
    ]
    daemon.nodes = {n.id: n for n in nodes}
    return daemon


def test_scan_lists_matching_offers_cheapest_first_and_the_others_with_their_reason(market):
    with make_provider(max_cpu_hour_price="10") as provider:
        scan = provider.scan(seconds=3)
    assert isinstance(scan, MarketScan)
    assert [o.provider_name for o in scan.matching] == ["cheap", "dear"]
    cheap = scan.matching[0]
    assert cheap.start_price == Decimal("0.001") and cheap.cpu_hour_price == Decimal("0.3600")
    assert cheap.hour_price == Decimal("0.0360") and cheap.cores == 2 and cheap.memory_gib == 8.0
    reasons = {o.provider_name: o.refusal.category for o in scan.filtered}
    assert reasons == {"elsewhere": SUBNET, "polygon": PAYMENT_NETWORK, "small": HARDWARE, "greedy": PRICE_CAPS}
    small = next(o for o in scan.filtered if o.provider_name == "small")
    assert "min_mem_gib=0.5" in small.refusal.reason
    # A preflight: nothing subscribed, reserved or signed.
    assert not market.subscriptions and not market.allocations and not market.agreements
    assert not market.scans  # the scan was ended


def test_the_estimate_prices_fragments_on_the_cheapest_providers(market):
    with make_provider(max_cpu_hour_price="10", budget="1") as provider:
        scan = provider.scan(seconds=3)
    estimate = scan.estimate(fragments=10, seconds=60, providers=2)
    assert estimate.providers == 2 and estimate.wall == 300
    # cheap: 0.001 + 300 s x (0.0001 + 0.00001); dear: 0.01 + 300 s x (0.001 + 0.0001)
    assert estimate.per_provider == (("cheap", 5, Decimal("0.034")), ("dear", 5, Decimal("0.34")))
    assert estimate.total == Decimal("0.374") and estimate.within_budget
    assert scan.estimate(fragments=1, seconds=60, providers=5).providers == 1
    text = scan.format(estimate)
    assert "2 match the demand" in text and "cheap" in text and "0x0101…0101" in text
    assert "elsewhere (0x0303…0303): subnet: on subnet 'devnet-beta', we use 'public'" in text
    # prices in the token of the network paid on: test GLM here, GLM on polygon
    assert "10 fragment(s) of 60 s on 2 provider(s): about 0.374 tGLM, within the budget of 1 tGLM" in text
    assert "tGLM/hour" in text and "cheap: 5 fragment(s), 0.034 tGLM" in text
    on_polygon = attrs.evolve(scan, platform="erc20-polygon-glm").format(estimate)
    assert "about 0.374 GLM, within the budget of 1 GLM" in on_polygon and " GLM/hour" in on_polygon
    with pytest.raises(ConfigurationError, match="fragments"):
        scan.estimate(fragments=0, seconds=1, providers=1)


def test_a_start_price_over_the_budget_is_named(market):
    with make_provider(budget="0.005") as provider:
        scan = provider.scan(seconds=3)
    assert {o.provider_name: o.refusal.category for o in scan.filtered}["dear"] == BUDGET


def test_backends_without_a_market_scan_nothing(tmp_path):
    with LocalProvider(sandbox="host") as local:
        assert local.scan() is None
    assert FakeProvider().scan() is None


def keep_offers_out(daemon):
    """Offers from another subnet: the fake daemon does not match subnets itself, so its
    demands get no offer, as yagna's matcher would do."""
    for provider_node in daemon.nodes.values():
        provider_node.properties = offer(**{"golem.node.debug.subnet": "devnet-beta"})
    subscribe = daemon._subscribe

    def unmatched(body, **rest):
        answer = subscribe(body=body, **rest)
        with daemon.lock:
            daemon.subscriptions[answer[2].strip('"')].clear()
        return answer
    daemon.routes = [(m, p, r, unmatched if r == "/market-api/v1/demands" and m == "POST" else h)
                     for m, p, r, h in daemon.routes]


def test_no_offer_at_all_is_explained_by_a_scan(daemon):
    keep_offers_out(daemon)
    provider = make_provider(timeouts=attrs.evolve(FAST, negotiation=60), startup_timeout=0.3)
    try:
        with Golem(provider, max_workers=1, progress=False) as golem:
            with pytest.raises(BrokenPool) as caught:
                golem.run(lambda ctx: (yield ctx.run("/bin/true")))
    finally:
        provider.close()
    message = str(caught.value)
    assert "no offer matches the demand; the market shows 2 other offer(s): 2 on another subnet" in message
    assert "they are on subnet devnet-beta: set subnet_tag= to theirs" in message
    assert isinstance(caught.value.__cause__, StartupTimeout)


def test_the_command_line_prints_the_scan_and_the_estimate(market, monkeypatch, capsys):
    from golem_tasks.cli import main
    from golem_tasks.providers.yagna import GolemProvider

    from .yagna_samples import API_URL, APP_KEY, IMAGE_HASH
    monkeypatch.setenv("YAGNA_APPKEY", APP_KEY)
    monkeypatch.setenv("YAGNA_API_URL", API_URL)
    with make_provider() as made:
        payload = made.payload
    monkeypatch.setattr(GolemProvider, "_payload", lambda self, *args: payload)  # no image registry here
    code = main(["market", "scan", "--image", IMAGE_HASH, "--budget", "1", "--max-cpu-hour-price", "10",
                 "--fragments", "10", "--seconds", "60", "--providers", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "6 offer(s), 2 match the demand" in out
    assert "small (0x0505…0505): hardware or runtime: 0.25 GiB of memory, min_mem_gib=0.5" in out
    assert "about 0.374 tGLM, within the budget of 1 tGLM" in out
    assert not market.allocations and not market.agreements

    code = main(["market", "scan", "--image", IMAGE_HASH, "--max-cpu-hour-price", "0.01"])
    assert code == 1  # nothing matches: a script can tell
    assert "nothing can run" in capsys.readouterr().out
    assert main(["market", "scan", "--image", IMAGE_HASH, "--budget", "lots"]) == 2
    assert "budget" in capsys.readouterr().err


def test_while_no_offer_comes_the_status_and_the_warning_say_what_the_market_shows(daemon, caplog):
    keep_offers_out(daemon)
    explained = threading.Event()

    def watch(event):
        if isinstance(event, MarketStatus) and event.unmatched:
            seen.append(event)
            explained.set()
    seen = []
    abort = threading.Event()
    with make_provider(events=watch, timeouts=attrs.evolve(FAST, negotiation=60, report=0.05)) as provider:
        engaging = threading.Thread(target=lambda: pytest.raises(Exception, provider.engage, abort=abort))
        with caplog.at_level(logging.WARNING, logger="golem_tasks.providers.yagna"):
            engaging.start()
            assert explained.wait(10)
            abort.set()
            engaging.join(10)
    status = seen[0]
    assert status.offers == 0 and status.unmatched == ((SUBNET, 2),)
    assert "the market shows 2 on another subnet" in status.summary
    assert "set subnet_tag= to theirs" in caplog.text
