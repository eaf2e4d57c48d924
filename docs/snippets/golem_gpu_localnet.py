# A GPU job on a whole local Golem network: one plain provider and one that offers a card
# through the vm-nvidia runtime (advertised only: its commands run in the local sandbox).
import os

from golem_tasks import Golem
from golem_tasks.localnet import LocalNet
from golem_tasks.providers.gpu import GpuInfo

card = GpuInfo(model="NVIDIA GeForce RTX 3090", memory_gib=24, cuda_version="12.2")


def which_card(ctx):
    yield ctx.run("/bin/true")  # nvidia-smi would fail here: there is no device
    return ctx.provider.gpu, ctx.provider_name


with LocalNet(providers=1, gpus=[card]) as net:
    os.environ.update(net.env)  # YAGNA_API_URL, YAGNA_APPKEY, GOLEM_TASKS_REGISTRY_URL
    with Golem(provider="golem", image="golem/alpine:latest", progress=False,
               provider_options={"gpu": True, "max_env_hour_price": "2", "provider_record": False}) as golem:
        gpu, name = golem.run(which_card)
    print(f"{gpu.model}, {gpu.memory_gib:g} GiB, CUDA {gpu.cuda_version}")
    print(name)
# NVIDIA GeForce RTX 3090, 24 GiB, CUDA 12.2
# provider-1 (NVIDIA GeForce RTX 3090 24 GiB)
