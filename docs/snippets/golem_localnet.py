# A whole Golem network in a Python process: the real yagna daemon, a payment chain
# stub, an image registry and two providers, all on 127.0.0.1.
import os

from golem_tasks import Golem
from golem_tasks.localnet import LocalNet


def hello(ctx):
    results = yield ctx.run("/bin/echo", "hello")
    return results[0].stdout.strip()


with LocalNet(providers=2) as net:
    os.environ.update(net.env)  # YAGNA_API_URL, YAGNA_APPKEY, GOLEM_TASKS_REGISTRY_URL
    with Golem(provider="golem", image="golem/alpine:latest", progress=False) as golem:
        assert golem.run(hello) == "hello"
