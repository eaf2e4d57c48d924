"""``map`` against ``as_completed`` when some commands fail: N one-command fragments on
a zero-latency fake, every ``--every``-th failing once (exit code 1) and retried with
no backoff. ``map`` keeps input order, so a retried fragment at the head of its
window must not stall the fragments behind it (issue 8 target: map >= 0.8x the
throughput of as_completed, run interleaved in the same process).

    python benchmarks/bench_map_failures.py [--fragments 20000] [--workers 8] [--every 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any, Set

from golem_tasks import Golem
from golem_tasks.testing import FakeProvider


def worker(ctx, item):
    results = yield ctx.run("echo", str(item))
    return int(results[0].stdout)


def fake_failing_once(every: int) -> FakeProvider:
    failed: Set[str] = set()
    lock = threading.Lock()

    def answer(command: Any, session: Any) -> Any:
        item = command.args[1]
        if int(item) % every == 0:
            with lock:
                first = item not in failed
                failed.add(item)
            if first:
                return _exit(1)
        return item

    return FakeProvider(answer, assert_all_used=False, record=False)


class _exit:
    def __init__(self, code: int) -> None:
        self.exit_code, self.stdout, self.stderr = code, "", "injected failure"


def run(call: str, n: int, workers: int, every: int) -> float:
    started = time.perf_counter()
    with Golem(fake_failing_once(every), max_workers=workers, retry_wait=0, progress=False) as golem:
        if call == "map":
            values = list(golem.map(worker, range(n)))
            assert values == list(range(n))
        else:
            values = sorted(r.value for r in golem.as_completed(worker, range(n)))
            assert values == list(range(n))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fragments", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--every", type=int, default=20, help="every N-th fragment fails once (20: 5%%)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    best = {"map": float("inf"), "as_completed": float("inf")}
    for _ in range(args.repeat):
        for call in best:
            best[call] = min(best[call], run(call, args.fragments, args.workers, args.every))
    n = args.fragments
    print(f"fragments={n} max_workers={args.workers}, 1 in {args.every} failing once, retry_wait=0 "
          f"(best of {args.repeat}, interleaved)")
    for call, seconds in best.items():
        print(f"{call:>12}: {seconds:.3f} s  {n / seconds:,.0f} fragments/s")
    print(f"map / as_completed throughput: {best['as_completed'] / best['map']:.2f}  (target >= 0.8)")


if __name__ == "__main__":
    main()
