"""The local provider as a Golem VM: what the requestor's PATH costs, and what an image costs.

1. ``examples/hash_cracker.py`` run with a PATH whose first entry holds pyenv-like shims
   (``/root/.pyenv/shims`` when present, else a directory of shell-script shims made here)
   against a clean PATH, in the same run. Commands see the VM's PATH either way, so the two
   should take the same time.
2. A first command in a fresh image: the time to unpack a GVMI file (a static busybox plus
   this machine's Python standard library, ~50 MB, in a squashfs) into an empty cache and
   run ``echo``, against the same with the image already cached.

    python benchmarks/bench_local_vm.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

from golem_tasks.commands import Run
from golem_tasks.providers import images
from golem_tasks.providers.local import LocalProvider

ROOT = Path(__file__).resolve().parents[1]
PYENV_SHIMS = "/root/.pyenv/shims"


def shim_dir(scratch: Path) -> str:
    """pyenv's shims when installed, else look-alikes: a bash script per program that
    forks a few processes before exec'ing the real one, as pyenv's do."""
    if os.path.isdir(PYENV_SHIMS):
        return PYENV_SHIMS
    shims = scratch / "shims"
    shims.mkdir()
    for name in ("python3", "python"):
        real = shutil.which(name) or sys.executable
        shim = shims / name
        shim.write_text(f'#!/bin/bash\nfor i in 1 2 3 4 5; do v=$(basename "$0"); done\nexec {real} "$@"\n')
        shim.chmod(0o755)
    return str(shims)


def hash_cracker(path: str) -> float:
    env = dict(os.environ, PATH=path)
    started = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "examples" / "hash_cracker.py"), "--no-progress"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def build_image(scratch: Path) -> Path:
    rootfs = scratch / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    busybox = shutil.which("busybox")
    if busybox is None:
        raise SystemExit("needs busybox-static (apt-get install busybox-static)")
    shutil.copy(busybox, rootfs / "bin" / "busybox")
    (rootfs / "bin" / "echo").symlink_to("busybox")
    stdlib = sorted(glob.glob("/usr/lib/python3.*"))
    if stdlib:
        shutil.copytree(stdlib[-1], rootfs / "usr" / "lib" / os.path.basename(stdlib[-1]), symlinks=True)
    image = scratch / "bench.gvmi"
    subprocess.run(["mksquashfs", str(rootfs), str(image), "-noappend", "-quiet", "-no-progress"],
                   check=True, stdout=subprocess.DEVNULL)
    with image.open("ab") as out:
        out.write(images.metadata_bytes({"Env": ["PATH=/bin"], "WorkingDir": "/golem/work"}))
    return image


def first_command(image: Path, cache: Path) -> float:
    started = time.perf_counter()
    with LocalProvider(sandbox="bwrap", image=image, image_cache=cache) as provider:
        [result] = provider.engage().execute([Run(("echo", "hi"))], timeout=300)
    assert result.stdout == "hi\n"
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows: Dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="golem_tasks-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        clean = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        shimmed = f"{shim_dir(scratch)}:{os.environ.get('PATH', clean)}"
        cracker: Dict[str, List[float]] = {"clean": [], "shims": []}
        for _ in range(args.repeat):  # interleaved: both see the same machine load
            cracker["clean"].append(hash_cracker(clean))
            cracker["shims"].append(hash_cracker(shimmed))
        rows["hash_cracker.py, clean PATH"] = min(cracker["clean"])
        rows[f"hash_cracker.py, PATH={shimmed.split(':')[0]}:..."] = min(cracker["shims"])
        if shutil.which("bwrap") and shutil.which("mksquashfs"):
            image = build_image(scratch)
            size = image.stat().st_size / 2**20
            fresh, cached = [], []
            for attempt in range(args.repeat):
                cache = scratch / f"cache-{attempt}"
                fresh.append(first_command(image, cache))
                cached.append(first_command(image, cache))
            rows[f"first command, fresh image ({size:.0f} MB GVMI, unpacked)"] = min(fresh)
            rows["first command, cached image"] = min(cached)
    print(f"best of {args.repeat}")
    for name, seconds in rows.items():
        print(f"{name:60s} {seconds:7.3f} s")
    clean_time = rows["hash_cracker.py, clean PATH"]
    shim_time = [v for k, v in rows.items() if k.startswith("hash_cracker.py, PATH=")][0]
    print(f"hash_cracker shims / clean: {shim_time / clean_time:.2f}x")


if __name__ == "__main__":
    main()
