# Needs a yagna daemon: YAGNA_APPKEY (and YAGNA_API_URL) set, e.g. by
# `eval "$(golem-tasks localnet env)"`. Keeps the provider record next to the script.
from golem_tasks import Golem
from golem_tasks.provider_record import ProviderRecord


def hello(ctx, n):
    results = yield ctx.run("/bin/echo", str(n))
    return int(results[0].stdout)


with Golem(provider="golem", image="golem/alpine:latest", max_workers=2, speculate=True, progress=False,
           provider_options={"budget": "0.5", "provider_record": "providers.sqlite"}) as golem:
    assert list(golem.map(hello, range(6), journal="hello.journal")) == list(range(6))

with ProviderRecord("providers.sqlite") as record:  # what `golem-tasks providers --record ...` prints
    print(record.format())
# provider                                     name                   done failed  lost   mean s  runs  note
# 0x3c5e...                                    provider-1                4      0     0     0.08     1
# 0x8a1f...                                    provider-0                2      0     0     0.09     1
