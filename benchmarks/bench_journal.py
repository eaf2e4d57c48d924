"""Journal cost: overhead per fragment of ``journal=`` against no journal, and a rerun
of a finished job from its journal against the first run, on a zero-latency fake
provider (``record=False``), all in one process.

    python benchmarks/bench_journal.py [--fragments 20000] [--rerun-fragments 100000] [--workers 8]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Optional

from golem_tasks import Golem
from golem_tasks.testing import FakeProvider


def worker(ctx, item):
    results = yield ctx.run("echo", "x")
    return results[0].exit_code + item


def run(n: int, workers: int, journal: Optional[str]) -> float:
    fake = FakeProvider(strict=False, assert_all_used=False, record=False)
    started = time.perf_counter()
    with Golem(fake, max_workers=workers, progress=False) as golem:
        total = sum(golem.map(worker, range(n), journal=journal))
    elapsed = time.perf_counter() - started
    assert total == n * (n - 1) // 2
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fragments", type=int, default=20000)
    parser.add_argument("--rerun-fragments", type=int, default=100000)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        n = args.fragments
        plain = run(n, args.workers, None)
        journaled = run(n, args.workers, os.path.join(tmp, "overhead.journal"))
        plain = min(plain, run(n, args.workers, None))
        journaled = min(journaled, run(n, args.workers, os.path.join(tmp, "overhead2.journal")))
        print(f"{n} fragments, {args.workers} workers: no journal {plain:.2f} s ({plain / n * 1e6:.1f} us/fragment), "
              f"journal {journaled:.2f} s ({journaled / n * 1e6:.1f} us/fragment): "
              f"overhead {(journaled - plain) / n * 1e6:.1f} us/fragment, ratio {journaled / plain:.2f}")
        m = args.rerun_fragments
        path = os.path.join(tmp, "rerun.journal")
        first = run(m, args.workers, path)
        rerun = run(m, args.workers, path)
        print(f"{m} fragments: first run {first:.2f} s, rerun from the journal {rerun:.2f} s "
              f"({rerun / m * 1e6:.1f} us/fragment): ratio {rerun / first:.3f} (target < 0.10); "
              f"journal {os.path.getsize(path) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
