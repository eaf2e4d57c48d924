# The spend guard on a local network: a priced provider and a budget that runs out
# mid-job. The work stops while the provider's final invoice still fits, so it is paid.
import os

from golem_tasks import BrokenPool, Golem, SpendUpdated
from golem_tasks.localnet import LocalNet
from golem_tasks.localnet.provider.negotiator import Negotiator
from golem_tasks.localnet.provider.offer import OfferSpec

# 0.3 tGLM to start, then 0.01 tGLM a second, a debit note every second
priced = OfferSpec(price_start="0.3", price_duration_sec="0.01", price_cpu_sec="0", debit_note_interval=1)


def slow(ctx, i):
    results = yield ctx.run("/bin/sh", "-c", f"sleep 4; echo {i}")
    return results[0].stdout.strip()


def show(event):
    print(f"spent {event.spent:.4f}, projected {event.projected:.4f} of {event.budget} {event.token}")


with LocalNet(providers=1, negotiators=[Negotiator(offer=priced)]) as net:
    os.environ.update(net.env)  # YAGNA_API_URL, YAGNA_APPKEY, GOLEM_TASKS_REGISTRY_URL
    options = {"budget": "0.55"}  # the start price, its stop margin and ~14 s of work
    with Golem(provider="golem", image="golem/alpine:latest", provider_options=options) as golem:
        golem.add_event_consumer(show, kinds=(SpendUpdated,))
        try:
            for value in golem.map(slow, range(10)):
                print(value)
        except BrokenPool as exc:
            print(exc)  # the budget, what was accepted, and the fix: a larger budget=
