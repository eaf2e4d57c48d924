# Backup copies on a whole local Golem network: four providers, the cheapest (so the
# market engages it) made 20 times slower with a localnet test knob.
import os

from golem_tasks import Golem, JobFinished, Speculation
from golem_tasks.localnet import Faults, LocalNet, Negotiator, OfferSpec


def nap(ctx, n):  # idempotent, as a speculated worker must be
    results = yield ctx.run("/bin/sh", "-c", f"sleep 0.2; echo {n}")
    return int(results[0].stdout)


cheap = Negotiator(offer=OfferSpec(price_cpu_sec="0.00001", price_duration_sec="0.000002"))
negotiators = [cheap, Negotiator(), Negotiator(), Negotiator()]
with LocalNet(providers=4, negotiators=negotiators, faults={0: Faults(slowdown=20)}) as net:
    os.environ.update(net.env)  # YAGNA_API_URL, YAGNA_APPKEY, GOLEM_TASKS_REGISTRY_URL
    finished = []
    with Golem(provider="golem", image="golem/alpine:latest", max_workers=4, progress=False,
               speculate=Speculation(min_finished=3),  # judge stragglers after 3 fragments, not 5
               provider_options={"provider_record": False}) as golem:
        golem.add_event_consumer(finished.append, kinds=(JobFinished,))
        assert list(golem.map(nap, range(40))) == list(range(40))
    print(f"backups: {finished[0].backups} started, {finished[0].backups_won} won")
# backups: 1 started, 1 won
