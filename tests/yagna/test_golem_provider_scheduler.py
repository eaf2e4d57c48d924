"""The real scheduler on the Golem provider, against the fake daemon: the examples'
workers run unchanged, failures are retried on another provider, and a break or Ctrl-C
leaves nothing behind."""

import hashlib
import importlib.util
import math
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from golem_tasks import Golem
from golem_tasks import events as core_events
from golem_tasks.providers.yagna import AgreementTerminated, BudgetReached, InvoiceAccepted

from ..helpers import HANG_GUARD
from .golem_helpers import make_provider, node, of_type, ready

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"golem_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def square(ctx, n):
    batch = ctx.batch()
    batch.send_json({"n": n}, "/golem/input/task.json")
    batch.run("python3", "-c", "import json; n = json.load(open('/golem/input/task.json'))['n']; "
                               "json.dump({'square': n * n}, open('/golem/output/out.json', 'w'))")
    batch.download_json("/golem/output/out.json")
    results = yield batch
    return results[-1].data["square"]


def all_ended(daemon) -> bool:
    return (all(a["state"] in ("Terminated", "Cancelled", "Rejected") for a in daemon.agreements.values())
            and all(a["state"] == "Terminated" for a in daemon.activities.values())
            and daemon.subscriptions == {} and daemon.released == list(daemon.allocations))


def test_map_runs_on_two_providers(daemon, events):
    # The test is about two providers sharing a map, so fragment 0 holds its slot until
    # the second provider is engaged: engagement follows demand, and a provider that
    # got ready after the first one had cleared the queue would rightly be let go.
    engaged: list = []
    both_engaged = threading.Event()

    def count_engaged(event):
        if isinstance(event, core_events.ProviderEngaged):
            engaged.append(event.provider_id)
            if len(engaged) == 2:
                both_engaged.set()

    def square_once_both_are_engaged(ctx, n):
        if n == 0:
            assert both_engaged.wait(HANG_GUARD), "the second provider was never engaged"
        return (yield from square(ctx, n))

    with make_provider(events=events.append) as provider:
        with Golem(provider, max_workers=2, progress=False, events=count_engaged) as golem:
            assert list(golem.map(square_once_both_are_engaged, range(8))) == [n * n for n in range(8)]
    assert {a["node"] for a in daemon.agreements.values()} == {node(1).id, node(2).id}
    for activity in daemon.activities.values():  # deploy + start once per engaged provider
        assert sum("deploy" in command for script in activity["unit"].scripts for command in script) == 1
    assert all_ended(daemon)
    assert len(of_type(events, InvoiceAccepted)) == 2
    assert all(event.success for event in of_type(events, AgreementTerminated))
    assert set(provider.costs()) == {node(1).id, node(2).id}


def test_the_examples_workers_run_unchanged(daemon, tmp_path):
    hello, pi, cracker, shared = (load(name) for name in ("hello", "pi", "hash_cracker", "shared_file"))
    corpus = shared.make_corpus(tmp_path, repeat=3)
    with make_provider() as provider:
        with Golem(provider, max_workers=2, progress=False) as golem:
            assert "says:" in golem.run(hello.hello)
            hits = sum(golem.map(pi.throw_darts, [(seed, 2000) for seed in range(4)]))
            assert abs(4.0 * hits / 8000 - math.pi) < 0.2
        target = hashlib.sha256(b"gtk").hexdigest()
        with Golem(provider, max_workers=2, progress=False, initializer=cracker.make_initializer(target)) as golem:
            found = [value for value in golem.map(cracker.crack, cracker.chunks(cracker.words(3), 4000)) if value]
            assert found == ["gtk"]
        with Golem(provider, max_workers=2, progress=False, initializer=shared.make_initializer(corpus)) as golem:
            assert list(golem.map(shared.count, ["golem", "banana"])) == [6, 0]
    assert all_ended(daemon)


