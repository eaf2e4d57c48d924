"""Local provider overhead: N fragments each running /bin/true, against a bare
ThreadPoolExecutor + subprocess loop and GNU parallel, in the same run.

    python benchmarks/bench_local.py [--fragments 400] [--workers 8]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from golem_tasks import Golem
from golem_tasks.providers.local import LocalProvider


def true_worker(ctx, _):
    yield ctx.run("/bin/true")


def bare(n: int, workers: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        codes = list(pool.map(lambda _: subprocess.run(["/bin/true"]).returncode, range(n)))
    assert codes == [0] * n
    return time.perf_counter() - started


def bare_captured(n: int, workers: int) -> float:
    """The bare loop as a job runner writes it: each command's output captured, as the
    local provider does (context for the ratios, which stay against :func:`bare`)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        codes = list(pool.map(lambda _: subprocess.run(["/bin/true"], capture_output=True).returncode, range(n)))
    assert codes == [0] * n
    return time.perf_counter() - started


def gnu_parallel(n: int, workers: int) -> float:
    started = time.perf_counter()
    subprocess.run(["parallel", f"-j{workers}", "/bin/true", ":::", *map(str, range(n))], check=True)
    return time.perf_counter() - started


def golem(n: int, workers: int, sandbox: str) -> float:
    with LocalProvider(sandbox=sandbox) as provider:
        started = time.perf_counter()
        with Golem(provider, max_workers=workers, progress=False) as g:
            g.for_each(true_worker, range(n))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fragments", type=int, default=400)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, w, r = args.fragments, args.workers, args.repeat
    base = min(bare(n, w) for _ in range(r))
    rows = [("bare ThreadPoolExecutor + subprocess", base),
            ("same, capturing stdout and stderr", min(bare_captured(n, w) for _ in range(r)))]
    if shutil.which("parallel"):
        rows.append((f"GNU parallel -j{w}", min(gnu_parallel(n, w) for _ in range(r))))
    rows.append(("golem_tasks, local provider, host sandbox", min(golem(n, w, "host") for _ in range(r))))
    if shutil.which("bwrap"):
        rows.append(("golem_tasks, local provider, bwrap sandbox", min(golem(n, w, "bwrap") for _ in range(r))))
    print(f"fragments={n} max_workers={w} (best of {r})")
    for name, seconds in rows:
        print(f"{name:46s} {seconds:7.3f} s   {seconds / base:5.2f}x bare")


if __name__ == "__main__":
    main()
