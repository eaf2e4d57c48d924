"""Local provider overhead: N fragments each running /bin/true, against a bare
ThreadPoolExecutor + subprocess loop and GNU parallel, in the same run.

    python benchmarks/bench_local.py [--fragments 400] [--workers 8] [--repeat 3] [--rusage]

With ``--rusage`` each row also shows where the CPU went in its best run: this process
(the requestor), its children (agents and commands, counted once they are reaped: the
host sandbox's when its provider closes; bwrap's commands are reaped inside the sandbox
and never counted) and this process's context switches.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Sequence, Tuple

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


Usage = Tuple[float, float, int]


def _usage() -> Usage:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return (own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime, own.ru_nvcsw + own.ru_nivcsw)


def best(runs: Sequence[Tuple[str, Callable[[], float]]], repeat: int) -> List[Tuple[str, float, Usage]]:
    """Each row's fastest of ``repeat`` runs: its wall time and its (own CPU, children's
    CPU, context switches). The rows take turns, round after round, so a machine that
    slows down for a while slows every row alike instead of the one running then."""
    fastest: Dict[str, Tuple[float, Usage]] = {}
    for _ in range(repeat):
        for name, run in runs:
            before = _usage()
            wall = run()
            after = _usage()
            usage = (after[0] - before[0], after[1] - before[1], after[2] - before[2])
            if name not in fastest or wall < fastest[name][0]:
                fastest[name] = (wall, usage)
    return [(name, *fastest[name]) for name, _ in runs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fragments", type=int, default=400)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rusage", action="store_true", help="also print each row's CPU and context switches")
    args = parser.parse_args()
    n, w, r = args.fragments, args.workers, args.repeat
    runs: List[Tuple[str, Callable[[], float]]] = [
        ("bare ThreadPoolExecutor + subprocess", lambda: bare(n, w)),
        ("same, capturing stdout and stderr", lambda: bare_captured(n, w))]
    if shutil.which("parallel"):
        runs.append((f"GNU parallel -j{w}", lambda: gnu_parallel(n, w)))
    runs.append(("golem_tasks, local provider, host sandbox", lambda: golem(n, w, "host")))
    if shutil.which("bwrap"):
        runs.append(("golem_tasks, local provider, bwrap sandbox", lambda: golem(n, w, "bwrap")))
    rows = best(runs, r)
    base = rows[0][1]
    print(f"fragments={n} max_workers={w} (best of {r}, the rows taking turns)")
    for name, seconds, (own, children, switches) in rows:
        usage = f"   cpu: requestor {own:6.3f} s, children {children:6.3f} s, {switches:6d} switches" \
            if args.rusage else ""
        print(f"{name:46s} {seconds:7.3f} s   {seconds / base:5.2f}x bare{usage}")


if __name__ == "__main__":
    main()
