"""Cost of golem.report()'s recorder: the same map on a zero-latency fake provider with
the recorder installed (the default) and with it removed, alternating, in one process.

    python benchmarks/bench_report.py [--fragments 20000] [--workers 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

from golem_tasks import Golem
from golem_tasks import events as ev
from golem_tasks.report import Recorder
from golem_tasks.testing import FakeProvider


def worker(ctx, item):
    results = yield ctx.run("echo", "x")
    return results[0].exit_code + item


def run(n: int, workers: int, recorder: bool) -> float:
    fake = FakeProvider(strict=False, assert_all_used=False, record=False)
    with Golem(fake, max_workers=workers, progress=False) as golem:
        if not recorder:
            golem._events.remove(golem._recorder)
        started = time.perf_counter()
        total = sum(golem.map(worker, range(n)))
        elapsed = time.perf_counter() - started
        if recorder:
            assert len(golem.report()) == min(n, golem._recorder.limit or n)
    assert total == n * (n - 1) // 2
    return elapsed


def cpu_per_fragment(n: int = 50000) -> tuple:
    """CPU seconds per fragment, in one thread with no contention: the recorder taking a
    start and a finish, and making those two events (the cost of wanting them)."""
    starts = [ev.FragmentStarted(job_id=1, index=i, provider_id=f"p{i % 8}", attempt=1) for i in range(n)]
    ends = [ev.FragmentFinished(job_id=1, index=i, provider_id=f"p{i % 8}", attempt=1, duration=0.1)
            for i in range(n)]
    best = float("inf")
    for _ in range(3):
        recorder = Recorder(limit=None)
        recorder(ev.JobStarted(job_id=1, kind="map"))
        started = time.process_time()
        for start, end in zip(starts, ends):
            recorder(start)
            recorder(end)
        best = min(best, time.process_time() - started)
    started = time.process_time()
    for i in range(n):
        ev.FragmentStarted(job_id=1, index=i, provider_id="p", attempt=1)
        ev.FragmentFinished(job_id=1, index=i, provider_id="p", attempt=1, duration=0.1)
    return best / n, (time.process_time() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fragments", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = args.fragments
    without = min(run(n, args.workers, False) for _ in range(args.repeat))
    with_ = min(run(n, args.workers, True) for _ in range(args.repeat))
    print(f"{n} fragments, {args.workers} workers, best of {args.repeat}: without the recorder "
          f"{n / without:,.0f} fragments/s, with it {n / with_:,.0f} fragments/s: "
          f"{(with_ - without) / n * 1e6:.1f} us/fragment, throughput ratio {without / with_:.2f}")
    fake = FakeProvider(strict=False, assert_all_used=False, record=False)
    with Golem(fake, max_workers=args.workers, progress=False) as golem:
        list(golem.map(worker, range(n)))
        started = time.perf_counter()
        report = golem.report()
        built = time.perf_counter() - started
    print(f"report() of {len(report)} fragments: {built:.2f} s")
    recording, making = cpu_per_fragment()
    print(f"CPU per fragment in one thread: recorder {recording * 1e6:.2f} us, "
          f"making its two events {making * 1e6:.2f} us")


if __name__ == "__main__":
    main()
