"""Dispatch overhead: N single-command fragments on a zero-latency fake provider,
against concurrent.futures.ThreadPoolExecutor.map driving the same generator protocol
in the same process.

Two baselines, run interleaved with golem_tasks (best of --repeat each):

* ``tpe+fake``: ThreadPoolExecutor(workers).map where each thread drives the worker
  generator against its own FakeSession of the same kind of FakeProvider: the same
  protocol and the same provider, so the ratio is the scheduler's own cost (issue 8
  target: >= 1.0).
* ``tpe+inline``: the same, with the provider replaced by an inline answer: what the
  scheduler *and* the fake cost together against no provider at all.

    python benchmarks/bench_dispatch.py [--fragments 20000] [--workers 8] [--repeat 5]
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List

from golem_tasks import Batch, CommandResult, Golem
from golem_tasks.context import WorkContext
from golem_tasks.testing import FakeProvider


def worker(ctx, item):
    results = yield ctx.run("echo", "x")
    return results[0].exit_code + item


def _fake() -> FakeProvider:
    return FakeProvider(strict=False, assert_all_used=False, record=False)


def _drive(gen: Any, execute: Callable[[Batch], List[CommandResult]]) -> Any:
    batch = next(gen)
    try:
        gen.send(execute(batch))
    except StopIteration as stop:
        return stop.value
    raise AssertionError("worker yielded twice")


def run_inline(n: int, workers: int) -> float:
    """The generator protocol with the provider replaced by an inline answer."""
    def fragment(item: int) -> int:
        gen = _noop_worker(item)
        return _drive(gen, lambda b: [CommandResult(command=c, index=i) for i, c in enumerate(b.commands)])

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        total = sum(pool.map(fragment, range(n)))
    assert total == n * (n - 1) // 2
    return time.perf_counter() - started


def run_tpe_fake(n: int, workers: int) -> float:
    """The generator protocol against one FakeSession per pool thread."""
    fake = _fake()
    local = threading.local()
    sessions: Dict[int, Any] = {}

    def fragment(item: int) -> int:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = sessions[threading.get_ident()] = fake.engage()
        gen = worker(WorkContext(session.info), item)
        return _drive(gen, lambda b: session.execute(b.commands, timeout=b.timeout))

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        total = sum(pool.map(fragment, range(n)))
    elapsed = time.perf_counter() - started
    for session in sessions.values():
        session.release()
    fake.close()
    assert total == n * (n - 1) // 2
    return elapsed


def _noop_worker(item):
    results = yield Batch().run("echo", "x")
    return results[0].exit_code + item


def run_golem(n: int, workers: int) -> float:
    fake = _fake()
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

    with Golem(_fake(), max_workers=1, progress=False) as golem:
        for _ in range(samples):
            returned = golem.submit(stamped, None).result()
            stamps.append(time.perf_counter() - returned)
    stamps.sort()
    return stamps[len(stamps) // 2], stamps[int(len(stamps) * 0.99)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fragments", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    best: Dict[str, float] = {"tpe+inline": float("inf"), "tpe+fake": float("inf"), "golem_tasks": float("inf")}
    runs = {"tpe+inline": run_inline, "tpe+fake": run_tpe_fake, "golem_tasks": run_golem}
    for _ in range(args.repeat):  # interleaved, so a busy moment hurts every side alike
        for name, run in runs.items():
            best[name] = min(best[name], run(args.fragments, args.workers))
    n = args.fragments
    print(f"fragments={n} max_workers={args.workers} (best of {args.repeat}, interleaved)")
    for name, seconds in best.items():
        print(f"{name:>12}: {seconds:.3f} s  {n / seconds:,.0f} fragments/s")
    print(f"ratio vs tpe+fake   (scheduler overhead; target >= 1.0): {best['tpe+fake'] / best['golem_tasks']:.2f}")
    print(f"ratio vs tpe+inline (scheduler and fake vs no provider):  {best['tpe+inline'] / best['golem_tasks']:.2f}")
    median, p99 = result_latency()
    print(f"worker return -> caller has the result: median {median * 1e6:.0f} us, p99 {p99 * 1e6:.0f} us")


if __name__ == "__main__":
    main()
