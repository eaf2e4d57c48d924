"""Peak memory against input length: 10^4, 10^5 and 10^6 lazily generated fragments
through the fake provider, results consumed with ``map`` (in order, so finished ones
may wait behind an unfinished one) and with ``as_completed``. Each size and call runs
in a fresh child process so peak RSS figures do not bleed into each other.

    python benchmarks/bench_memory.py [--sizes 10000 100000 1000000] [--calls map as_completed]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def worker(ctx, item):
    results = yield ctx.run("echo", "x")
    return item + results[0].exit_code


def child(n: int, call: str) -> None:
    from golem_tasks import Golem
    from golem_tasks.testing import FakeProvider

    # record=False: the fake would otherwise keep every call for assertions
    fake = FakeProvider(strict=False, assert_all_used=False, record=False)
    started = time.perf_counter()
    count = 0
    with Golem(fake, max_workers=8, progress=False) as golem:
        for _ in getattr(golem, call)(worker, (i for i in range(n))):
            count += 1
    assert count == n
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"n": n, "call": call, "peak_mib": peak_kib / 1024, "seconds": time.perf_counter() - started}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--calls", nargs="+", default=["map", "as_completed"], choices=["map", "as_completed"])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--call", default="as_completed", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.call)
        return
    for call in args.calls:
        rows = []
        for n in args.sizes:
            out = subprocess.run([sys.executable, __file__, "--child", str(n), "--call", call], check=True,
                                 capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
        base = rows[0]["peak_mib"]
        for row in rows:
            print(f"{call:>12} {row['n']:>9,} fragments: peak RSS {row['peak_mib']:6.1f} MiB "
                  f"(+{row['peak_mib'] - base:5.1f} MiB over {rows[0]['n']:,}), {row['seconds']:6.1f} s, "
                  f"{row['n'] / row['seconds']:,.0f} fragments/s")
    print("target (issue 8): peak at 10^6 <= 40 MiB")


if __name__ == "__main__":
    main()
