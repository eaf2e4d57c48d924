"""localnet's GPU providers without a daemon: the offer carries the runtime, capability
and card as ya-runtime-vm-nvidia publishes them (read back by the requestor's parser),
and ``LocalNet(gpus=...)`` / ``golem-tasks localnet up --gpu`` add such providers."""

from __future__ import annotations

import pytest

from golem_tasks.localnet import LocalNet, OfferSpec
from golem_tasks.localnet.cli import gpu_card
from golem_tasks.providers.gpu import GpuInfo
from golem_tasks.providers.yagna.market.runtime import gpu_of

CARD = GpuInfo(model="NVIDIA GeForce RTX 3090", memory_gib=24.0, cuda_version="12.2")


def test_a_gpu_offer_reads_back_as_the_card_it_advertises():
    properties = OfferSpec(runtime="vm-nvidia", gpu=CARD).properties(node_id="0x01", name="gpu")
    assert properties["golem.runtime.name"] == "vm-nvidia"
    assert "!exp:gpu" in properties["golem.runtime.capabilities"]
    assert properties["golem.!exp.gap-35.v1.inf.gpu.model"] == "NVIDIA GeForce RTX 3090"
    assert properties["golem.!exp.gap-35.v1.inf.gpu.memory.total.gib"] == 24.0
    assert gpu_of(properties) == CARD


def test_several_cards_are_advertised_per_device():
    cards = GpuInfo(model="NVIDIA A30", memory_gib=24.0, count=2)
    properties = OfferSpec(runtime="vm-nvidia", gpu=cards).properties(node_id="0x01", name="gpu")
    assert properties["golem.!exp.gap-35.v1.inf.gpu.d0.quantity"] == 2
    assert gpu_of(properties) == cards


def test_a_plain_offer_has_no_card_and_a_card_needs_the_gpu_runtime():
    properties = OfferSpec().properties(node_id="0x01", name="plain")
    assert gpu_of(properties) is None and "!exp:gpu" not in properties["golem.runtime.capabilities"]
    with pytest.raises(ValueError, match="runtime='vm-nvidia'"):
        OfferSpec(gpu=CARD)


def test_localnet_adds_one_gpu_provider_per_card_after_the_others():
    net = LocalNet(providers=1, gpus=[CARD])
    assert net.provider_count == 2
    assert net.negotiators[0].offer.gpu is None
    assert net.negotiators[1].offer.gpu == CARD and net.negotiators[1].offer.runtime == "vm-nvidia"


def test_the_gpu_option_of_localnet_up_takes_a_model_and_its_memory():
    assert gpu_card("NVIDIA GeForce RTX 3090:24") == GpuInfo(model="NVIDIA GeForce RTX 3090", memory_gib=24.0)
    assert gpu_card("Tesla T4") == GpuInfo(model="Tesla T4")
    for bad in (":24", "T4:0", "T4:lots", ""):
        with pytest.raises(ValueError, match="MODEL:GIB"):
            gpu_card(bad)
