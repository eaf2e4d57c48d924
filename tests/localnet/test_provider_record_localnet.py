"""End to end on localnet: the provider record learns from a real run, and a provider
with a bad record is refused by the market while the job runs on the others."""

from __future__ import annotations

from typing import Iterator

import pytest

from golem_tasks import Golem
from golem_tasks import events as ev
from golem_tasks.localnet import LocalNet
from golem_tasks.provider_record import ProviderRecord

pytestmark = pytest.mark.slow

IMAGE = dict(image_hash="a" * 56, image_url="http://127.0.0.1:9/image.gvmi")


@pytest.fixture(scope="module")
def net(exeunit_ready: str) -> Iterator[LocalNet]:
    with LocalNet(providers=2) as network:
        yield network


def make_provider(net: LocalNet, **options):
    from golem_tasks.providers.yagna import GolemProvider
    return GolemProvider(app_key=net.requestor.app_key, api_url=net.api_url, budget="5", **IMAGE, **options)


def hello(ctx, n):
    results = yield ctx.run("/bin/echo", str(n))
    return int(results[0].stdout)


def test_the_record_learns_and_a_bad_provider_is_refused(net, tmp_path):
    path = tmp_path / "providers.sqlite"
    with make_provider(net, provider_record=path) as provider, \
            Golem(provider, max_workers=2, progress=False) as golem:
        assert list(golem.map(hello, range(6))) == list(range(6))
    with ProviderRecord(path) as record:
        stats = {s.provider_id: s for s in record.stats()}
    node_ids = {identity.node_id.lower(): identity.name for identity in net.providers}
    assert set(stats) <= set(node_ids) and sum(s.done for s in stats.values()) == 6
    assert all(s.name == node_ids[pid] and s.failed == s.lost == 0 for pid, s in stats.items())

    bad = net.providers[0].node_id.lower()
    # A run in which that provider lost every fragment: more than it did in the first run
    # (demand-driven engagement may have given it all 6 there), so its record is bad.
    losses = 5 + (stats[bad].done if bad in stats else 0)
    with ProviderRecord(path) as record:
        for index in range(losses):
            record(ev.FragmentRetried(job_id=1, index=index, provider_id=bad, attempt=1,
                                      reason="ProviderLost: gone", delay=0))
        record(ev.JobFinished(job_id=1, done=0, failed=0, retried=losses, elapsed=1.0))
    with ProviderRecord(path) as record:
        assert record.skip(bad) is not None
    seen: list = []
    with make_provider(net, provider_record=path) as provider, \
            Golem(provider, max_workers=2, progress=False, events=seen.append) as golem:
        assert list(golem.map(hello, range(4))) == list(range(4))
    from golem_tasks.providers.yagna import OfferRejected
    # Whether the bad provider's offer was read at all depends on timing: engagement
    # follows demand, so once the good provider took the work the demand may be withdrawn
    # before that offer arrives. When it was read, it was refused for its record (the
    # refusal itself: tests/yagna/test_provider_record_market.py).
    about_bad = [e for e in seen if isinstance(e, OfferRejected) and e.provider_id.lower() == bad]
    assert all(e.reason.startswith("bad provider record") for e in about_bad)
    engaged = {e.provider_id.lower() for e in seen if isinstance(e, ev.ProviderEngaged)}
    assert engaged and bad not in engaged
