"""Feedback before work starts (issue 9 item 4) and errors that name the real causes
(item 2): while no provider is engaged, ``MarketStatus`` events say at once what the
market shows and a warning repeats every ``Timeouts.report`` seconds; ``startup_timeout``
ends the job with the main causes and the fix.

The waiting rules are tested on a fake clock; the end-to-end tests run on the fake
daemon and synchronise on the provider's events."""

from __future__ import annotations

import logging
import threading
from decimal import Decimal

import attrs
import pytest

from golem_tasks import BrokenPool, Golem, StartupTimeout
from golem_tasks.errors import ConfigurationError
from golem_tasks.events import ProviderSearch
from golem_tasks.progress import ProgressBar
from golem_tasks.events import JobStarted
from golem_tasks.providers.yagna import MarketStatus, OfferRejected
from golem_tasks.providers.yagna.market.manifest import provider_refusal
from golem_tasks.providers.yagna.market.status import (
    BUDGET,
    FAILED_EARLIER,
    OUTBOUND,
    PAYMENT_NETWORK,
    PRICE_CAPS,
    PROVIDER_REFUSED,
    SUBNET,
    MarketLedger,
    Refusal,
    StartupWatch,
)

from .golem_helpers import FAST, make_provider, node, of_type
from .yagna_samples import PLATFORM, offer_properties


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def priced(start, per_cpu_sec, per_env_sec):
    properties = offer_properties()
    properties["golem.com.pricing.model.linear.coeffs"] = [per_env_sec, per_cpu_sec, start]
    return properties


# -- the clock of a wait ----------------------------------------------------------------

def test_a_wait_warns_every_report_interval_and_ends_at_the_startup_timeout():
    clock = Clock()
    watch = StartupWatch(report_every=15, startup_timeout=60, clock=clock)
    watch.enter(engaged=False)
    assert watch.active and not watch.warning_due()
    clock.now += 14.9
    assert not watch.warning_due()
    clock.now += 0.2
    assert watch.warning_due() and not watch.warning_due()  # once per interval
    clock.now += 15.1
    assert watch.warning_due()
    assert not watch.expired()
    clock.now += 30
    assert watch.expired() and watch.waited() == pytest.approx(60.2)


def test_retries_within_the_idle_gap_keep_the_clock_a_later_job_starts_a_new_one():
    clock = Clock()
    watch = StartupWatch(report_every=15, startup_timeout=60, clock=clock)
    watch.enter(engaged=False)
    clock.now += 50
    watch.leave()          # the engage failed; the scheduler asks again soon
    clock.now += 5
    watch.enter(engaged=False)
    assert watch.waited() == pytest.approx(55)  # a retry does not reset startup_timeout
    watch.leave()
    clock.now += 3600      # the next job, an hour later
    watch.enter(engaged=False)
    assert watch.waited() == 0 and not watch.expired()


def test_an_engaged_provider_ends_the_wait_and_no_wait_starts_while_one_is():
    clock = Clock()
    watch = StartupWatch(report_every=15, startup_timeout=None, clock=clock)
    watch.enter(engaged=False)
    clock.now += 7
    assert watch.engaged() == 7 and not watch.active
    watch.enter(engaged=True)
    assert not watch.active and watch.deadline() is None and not watch.warning_due()


# -- what the hint says -----------------------------------------------------------------

def test_price_caps_name_the_setting_and_the_price_that_would_do():
    ledger = MarketLedger(platform=PLATFORM)
    for n, asked in enumerate(["3.6", "7.2", "5"] * 4):
        ledger.refused(f"0x{n}", Refusal(PRICE_CAPS, "over the cap", setting="max_cpu_hour_price",
                                         limit=Decimal("0.1"), asked=Decimal(asked)))
    text, reasons = ledger.explain()
    assert text == ("12 offers, 12 rejected by price caps: raise max_cpu_hour_price=3.6 or more (now 0.1): "
                    "the cheapest refused offer asks 3.6 tGLM")  # hoodi pays in test GLM
    assert reasons == ("12 x price caps",)
    assert "check the subnet" not in text


