"""The provider record end to end on localnet with priced providers (issue 11 §4): the
cheapest provider fails every command; the first run learns it, the second run's
market skips it for the dearer, reliable ones, and ``golem-tasks providers`` says so.

(tests/localnet/test_provider_record_localnet.py writes the bad record by hand; here a
real run earns it.)"""

from __future__ import annotations

import threading
from typing import Iterator, List

import pytest

from golem_tasks import Golem
from golem_tasks import events as ev
from golem_tasks.cli import main
from golem_tasks.localnet import Faults, LocalNet, Negotiator, OfferSpec
from golem_tasks.provider_record import ProviderRecord

pytestmark = pytest.mark.slow

IMAGE = dict(image_hash="a" * 56, image_url="http://127.0.0.1:9/image.gvmi")
BAD = 0  # provider-0: the cheapest offer, and every command fails
HANG = 120.0  # only catches a hang


@pytest.fixture(scope="module")
def net(exeunit_ready: str) -> Iterator[LocalNet]:
    cheap = OfferSpec(price_cpu_sec="0.00001", price_duration_sec="0.000002")
    dear = OfferSpec(price_cpu_sec="0.0002", price_duration_sec="0.00004")
    negotiators = [Negotiator(offer=cheap), Negotiator(offer=dear), Negotiator(offer=dear)]
    with LocalNet(providers=3, negotiators=negotiators, faults={BAD: Faults(fail_runs="disk full")}) as network:
        yield network


def hello(ctx, n):
    results = yield ctx.run("/bin/sh", "-c", f"sleep 0.5; echo {n}")
    return int(results[0].stdout)


def run(net: LocalNet, path, n: int, worker=hello, watch=None, **options) -> List[ev.Event]:
    from golem_tasks.providers.yagna import GolemProvider
    seen: List[ev.Event] = []
    consumers = [seen.append] + ([watch] if watch else [])
    with GolemProvider(app_key=net.requestor.app_key, api_url=net.api_url, budget="5", provider_record=path,
                       **IMAGE, **options) as provider, \
            Golem(provider, max_workers=2, progress=False, events=consumers) as golem:
        assert list(golem.map(worker, range(n), timeout=300)) == list(range(n))  # timeout: a hang guard
    return seen


def test_a_provider_that_failed_its_commands_is_skipped_next_run_and_the_cli_shows_why(net, tmp_path, capsys):
    from golem_tasks.providers.yagna import OfferRejected
    path = tmp_path / "providers.sqlite"
    bad = net.providers[BAD].node_id.lower()

    # The first run must meet the bad provider: the market engages the first offers that
    # arrive, so with two workers among three providers it may never engage it. Allowing
    # it and one dearer provider engages both, and the dearer one takes the retries. It
    # holds its first fragment until the bad one has failed enough to be released (3 in
    # a row), or a quick start could leave it too few fragments to fail.
    one_good = next(identity.node_id for index, identity in enumerate(net.providers) if index != BAD)
    bad_released = threading.Event()

    def watch(event: ev.Event) -> None:
        if isinstance(event, ev.ProviderReleased) and event.provider_id.lower() == bad and event.excluded:
            bad_released.set()

    def hello_once_the_bad_one_is_released(ctx, n):
        if ctx.provider_id.lower() != bad:
            assert bad_released.wait(HANG), "the bad provider was never released"
        return (yield from hello(ctx, n))

    first = run(net, path, 8, worker=hello_once_the_bad_one_is_released, watch=watch,
                allow_providers=[bad, one_good])
    # Its failures were retried on the other.
    failed_there = [e for e in first if isinstance(e, ev.FragmentRetried) and e.provider_id.lower() == bad]
    assert len(failed_there) >= 3 and all(e.reason.startswith("CommandExecutionError") for e in failed_there)
    with ProviderRecord(path) as record:
        stats = {s.provider_id.lower(): s for s in record.stats()}
        assert stats[bad].failed == len(failed_there) and stats[bad].done == 0
        assert record.skip(bad) is not None
    good = {identity.node_id.lower() for identity in net.providers} - {bad}
    assert sum(stats[pid].done for pid in good if pid in stats) == 8

    second = run(net, path, 6)
    engaged = {e.provider_id.lower() for e in second if isinstance(e, ev.ProviderEngaged)}
    assert engaged and engaged <= good  # the cheapest is passed over for the reliable
    about_bad = [e for e in second if isinstance(e, OfferRejected) and e.provider_id.lower() == bad]
    assert all(e.reason.startswith("bad provider record") for e in about_bad)
    assert not [e for e in second if isinstance(e, ev.FragmentRetried)]

    assert main(["providers", "--record", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(line for line in lines if line.lower().startswith(bad))
    assert row.split()[1:5] == ["provider-0", "0", str(len(failed_there)), "0"]  # name done failed lost
    assert "skipped: failed" in row
    assert not [line for line in lines if "skipped" in line and not line.lower().startswith(bad)]
