"""Dispatch overhead: N single-command fragments on a zero-latency fake provider,
against concurrent.futures.ThreadPoolExecutor.map driving an equivalent no-op
generator in the same process.

    python benchmarks/bench_dispatch.py [--fragments 20000] [--workers 8]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from golem_tasks import Batch, CommandResult, Golem
from golem_tasks.testing import FakeProvider


def worker(ctx, item):
    results = yield ctx.run("echo", "x")
    return results[0].exit_code + item


def baseline_fragment(item: int) -> int:
    """The same generator protocol with the provider replaced by an inline answer."""
    gen = _noop_worker(item)
    batch = next(gen)
    results = [CommandResult(command=c, index=i) for i, c in enumerate(batch.commands)]
    try:
        gen.send(results)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("worker yielded twice")


def _noop_worker(item):
    results = yield Batch().run("echo", "x")
    return results[0].exit_code + item


def run_baseline(n: int, workers: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        total = sum(pool.map(baseline_fragment, range(n)))
    assert total == n * (n - 1) // 2
    return time.perf_counter() - started


def run_golem(n: int, workers: int) -> float:
    fake = FakeProvider(strict=False, assert_all_used=False, )
    started = time.perf_counter()
    with Golem(fake, max_workers=workers, progress=False) as golem:
        total = sum(golem.map(worker, range(n)))
    assert total == n * (n - 1) // 2
    return time.perf_counter() - started


def result_latency(samples: int = 500) -> tuple:
    """Median and 99th percentile of the time from a worker's return to the caller
    holding its result, one fragment at a time: polling would show up here as
    milliseconds (golem-js polls every 2 s)."""
    stamps = []

    def stamped(ctx, _):
        yield ctx.run("echo", "x")
        return time.perf_counter()

    fake = FakeProvider(strict=False, assert_all_used=False, record=False)
    with Golem(fake, max_workers=1, progress=False) as golem:
        for _ in range(samples):
            returned = golem.submit(stamped, None).result()
            stamps.append(time.perf_counter() - returned)
    stamps.sort()
    return stamps[len(stamps) // 2], stamps[int(len(stamps) * 0.99)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fragments", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    base = min(run_baseline(args.fragments, args.workers) for _ in range(args.repeat))
    ours = min(run_golem(args.fragments, args.workers) for _ in range(args.repeat))
    print(f"fragments={args.fragments} max_workers={args.workers} (best of {args.repeat})")
    print(f"ThreadPoolExecutor.map baseline: {base:.3f} s  {args.fragments / base:,.0f} fragments/s")
    print(f"golem_tasks map on FakeProvider: {ours:.3f} s  {args.fragments / ours:,.0f} fragments/s")
    print(f"throughput ratio (golem_tasks / baseline): {base / ours:.2f}  (target >= 0.5)")
    median, p99 = result_latency()
    print(f"worker return -> caller has the result: median {median * 1e6:.0f} us, p99 {p99 * 1e6:.0f} us")


if __name__ == "__main__":
    main()
