# An extra volume on a whole local Golem network: the provider mounts /golem/resource into
# the VM at deploy; the batch sends a file into it, a command reads it, and it comes back.
import os
import tempfile
from pathlib import Path

from golem_tasks import Golem
from golem_tasks.localnet import LocalNet

model = Path(tempfile.mkdtemp()) / "model.bin"  # stands for your data
model.write_bytes(b"weights" * 1000)


def checksum(ctx):
    results = yield (ctx.batch()
                     .send_file(model, "/golem/resource/model.bin")
                     .run("/bin/sh", "-c", "wc -c < /golem/resource/model.bin")
                     .download_bytes("/golem/resource/model.bin"))
    return int(results[1].stdout), results[2].data, ctx.provider.volumes


with LocalNet(providers=1) as net:
    os.environ.update(net.env)  # YAGNA_API_URL, YAGNA_APPKEY, GOLEM_TASKS_REGISTRY_URL
    with Golem(provider="golem", image="golem/alpine:latest", progress=False,
               provider_options={"volumes": ["/golem/resource"], "provider_record": False}) as golem:
        size, back, volumes = golem.run(checksum)
    print(f"{size} bytes on the provider; downloaded back intact: {back == model.read_bytes()}")
    print("volumes:", ", ".join(volumes))
model.unlink()
model.parent.rmdir()
# 7000 bytes on the provider; downloaded back intact: True
# volumes: /golem/input, /golem/output, /golem/work, /golem/resource