def test_a_batch_timeout_is_retried_on_the_other_provider(daemon, events):
    def stuck_on_first(args):
        return (0, "", "", math.inf) if "python3" in args else None
    daemon.nodes[node(1).id].handler = stuck_on_first
    daemon.nodes[node(1).id].properties["golem.com.pricing.model.linear.coeffs"] = [0, 0, 0]  # tried first
    with make_provider() as provider:
        ready(provider)
        # batch_timeout leaves room for a loaded machine: provider-2 must not time out too
        with Golem(provider, max_workers=1, batch_timeout=2, progress=False, events=events.append) as golem:
            assert golem.run(square, 7) == 49
    retried = of_type(events, core_events.FragmentRetried)
    assert retried[0].provider_id == node(1).id and "BatchTimeoutError" in retried[0].reason
    # Until the scheduler asks GolemSession.usable, the stopped session is found out by
    # one more attempt (ProviderLost) before it is released.
    assert all(r.provider_id == node(1).id for r in retried) and len(retried) <= 2
    released = of_type(events, core_events.ProviderReleased)
    assert released[0].provider_id == node(1).id
    first = next(a for a in daemon.agreements.values() if a["node"] == node(1).id)
    assert first["reason"]["golem.requestor.code"] == "Cancelled"
    assert all_ended(daemon)


def test_a_break_leaves_nothing_behind(daemon):
    def slow_after_first(args):
        return (0, "", "", math.inf) if any("sleepy" in a for a in args) else None

    def worker(ctx, n):
        results = yield ctx.run("/bin/sh", "-c", "echo fast" if n == 0 else "echo sleepy")
        return results[0].stdout

    for provider_node in daemon.nodes.values():
        provider_node.handler = slow_after_first
    with make_provider() as provider:
        with Golem(provider, max_workers=2, progress=False) as golem:
            for result in golem.as_completed(worker, range(4)):
                assert result.value == "fast\n"
                break
    assert all_ended(daemon)


def test_ctrl_c_leaves_nothing_behind(daemon):
    def worker(ctx, n):
        results = yield ctx.run("/bin/sh", "-c", "echo first" if n == 0 else "hang")
        return results[0].stdout

    hanging = threading.Semaphore(0)

    def hang(args):
        if "hang" not in args:
            return None
        hanging.release()
        return (0, "", "", math.inf)

    for provider_node in daemon.nodes.values():
        provider_node.handler = hang
    with pytest.raises(KeyboardInterrupt):
        with make_provider() as provider:
            with Golem(provider, max_workers=2, progress=False) as golem:
                for _ in golem.map(worker, range(4)):
                    # Ctrl-C while both providers are mid-batch (what the test is about),
                    # not while the second one is still being engaged.
                    assert hanging.acquire(timeout=30) and hanging.acquire(timeout=30)
                    raise KeyboardInterrupt
    assert all_ended(daemon)
    reasons = [a["reason"]["golem.requestor.code"] for a in daemon.agreements.values()]
    assert reasons and set(reasons) == {"Cancelled"}  # a provider was mid-batch: work cancelled


def test_a_budget_for_one_start_price_runs_the_job_on_one_provider(daemon, events):
    for number in (1, 2):
        daemon.nodes[node(number).id].properties["golem.com.pricing.model.linear.coeffs"] = [0, 0, 0.6]
        daemon.nodes[node(number).id].invoice = "0.6"
    with make_provider(events=events.append, budget="1") as provider:
        ready(provider)
        with Golem(provider, max_workers=2, progress=False) as golem:
            assert list(golem.map(square, range(6))) == [n * n for n in range(6)]
    assert len(daemon.agreements) == 1  # the second start price would not fit in what was left
    assert "budget=" in of_type(events, BudgetReached)[0].reason
    assert provider.total_cost == Decimal("0.6")
    assert sum(Decimal(amount) for amount in daemon.accepted.values()) <= Decimal(1)
    assert all_ended(daemon)