def test_the_price_a_cap_must_reach_is_rounded_up_so_the_fix_works():
    # 0.0001234567 GLM per CPU-second is 0.44444412 per CPU-hour: a cap of 0.444444 (the
    # price rounded to 6 digits the usual way) would still refuse the offer.
    ledger = MarketLedger(platform=PLATFORM)
    ledger.refused("0x1", Refusal(PRICE_CAPS, "over the cap", setting="max_cpu_hour_price",
                                  limit=Decimal("0.1"), asked=Decimal("0.44444412")))
    text, _ = ledger.explain()
    assert "raise max_cpu_hour_price=0.444445 or more (now 0.1)" in text, text


def test_several_causes_come_most_frequent_first_each_with_its_fix():
    ledger = MarketLedger(platform=PLATFORM)
    ledger.refused("0x1", Refusal(PAYMENT_NETWORK, "no common platform", detail=("erc20-polygon-glm",)))
    ledger.refused("0x2", Refusal(PAYMENT_NETWORK, "no common platform", detail=("erc20-amoy-tglm",)))
    ledger.refused("0x3", Refusal(BUDGET, "start price", setting="budget", limit=Decimal(1), asked=Decimal(2)))
    ledger.refused("0x4", Refusal(PROVIDER_REFUSED, "busy with other work"))
    ledger.refused("0x5", Refusal(FAILED_EARLIER, "provider failed earlier in this run"))
    ledger.offered("0x6")
    text, reasons = ledger.explain(pending=1)
    assert text.startswith("6 offers, 2 rejected by payment network, 1 rejected by budget")
    assert "they pay on erc20-amoy-tglm, erc20-polygon-glm, we pay on" in text
    assert "raise budget=2 or more (now 1)" in text
    assert "the providers said: 'busy with other work'" in text
    assert "provider_failure_limit" in text
    assert "1 proposal(s) got no answer" in text
    assert reasons[0] == "2 x payment network"


def test_a_later_offer_that_passes_clears_the_refusal():
    ledger = MarketLedger(platform=PLATFORM)
    ledger.refused("0x1", Refusal(PRICE_CAPS, "too dear", setting="max_cpu_hour_price"))
    ledger.cleared("0x1")
    assert ledger.counts() == () and ledger.offers == 1
    assert ledger.summary(pending=1, candidates=0) == "1 offer, 1 pending"


def test_a_providers_own_refusal_stands_until_it_accepts_a_proposal():
    # Its offers come back on every renewed demand; an error at the startup timeout must
    # still say that it refused us, not just count offers (a stress run showed it).
    ledger = MarketLedger(platform=PLATFORM)
    ledger.refused("0x1", provider_refusal("Outbound rejected because: Everyone rule didn't match whitelist"))
    ledger.cleared("0x1")
    assert ledger.counts() == ((OUTBOUND, 1),)
    assert "1 rejected by outbound" in ledger.explain(pending=1)[0]
    ledger.answered("0x1")
    assert ledger.counts() == ()


def test_no_offer_at_all_is_explained_by_what_a_scan_found():
    ledger = MarketLedger(platform=PLATFORM)
    text, _ = ledger.explain()
    assert text.startswith("no offer matches the demand") and "golem-tasks market scan" in text
    text, reasons = ledger.explain(unmatched=[Refusal(SUBNET, "subnet devnet", detail=("devnet",))] * 3)
    assert "3 on another subnet" in text and "set subnet_tag= to theirs" in text and "devnet" in text
    assert reasons == ("3 x subnet",)


def test_startup_timeout_is_checked_before_anything_is_contacted():
    with pytest.raises(ConfigurationError, match="startup_timeout must be a positive"):
        make_provider(startup_timeout=0)


# -- on the fake daemon ------------------------------------------------------------------

def watcher(condition):
    """A consumer collecting events, and an Event set once ``condition(events)`` holds."""
    seen, hit = [], threading.Event()

    def consume(event):
        seen.append(event)
        if condition(seen):
            hit.set()
    return seen, hit, consume


