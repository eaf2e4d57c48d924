import re

from golem_tasks import Golem
from golem_tasks.providers.yagna import GolemProvider


def cheap_and_known(proposal):
    # any rule of your own: the proposal's properties are the offer's
    return proposal.properties.get("golem.inf.cpu.architecture") == "x86_64"


provider = GolemProvider(
    image_tag="golem/python:3.11-slim",
    min_mem_gib=2, min_storage_gib=4, min_cpu_threads=2,        # what offers must have
    allow_providers=[re.compile(r"^my-farm-\d+$")],              # ids, names or regexes
    deny_providers=["0x1111111111111111111111111111111111111111"],
    offer_filter=cheap_and_known,
    max_start_price="0.01", max_cpu_hour_price="0.2", max_env_hour_price="0.05",  # GLM
    budget="2",
)
with provider, Golem(provider, max_workers=4) as golem:
    ...
