"""On localnet the image a demand names is the one that runs: the loopback registry
serves a GVMI file and the local providers' exe-units download it and run commands
in it (slow: the real daemon)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from golem_tasks import CommandExecutionError, Golem
from golem_tasks.localnet import LocalNet

from ..test_local_provider import bwrap_problem
from ..test_local_vm import make_gvmi

pytestmark = pytest.mark.slow

TAG = "golem-tasks-test/busybox:1"


@pytest.fixture(scope="module")
def net(exeunit_ready: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNet]:
    if bwrap_problem():
        pytest.skip(f"images run in the bwrap sandbox only: {bwrap_problem()}")
    image = make_gvmi(tmp_path_factory.mktemp("image"))
    with LocalNet(providers=1, sandbox="bwrap", images={TAG: str(image)}) as network:
        yield network


def test_the_demands_image_runs_on_a_localnet_provider(net: LocalNet, monkeypatch: pytest.MonkeyPatch) -> None:
    from golem_tasks.providers.yagna import GolemProvider
    for key, value in net.env.items():
        monkeypatch.setenv(key, value)

    def worker(ctx, _):
        listing = yield ctx.run("/bin/sh", "-c", 'echo "$GREETING"; ls /')
        try:
            yield ctx.run("python3", "-c", "print(1)")
        except CommandExecutionError as exc:
            return listing[0].stdout, exc.exit_code
        return listing[0].stdout, 0

    with GolemProvider.from_env(budget="5", image_tag=TAG) as provider, \
            Golem(provider, max_workers=1, max_retries=0, progress=False) as golem:
        stdout, missing = golem.run(worker, None)
    lines = stdout.split()
    assert " ".join(lines[:4]) == "hello from the image" and "bin" in lines[4:]
    assert "usr" not in lines  # the image's root, not this machine's
    assert missing != 0  # python3 is on this machine, not in the image
    assert any(Path(net.workdir, "sandboxes").rglob("*.gvmi"))