def test_the_market_status_says_at_once_why_nothing_is_engaged(daemon, caplog):
    for provider_node in daemon.nodes.values():
        provider_node.properties = priced(start=0, per_cpu_sec=0.001, per_env_sec=0)

    def refused_both(events):
        return any(isinstance(e, MarketStatus) and dict(e.rejected).get(PRICE_CAPS) == 2 for e in events)
    seen, hit, consume = watcher(refused_both)
    abort = threading.Event()
    timeouts = attrs.evolve(FAST, negotiation=60, report=0.2)
    with make_provider(events=consume, max_cpu_hour_price="0.1", timeouts=timeouts) as provider:
        engaging = threading.Thread(target=lambda: pytest.raises(Exception, provider.engage, abort=abort))
        with caplog.at_level(logging.WARNING, logger="golem_tasks.providers.yagna"):
            engaging.start()
            assert hit.wait(10), seen
            abort.set()
            engaging.join(10)
    statuses = of_type(seen, MarketStatus)
    assert statuses[0].engaged == 0 and statuses[0].waited < 1  # the wait said so as it began
    last = next(e for e in statuses if dict(e.rejected).get(PRICE_CAPS) == 2)
    assert last.offers == 2 and isinstance(last, ProviderSearch)
    assert "2 offers, 2 rejected (2 price caps)" in last.summary
    # The status changes only when the market does: no stream of identical events.
    assert len(statuses) == len({(e.offers, e.rejected, e.pending, e.candidates) for e in statuses})


def test_a_warning_repeats_while_nothing_is_engaged(daemon, caplog):
    for provider_node in daemon.nodes.values():
        provider_node.properties = priced(start=0, per_cpu_sec=0.001, per_env_sec=0)
    warned = threading.Event()

    class Spy(logging.Handler):
        def emit(self, record):
            if "no Golem provider engaged after" in record.getMessage() and "price caps" in record.getMessage():
                warned.set()
    spy = Spy(level=logging.WARNING)
    logger = logging.getLogger("golem_tasks.providers.yagna")
    logger.addHandler(spy)
    abort = threading.Event()
    try:
        timeouts = attrs.evolve(FAST, negotiation=60, report=0.05)
        with make_provider(max_cpu_hour_price="0.1", timeouts=timeouts) as provider:
            engaging = threading.Thread(target=lambda: pytest.raises(Exception, provider.engage, abort=abort))
            engaging.start()
            assert warned.wait(10)
            abort.set()
            engaging.join(10)
    finally:
        logger.removeHandler(spy)


def test_startup_timeout_breaks_the_pool_with_the_causes_and_the_fix(daemon):
    for provider_node in daemon.nodes.values():
        provider_node.properties = priced(start=0, per_cpu_sec=0.002, per_env_sec=0)
    timeouts = attrs.evolve(FAST, negotiation=60)
    # startup_timeout: long enough for both offers to be seen on a busy machine
    provider = make_provider(max_cpu_hour_price="0.1", timeouts=timeouts, startup_timeout=2)
    try:
        with Golem(provider, max_workers=2, progress=False) as golem:
            with pytest.raises(BrokenPool) as caught:
                golem.run(lambda ctx: (yield ctx.run("/bin/true")))
    finally:
        provider.close()
    message = str(caught.value)
    assert "startup_timeout=2 s" in message
    assert "2 offers, 2 rejected by price caps: raise max_cpu_hour_price=7.2 or more (now 0.1)" in message
    assert "check the subnet" not in message
    cause = caught.value.__cause__
    assert isinstance(cause, StartupTimeout) and cause.reasons == ("2 x price caps",)
    assert not daemon.agreements  # nothing was signed, nothing spent
    assert provider.total_cost == 0


def test_startup_timeout_is_a_provider_option_of_golem(daemon, monkeypatch):
    from .yagna_samples import API_URL, APP_KEY, IMAGE_HASH
    monkeypatch.setenv("YAGNA_APPKEY", APP_KEY)
    monkeypatch.setenv("YAGNA_API_URL", API_URL)
    monkeypatch.setenv("GOLEM_TASKS_REGISTRY_URL", "http://127.0.0.1:9")
    from golem_tasks.providers.yagna import GolemProvider
    with make_provider() as made:
        payload = made.payload
    monkeypatch.setattr(GolemProvider, "_payload", lambda self, *args: payload)  # no image registry
    with Golem("golem", image=IMAGE_HASH, provider_options={"startup_timeout": 42, "storage": None},
               progress=False) as golem:
        assert golem.provider.startup_timeout == 42.0


