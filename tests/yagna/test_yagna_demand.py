"""build_demand: properties, constraints, the expiration window, payment decoration."""

from datetime import datetime, timedelta, timezone

import pytest

from golem_tasks.errors import ConfigurationError
from golem_tasks.providers.yagna import VmPayload
from golem_tasks.providers.yagna.market.demand import CHOSEN_PLATFORM, Demand, and_constraints, build_demand
from golem_tasks.providers.yagna.payment.models import MarketDecoration

from .yagna_samples import IMAGE_HASH, IMAGE_URL, decoration

NOW = datetime(2025, 10, 4, 12, 0, tzinfo=timezone.utc)
PAYLOAD = VmPayload(image_hash=IMAGE_HASH, image_url=IMAGE_URL)


def test_a_vm_demand():
    demand = build_demand(PAYLOAD, now=NOW)
    assert dict(demand.properties) == {
        "golem.srv.comp.expiration": int((NOW + timedelta(minutes=25)).timestamp() * 1000),
        "golem.node.debug.subnet": "public",
        "golem.srv.comp.task_package": f"hash:sha3:{IMAGE_HASH}:{IMAGE_URL}",
        "golem.srv.comp.vm.package_format": "gvmkit-squash",
    }
    assert demand.constraints == (
        "(&(golem.runtime.name=vm)(golem.inf.mem.gib>=0.5)(golem.inf.storage.gib>=2.0)"
        "(golem.inf.cpu.threads>=1)(golem.node.debug.subnet=public))")
    assert demand.expiration == NOW + timedelta(minutes=25)


def test_hardware_capabilities_and_subnet():
    payload = VmPayload(image_hash=IMAGE_HASH, image_url=IMAGE_URL, min_mem_gib=4, min_storage_gib=10.5,
                        min_threads=8, min_cores=4, capabilities=["vpn", "inet"], runtime="vm-nvidia")
    demand = build_demand(payload, subnet="golem-tasks-test", now=NOW,
                          constraints=["(golem.node.id.name=provider-1)"])
    assert demand.properties["golem.node.debug.subnet"] == "golem-tasks-test"
    assert demand.constraints == (
        "(&(golem.runtime.name=vm-nvidia)(golem.inf.mem.gib>=4.0)(golem.inf.storage.gib>=10.5)"
        "(golem.inf.cpu.threads>=8)(golem.inf.cpu.cores>=4)(golem.runtime.capabilities=vpn)"
        "(golem.runtime.capabilities=inet)(golem.node.debug.subnet=golem-tasks-test)"
        "(golem.node.id.name=provider-1))")


def test_payment_decoration_is_merged():
    demand = build_demand(PAYLOAD, now=NOW, decoration=MarketDecoration.from_json(decoration()))
    assert demand.properties["golem.com.payment.protocol.version"] == "3"
    assert demand.properties["golem.com.payment.platform.erc20-hoodi-tglm.address"].startswith("0x")
    assert demand.constraints.endswith(
        "(golem.node.debug.subnet=public))(golem.com.payment.platform.erc20-hoodi-tglm.address=*)"
        "(golem.com.payment.protocol.version>1))")
    assert demand.constraints.startswith("(&(&(golem.runtime.name=vm)")


@pytest.mark.parametrize("expiration", [timedelta(minutes=5), timedelta(minutes=30), NOW + timedelta(minutes=10)])
def test_expiration_inside_the_window(expiration):
    build_demand(PAYLOAD, expiration=expiration, now=NOW)


@pytest.mark.parametrize("expiration", [timedelta(minutes=4, seconds=59), timedelta(minutes=31),
                                        timedelta(hours=2), NOW - timedelta(minutes=1)])
def test_expiration_outside_the_window_is_refused(expiration):
    with pytest.raises(ConfigurationError, match="5-30 min from now.*providers reject"):
        build_demand(PAYLOAD, expiration=expiration, now=NOW)


def test_a_debit_note_accept_timeout_allows_longer_demands():
    demand = build_demand(PAYLOAD, expiration=timedelta(hours=3), debit_note_accept_timeout=120, now=NOW)
    assert demand.properties["golem.com.payment.debit-notes.accept-timeout?"] == 120
    with pytest.raises(ConfigurationError, match="5-600 min"):
        build_demand(PAYLOAD, expiration=timedelta(hours=11), debit_note_accept_timeout=120, now=NOW)


@pytest.mark.parametrize("seconds", [4, 241])
def test_the_accept_timeout_must_suit_providers(seconds):
    with pytest.raises(ConfigurationError, match="5-240"):
        build_demand(PAYLOAD, debit_note_accept_timeout=seconds, now=NOW)


def test_naive_times_are_refused():
    with pytest.raises(ConfigurationError, match="aware"):
        build_demand(PAYLOAD, expiration=datetime(2025, 10, 4, 12, 20), now=NOW)


def test_default_now_is_the_clock():
    demand = build_demand(PAYLOAD)
    ahead = demand.expiration - datetime.now(timezone.utc)
    assert timedelta(minutes=24) < ahead <= timedelta(minutes=25)


@pytest.mark.parametrize("kwargs,match", [
    ({"image_hash": "abc"}, "sha3-224"),
    ({"image_hash": IMAGE_HASH.upper()}, "sha3-224"),
    ({"image_url": "ftp://x/y.gvmi"}, "http"),
    ({"min_mem_gib": 0}, "min_mem_gib"),
    ({"min_threads": 0}, "min_threads"),
    ({"min_cores": 0}, "min_cores"),
])
def test_payload_is_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VmPayload(**{"image_hash": IMAGE_HASH, "image_url": IMAGE_URL, **kwargs})


def test_with_properties_returns_a_new_demand():
    demand = build_demand(PAYLOAD, now=NOW)
    countered = demand.with_properties({CHOSEN_PLATFORM: "erc20-holesky-tglm"})
    assert countered.properties[CHOSEN_PLATFORM] == "erc20-holesky-tglm"
    assert CHOSEN_PLATFORM not in demand.properties
    with pytest.raises(TypeError):
        demand.properties["x"] = 1


def test_demand_round_trip():
    demand = build_demand(PAYLOAD, now=NOW)
    assert Demand.from_json(demand.to_json()) == demand
    with pytest.raises(TypeError):
        Demand.from_json({"properties": [], "constraints": "()"})


@pytest.mark.parametrize("parts,result", [
    ([], "()"), (["()", ""], "()"), (["(a=1)"], "(a=1)"), (["(a=1)", "()", " (b=2) "], "(&(a=1)(b=2))")])
def test_and_constraints(parts, result):
    assert and_constraints(parts) == result


def test_and_constraints_needs_parentheses():
    with pytest.raises(ConfigurationError, match="parenthesised"):
        and_constraints(["a=1"])
