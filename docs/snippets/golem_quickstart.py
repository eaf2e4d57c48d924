# Needs a yagna daemon: YAGNA_APPKEY (and YAGNA_API_URL, default http://127.0.0.1:7465) set,
# e.g. by `eval "$(golem-tasks localnet env)"`.
from golem_tasks import Golem


def hello(ctx):
    results = yield ctx.run("/bin/sh", "-c", "echo hello from $(uname -s)")
    return f"{ctx.provider_name}: {results[0].stdout.strip()}"


with Golem(provider="golem", image="golem/alpine:latest", max_workers=2,
           provider_options={"budget": "0.5"}, progress=False) as golem:
    print(golem.run(hello))
