"""GPU providers and extra volumes on the Golem backend (issue 13 items 3, 4), without a
daemon or on the fake one: the demand asks for the GPU runtime and capability, offers'
cards are read under the property names real providers publish, the per-hour cap
covers a GPU runtime's prices, the scan shows the card, bad settings fail before
anything is sent, and extra volumes reach the deploy command and ProviderInfo."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from golem_tasks.errors import ConfigurationError
from golem_tasks.providers.gpu import GpuInfo
from golem_tasks.providers.yagna.activity.volumes import check_volumes, deploy_volumes, session_volumes
from golem_tasks.providers.yagna.market.demand import VmPayload, build_demand
from golem_tasks.providers.yagna.market.filters import OfferFilter, expected_cost
from golem_tasks.providers.yagna.market.models import LinearPricing, Offer, Proposal
from golem_tasks.providers.yagna.market.runtime import gpu_of, hour_price, resolve_runtime
from golem_tasks.providers.yagna.market.scan import MarketScan, judge
from golem_tasks.providers.yagna.market.status import HARDWARE, PRICE_CAPS

from .fake_daemon import node
from .golem_helpers import make_provider
from .yagna_samples import IMAGE_HASH, IMAGE_URL, PLATFORM, offer_properties

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)

#: What ya-runtime-vm-nvidia publishes: its GAP-35 object, flattened by the market.
VM_NVIDIA_CARD = {
    "golem.!exp.gap-35.v1.inf.gpu.model": "NVIDIA GeForce RTX 3060 Ti",
    "golem.!exp.gap-35.v1.inf.gpu.cuda.enabled": True,
    "golem.!exp.gap-35.v1.inf.gpu.cuda.cores": 4864,
    "golem.!exp.gap-35.v1.inf.gpu.cuda.version": "12.2",
    "golem.!exp.gap-35.v1.inf.gpu.clocks.graphics.mhz": 1950,
    "golem.!exp.gap-35.v1.inf.gpu.memory.bandwidth.gib": 448,
    "golem.!exp.gap-35.v1.inf.gpu.memory.total.gib": 8.0,
}
#: Newer providers: one subtree per device, with how many of that model.
MULTI_CARD = {
    "golem.!exp.gap-35.v1.inf.gpu.cuda.version": "12.3",
    "golem.!exp.gap-35.v1.inf.gpu.d0.model": "NVIDIA A30",
    "golem.!exp.gap-35.v1.inf.gpu.d0.memory.total.gib": 24.0,
    "golem.!exp.gap-35.v1.inf.gpu.d0.quantity": 2,
}
#: The AI runtime's non-experimental names.
AI_RUNTIME_CARD = {
    "golem.inf.gpu.d0.model": "NVIDIA GeForce RTX 4090",
    "golem.inf.gpu.d0.memory.total.gib": 23.99,
    "golem.inf.gpu.cuda.version": "12.4",
}


def gpu_offer(**changes):
    properties = offer_properties()
    properties.update({"golem.runtime.name": "vm-nvidia", "golem.runtime.capabilities": ["vpn", "!exp:gpu"],
                       **VM_NVIDIA_CARD})
    properties.update(changes)
    return properties


# -- the demand ---------------------------------------------------------------------------

def test_gpu_true_asks_for_the_nvidia_runtime_and_the_gpu_capability():
    assert resolve_runtime(None, (), gpu=True) == ("vm-nvidia", ("!exp:gpu",))
    assert resolve_runtime(None, ["vpn"], gpu=False) == ("vm", ("vpn",))
    # runtime= with capabilities=, as golem-js spells it, is the same demand
    assert resolve_runtime("vm-nvidia", ["!exp:gpu"], gpu=False) == ("vm-nvidia", ("!exp:gpu",))
    assert resolve_runtime("vm-nvidia", ["vpn", "!exp:gpu"], gpu=True) == ("vm-nvidia", ("vpn", "!exp:gpu"))
    runtime, capabilities = resolve_runtime(None, ["vpn"], gpu=True)
    demand = build_demand(VmPayload(image_hash=IMAGE_HASH, image_url=IMAGE_URL, runtime=runtime,
                                    capabilities=capabilities), now=NOW)
    assert "(golem.runtime.name=vm-nvidia)" in demand.constraints
    assert "(golem.runtime.capabilities=!exp:gpu)" in demand.constraints
    assert "(golem.runtime.capabilities=vpn)" in demand.constraints


@pytest.mark.parametrize("runtime, capabilities, gpu, words", [
    ("vm", (), True, ["gpu=True", "runtime='vm'", "drop runtime="]),
    ("wasmtime", (), True, ["gpu=True", "runtime='wasmtime'"]),
    (None, "!exp:gpu", False, ["capabilities must be a list", "capabilities=['!exp:gpu']"]),
    (None, ["gpu"], False, ["'gpu'", "'!exp:gpu'", "gpu=True"]),
    (None, [{"name": "!exp:gpu"}], False, ["capabilities must be plain names"]),
    (None, [42], False, ["capabilities must be plain names"]),
    (None, 42, False, ["capabilities must be a list"]),
    ("vm nvidia", (), False, ["runtime must be a runtime name"]),
    (None, (), "yes", ["gpu must be True or False"]),
])
def test_bad_gpu_settings_name_the_argument_and_the_fix(runtime, capabilities, gpu, words):
    with pytest.raises(ConfigurationError) as caught:
        resolve_runtime(runtime, capabilities, gpu)
    for word in words:
        assert word in str(caught.value)


def test_a_bad_gpu_setting_fails_before_the_daemon_is_asked_anything(daemon_mock):
    # No route is registered: any request would fail with a connection error instead.
    with pytest.raises(ConfigurationError, match="gpu=True"):
        make_provider(gpu=True, runtime="vm")
    with pytest.raises(ConfigurationError, match="volume"):
        make_provider(volumes="/golem/resource")
    assert len(daemon_mock.calls) == 0


# -- the offer ----------------------------------------------------------------------------

@pytest.mark.parametrize("properties, card", [
    (VM_NVIDIA_CARD, GpuInfo(model="NVIDIA GeForce RTX 3060 Ti", memory_gib=8.0, cuda_version="12.2")),
    (MULTI_CARD, GpuInfo(model="NVIDIA A30", memory_gib=24.0, count=2, cuda_version="12.3")),
    (AI_RUNTIME_CARD, GpuInfo(model="NVIDIA GeForce RTX 4090", memory_gib=23.99, cuda_version="12.4")),
    ({"golem.!exp.gap-35.v1.inf.gpu.model": "Tesla T4"}, GpuInfo(model="Tesla T4")),
])
def test_the_card_is_read_under_the_names_providers_publish(properties, card):
    assert gpu_of({**offer_properties(), **properties}) == card


def test_an_offer_without_a_card_has_none():
    assert gpu_of(offer_properties()) is None
    assert gpu_of({"golem.!exp.gap-35.v1.inf.gpu.model": ""}) is None


def test_the_card_label_says_model_count_and_memory():
    assert GpuInfo(model="NVIDIA A30", memory_gib=24.0, count=2).label == "2x NVIDIA A30 24 GiB"
    assert GpuInfo(model="Tesla T4").label == "Tesla T4"


# -- prices -------------------------------------------------------------------------------

def test_the_env_hour_price_counts_gpu_time_of_runtimes_that_price_it():
    vm = LinearPricing(Decimal("0"), {"golem.usage.cpu_sec": Decimal("0.0001"),
                                      "golem.usage.duration_sec": Decimal("0.0005")})
    ai = LinearPricing(Decimal("0"), {"golem.usage.duration_sec": Decimal("0.0001"),
                                      "golem.usage.gpu-sec": Decimal("0.0004")})
    assert hour_price(vm) == Decimal("1.8") == hour_price(ai)
    assert expected_cost(ai, 3600) == Decimal("1.8")


def test_the_env_hour_cap_refuses_a_gpu_offer_above_it():
    properties = gpu_offer(**{"golem.com.usage.vector": ["golem.usage.duration_sec", "golem.usage.gpu-sec"],
                              "golem.com.pricing.model.linear.coeffs": [0.0001, 0.0004, 0.0]})
    proposal = Proposal(proposal_id="p", issuer_id=node(1).id, state="Initial", timestamp=NOW,
                        properties=properties)
    refusal = OfferFilter(max_env_hour_price="1.5").check(proposal)
    assert refusal is not None and refusal.category == PRICE_CAPS and refusal.setting == "max_env_hour_price"
    assert refusal.asked == Decimal("1.8") and "price per env-hour 1.8" in refusal.reason
    assert OfferFilter(max_env_hour_price="2").check(proposal) is None


# -- the scan -----------------------------------------------------------------------------

def scanned(properties, payload):
    offer = Offer(offer_id="o", provider_id=node(1).id, timestamp=NOW,
                  properties={**properties, "golem.node.id.name": "gpu-box", "golem.node.debug.subnet": "public"})
    return judge(offer, payload=payload, subnet="public", platform=PLATFORM, offer_filter=OfferFilter(),
                 budget=Decimal(5))


GPU_PAYLOAD = VmPayload(image_hash=IMAGE_HASH, image_url=IMAGE_URL, runtime="vm-nvidia", capabilities=["!exp:gpu"])
VM_PAYLOAD = VmPayload(image_hash=IMAGE_HASH, image_url=IMAGE_URL)


def test_the_scan_shows_the_card_of_matching_gpu_offers():
    card = scanned(gpu_offer(), GPU_PAYLOAD)
    plain = scanned(offer_properties(), GPU_PAYLOAD)
    assert card.matches and card.gpu == gpu_of(VM_NVIDIA_CARD)
    assert plain.refusal is not None and plain.refusal.category == HARDWARE
    assert "runtime 'vm', the demand asks for 'vm-nvidia'" in plain.refusal.reason
    text = MarketScan(platform=PLATFORM, subnet="public", budget=Decimal(5), matching=(card,), filtered=(plain,),
                      elapsed=0.1).format()
    header = next(line for line in text.splitlines() if "GLM/hour" in line)
    assert header.rstrip().endswith("GPU")
    row = next(line for line in text.splitlines() if line.strip().startswith("gpu-box") and "0x" in line)
    assert row.rstrip().endswith("NVIDIA GeForce RTX 3060 Ti 8 GiB")


def test_a_gpu_offer_lacking_the_capability_is_refused_and_named_with_its_card():
    lacking = scanned(gpu_offer(**{"golem.runtime.capabilities": ["vpn"]}), GPU_PAYLOAD)
    assert lacking.refusal is not None and "lacks capabilities !exp:gpu" in lacking.refusal.reason
    text = MarketScan(platform=PLATFORM, subnet="public", budget=Decimal(5), matching=(), filtered=(lacking,),
                      elapsed=0.1).format()
    assert "NVIDIA GeForce RTX 3060 Ti 8 GiB): hardware or runtime: lacks capabilities !exp:gpu" in text


def test_a_scan_of_plain_offers_has_no_gpu_column():
    plain = scanned(offer_properties(), VM_PAYLOAD)
    assert plain.matches and plain.gpu is None
    text = MarketScan(platform=PLATFORM, subnet="public", budget=Decimal(5), matching=(plain,), filtered=(),
                      elapsed=0.1).format()
    assert "GPU" not in text


def test_a_plain_demand_refuses_a_gpu_runtime_offer():
    refused = scanned(gpu_offer(), VM_PAYLOAD)
    assert refused.refusal is not None and refused.refusal.category == HARDWARE


# -- extra volumes ------------------------------------------------------------------------

def test_extra_volumes_are_host_volumes_of_the_deploy():
    assert check_volumes(["/golem/resource", "/data", "/golem/resource"]) == ("/golem/resource", "/data")
    assert deploy_volumes(("/golem/resource",)) == {"/golem/resource": {"host": {}}}
    assert deploy_volumes(()) is None
    assert session_volumes(()) == ()  # the image's volumes are unknown: nothing checked
    assert session_volumes(("/golem/resource",)) == ("/golem/input", "/golem/output", "/golem/work",
                                                     "/golem/resource")


@pytest.mark.parametrize("volumes, words", [
    ("/golem/resource", ["the string", "volumes=['/golem/resource']"]),
    (["golem/resource"], ["normalised absolute path"]),
    (["/golem/../etc"], ["normalised absolute path"]),
    (["/golem"], ["the VM's own directories"]),
    (["/proc/x"], ["the VM's own directories"]),
    ([None], ["normalised absolute path"]),
])
def test_bad_volumes_name_the_problem(volumes, words):
    with pytest.raises(ConfigurationError) as caught:
        check_volumes(volumes)
    for word in words:
        assert word in str(caught.value)


def test_a_gpu_session_names_its_card_and_a_volume_session_its_volumes(daemon, daemon_mock):
    daemon.nodes = {}
    gpu_node = node(1, properties=gpu_offer())
    daemon.nodes[gpu_node.id] = gpu_node
    with make_provider(gpu=True, volumes=["/golem/resource"]) as provider:
        session = provider.engage()
        info = session.info
        unit = daemon.exeunit(info.properties["activity_id"])
        session.release()
    assert info.gpu == GpuInfo(model="NVIDIA GeForce RTX 3060 Ti", memory_gib=8.0, cuda_version="12.2")
    assert info.name == "provider-1 (NVIDIA GeForce RTX 3060 Ti 8 GiB)"
    assert info.volumes == ("/golem/input", "/golem/output", "/golem/work", "/golem/resource")
    deploy = unit.scripts[0][0]
    assert deploy == {"deploy": {"volumes": {"/golem/resource": {"host": {}}}}}
    demands = [json.loads(call.request.body) for call in daemon_mock.calls
               if call.request.method == "POST" and call.request.url.split("?")[0].endswith("/demands")]
    assert demands and all("(golem.runtime.name=vm-nvidia)" in d["constraints"] and
                           "(golem.runtime.capabilities=!exp:gpu)" in d["constraints"] for d in demands)


def test_without_extra_volumes_the_deploy_is_bare_and_nothing_is_checked(daemon):
    with make_provider() as provider:
        session = provider.engage()
        info = session.info
        unit = daemon.exeunit(info.properties["activity_id"])
        session.release()
    assert unit.scripts[0][0] == {"deploy": {}}
    assert info.volumes == () and info.gpu is None and "(" not in info.name  # no card in its name


# -- through Golem ------------------------------------------------------------------------

def test_golem_by_name_refuses_a_gpu_with_the_wrong_runtime_before_any_request(daemon_mock, monkeypatch):
    from golem_tasks import Golem
    from .yagna_samples import API_URL, APP_KEY
    monkeypatch.setenv("YAGNA_APPKEY", APP_KEY)
    monkeypatch.setenv("YAGNA_API_URL", API_URL)
    with pytest.raises(ConfigurationError, match="drop runtime="):
        Golem("golem", image=IMAGE_HASH, provider_options={"gpu": True, "runtime": "vm", "image_url": IMAGE_URL})
    assert len(daemon_mock.calls) == 0


def test_a_worker_can_read_the_card_it_got_on_the_fake_provider():
    from golem_tasks import Golem
    from golem_tasks.testing import FakeProvider

    def card(ctx):
        yield ctx.run("nvidia-smi")
        return ctx.provider.gpu.model, ctx.provider.gpu.memory_gib

    with FakeProvider(lambda command, session: "GPU 0: Tesla T4", gpu=GpuInfo(model="Tesla T4", memory_gib=16)) as fake:
        with Golem(fake, max_workers=1, progress=False) as golem:
            assert golem.run(card) == ("Tesla T4", 16)


def test_a_market_without_the_gpu_runtime_is_explained_as_such():
    from golem_tasks.providers.yagna.market.status import MarketLedger
    ledger = MarketLedger(platform=PLATFORM)
    refusal = scanned(offer_properties(), GPU_PAYLOAD).refusal
    text, reasons = ledger.explain(unmatched=[refusal] * 2)
    assert "2 short of hardware or runtime" in text
    assert "runtime 'vm', the demand asks for 'vm-nvidia'" in text and "gpu=True needs providers with a card" in text
    assert "lower min_mem_gib" not in text


def test_market_scan_gpu_lists_the_cards(daemon, monkeypatch, capsys):
    from golem_tasks.cli import main
    from golem_tasks.providers.yagna import GolemProvider

    from .yagna_samples import API_URL, APP_KEY
    gpu_node = node(3, properties=gpu_offer())
    daemon.nodes[gpu_node.id] = gpu_node
    monkeypatch.setenv("YAGNA_APPKEY", APP_KEY)
    monkeypatch.setenv("YAGNA_API_URL", API_URL)
    monkeypatch.setattr(GolemProvider, "_payload",  # no image registry here
                        lambda self, *args: VmPayload(image_hash=IMAGE_HASH, image_url=IMAGE_URL, **args[-1]))
    assert main(["market", "scan", "--image", IMAGE_HASH, "--gpu"]) == 0
    out = capsys.readouterr().out
    assert "3 offer(s), 1 match the demand" in out
    assert out.splitlines()[3].rstrip().endswith("GPU")
    assert "NVIDIA GeForce RTX 3060 Ti 8 GiB" in out.splitlines()[4]
    assert "provider-1 (0x0101…0101): hardware or runtime: runtime 'vm', the demand asks for 'vm-nvidia'" in out