def test_the_first_engaged_provider_ends_the_wait_with_a_last_status(daemon):
    daemon.nodes[node(2).id].properties = priced(start=0, per_cpu_sec=0.002, per_env_sec=0)
    seen = []
    with make_provider(events=seen.append, max_cpu_hour_price="1") as provider:
        provider.engage().release()
    statuses = of_type(seen, MarketStatus)
    assert statuses[-1].engaged == 1 and "engaged after" in statuses[-1].summary
    assert [e for e in seen if isinstance(e, OfferRejected)]


def test_the_progress_bar_shows_the_search_and_then_the_counts_again(tmp_path):
    out = (tmp_path / "bar.txt").open("w+")
    bar = ProgressBar(file=out)
    bar(JobStarted(job_id=1, kind="map", total=3))
    bar(MarketStatus(waited=3.0, engaged=0, summary="waiting for a provider (3 s): 2 offers, 2 rejected "
                     "(2 price caps), 0 pending", offers=2, rejected=[(PRICE_CAPS, 2)], pending=0, candidates=0))
    out.flush()
    assert "2 rejected (2 price caps)" in (tmp_path / "bar.txt").read_text()
    bar(MarketStatus(waited=4.0, engaged=1, summary="1 provider(s) engaged", offers=2, rejected=[],
                     pending=0, candidates=0))
    out.flush()
    assert (tmp_path / "bar.txt").read_text().rstrip().endswith("done=0, failed=0, retried=0]")
    out.close()


def test_startup_timeout_does_not_cut_short_a_provider_being_engaged(daemon):
    # provider-1 takes longer to approve than startup_timeout; provider-2 is refused.
    daemon.nodes[node(2).id].properties = priced(start=0, per_cpu_sec=0.002, per_env_sec=0)
    approving = threading.Event()
    original = daemon._wait

    def slow_wait(id, query, **rest):
        approving.wait(10)  # released by the test once the startup timeout has passed
        return original(id=id, query=query, **rest)
    daemon.routes = [(m, p, r, slow_wait if r.endswith("/wait") else h) for m, p, r, h in daemon.routes]
    timeouts = attrs.evolve(FAST, negotiation=60, approval=30)
    with make_provider(max_cpu_hour_price="1", timeouts=timeouts, startup_timeout=0.2) as provider:
        abort, errors, result = threading.Event(), [], []

        def wait_too():
            try:
                provider.engage(abort=abort)
            except Exception as exc:
                errors.append(exc)
        waiting = threading.Thread(target=wait_too)
        engaging = threading.Thread(target=lambda: result.append(provider.engage()))
        engaging.start()
        while not daemon.agreements:  # provider-1's agreement is being made
            threading.Event().wait(0.01)
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive() and not errors  # it waits on: an agreement is under way
        approving.set()
        engaging.join(10)
        abort.set()
        waiting.join(10)
        [session] = result
        assert session.info.id == node(1).id
        assert not any(isinstance(e, StartupTimeout) for e in errors)  # the wait ended with the engagement
        session.release()


def test_the_progress_bar_of_a_golem_shows_the_market_while_waiting(daemon, capsys):
    for provider_node in daemon.nodes.values():
        provider_node.properties = priced(start=0, per_cpu_sec=0.002, per_env_sec=0)
    provider = make_provider(max_cpu_hour_price="0.1", timeouts=attrs.evolve(FAST, negotiation=60),
                             startup_timeout=2)
    try:
        with Golem(provider, max_workers=1, progress=True) as golem:
            with pytest.raises(BrokenPool):
                list(golem.map(lambda ctx, i: (yield ctx.run("/bin/true")), range(3)))
    finally:
        provider.close()
    assert "2 offers, 2 rejected (2 price caps), 0 pending" in capsys.readouterr().err
