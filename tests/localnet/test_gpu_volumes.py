"""On the real daemon (issue 13 items 3, 4): a GPU job engages only a provider that
offers the ``vm-nvidia`` runtime with a card, and the scan and the job summary show the
card; a plain job never engages (nor pays) the GPU provider; extra volumes reach the
local exe-unit's sandbox, and a transfer into a directory the VM does not have fails.

The network: provider-0 offers the plain ``vm`` runtime, provider-1 ``vm-nvidia`` with
an advertised card (no CUDA: commands run in the local sandbox like everywhere).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Iterator, List

import pytest

from golem_tasks import CommandExecutionError, ConfigurationError, FragmentFailed, Golem
from golem_tasks import events as ev
from golem_tasks.localnet import LocalNet, Negotiator, OfferSpec
from golem_tasks.progress import format_summary
from golem_tasks.providers.gpu import GpuInfo
from golem_tasks.providers.yagna.market.status import HARDWARE, PRICE_CAPS

pytestmark = pytest.mark.slow

IMAGE = dict(image_hash="a" * 56, image_url="http://127.0.0.1:9/image.gvmi")
CARD = GpuInfo(model="NVIDIA GeForce RTX 3090", memory_gib=24.0, cuda_version="12.2")
LABEL = "NVIDIA GeForce RTX 3090 24 GiB"


@pytest.fixture(scope="module")
def net(exeunit_ready: str) -> Iterator[LocalNet]:
    gpu = OfferSpec(runtime="vm-nvidia", gpu=CARD, price_duration_sec=Decimal("0.0005"))
    with LocalNet(providers=2, negotiators=[Negotiator(), Negotiator(offer=gpu)], binary=exeunit_ready) as network:
        yield network


def make_provider(net: LocalNet, **options):
    from golem_tasks.providers.yagna import GolemProvider
    options.setdefault("budget", "5")
    return GolemProvider(app_key=net.requestor.app_key, api_url=net.api_url, **IMAGE, **options)


def where(ctx, n):
    results = yield ctx.run("/bin/echo", str(n))
    assert results[0].stdout.strip() == str(n)
    return ctx.provider_name


def finished(events: List[ev.Event]) -> ev.JobFinished:
    return next(e for e in events if isinstance(e, ev.JobFinished))


def test_a_gpu_job_engages_only_the_gpu_provider_and_shows_its_card(net):
    gpu_id = net.providers[1].node_id
    provider = make_provider(net, gpu=True)
    seen: List[ev.Event] = []
    try:
        scan = provider.scan(seconds=5)
        with Golem(provider, max_workers=2, progress=False, events=seen.append) as golem:
            names = list(golem.map(where, range(4)))
    finally:
        provider.close()
    assert [o.provider_id for o in scan.matching] == [gpu_id]
    assert scan.matching[0].gpu == CARD and scan.matching[0].hour_price == Decimal("1.8")
    plain = next(o for o in scan.filtered if o.provider_name == "provider-0")
    assert plain.refusal is not None and plain.refusal.category == HARDWARE
    assert "runtime 'vm', the demand asks for 'vm-nvidia'" in plain.refusal.reason
    assert LABEL in scan.format()
    assert set(names) == {f"provider-1 ({LABEL})"}
    summary = format_summary(finished(seen))
    assert f"provider-1 ({LABEL}): 4 done" in summary
    assert set(provider.costs()) <= {gpu_id} and provider.total_cost > 0


def test_a_plain_job_never_engages_the_gpu_provider(net):
    plain_id, gpu_id = net.providers[0].node_id, net.providers[1].node_id
    provider = make_provider(net)
    seen: List[ev.Event] = []
    try:
        scan = provider.scan(seconds=5)
        with Golem(provider, max_workers=2, progress=False, events=seen.append) as golem:
            names = list(golem.map(where, range(4)))
    finally:
        provider.close()
    assert [o.provider_id for o in scan.matching] == [plain_id]
    refused = next(o for o in scan.filtered if o.provider_id == gpu_id)
    assert refused.gpu == CARD and "runtime 'vm-nvidia', the demand asks for 'vm'" in refused.refusal.reason
    assert set(names) == {"provider-0"}
    engaged = {e.provider_id for e in seen if isinstance(e, ev.ProviderEngaged)}
    assert engaged == {plain_id}
    assert gpu_id not in provider.costs()


def test_extra_volumes_receive_transfers_and_other_paths_are_refused_where_the_batch_is_built(net, tmp_path):
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights" * 1000)

    def worker(ctx):
        try:
            ctx.batch().send_file(source, "/golem/other/model.bin")
        except ConfigurationError as exc:
            refused = str(exc)
        results = yield (ctx.batch()
                         .send_file(source, "/golem/resource/model.bin")
                         .send_bytes(b"scratch", "/data/note")
                         .run("/bin/sh", "-c", "wc -c < /golem/resource/model.bin; cat /data/note")
                         .download_bytes("/golem/resource/model.bin"))
        return refused, results[2].stdout.split(), results[3].data, ctx.provider.volumes

    # inline_limit=0: the data goes through GFTP and the exe-unit's transfer command
    provider = make_provider(net, volumes=["/golem/resource", "/data"], inline_limit=0)
    try:
        with Golem(provider, max_workers=1, progress=False) as golem:
            refused, output, downloaded, volumes = golem.run(worker)
    finally:
        provider.close()
    assert "/golem/other/model.bin is not in a volume of the provider" in refused
    assert output == ["7000", "scratch"] and downloaded == source.read_bytes()
    assert volumes == ("/golem/input", "/golem/output", "/golem/work", "/golem/resource", "/data")


def test_without_the_volume_a_transfer_into_it_fails_on_the_provider(net, tmp_path):
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights")

    def worker(ctx):
        yield ctx.batch().send_file(source, "/golem/resource/model.bin")

    provider = make_provider(net, inline_limit=0)
    try:
        with Golem(provider, max_workers=1, max_retries=0, progress=False) as golem:
            with pytest.raises(FragmentFailed) as caught:
                golem.run(worker)
    finally:
        provider.close()
    assert isinstance(caught.value.attempts[-1], CommandExecutionError)
    assert "path not found in container: /golem/resource/model.bin" in str(caught.value)


def test_the_env_hour_cap_refuses_a_gpu_priced_above_it(net):
    provider = make_provider(net, gpu=True, max_env_hour_price="1")
    try:
        scan = provider.scan(seconds=5)
    finally:
        provider.close()
    assert not scan.matching
    card = next(o for o in scan.filtered if o.provider_id == net.providers[1].node_id)
    assert card.refusal is not None and card.refusal.category == PRICE_CAPS
    assert card.refusal.setting == "max_env_hour_price" and card.refusal.asked == Decimal("1.8")
