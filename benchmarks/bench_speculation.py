"""Backup copies of stragglers: N fragments on K fake providers of which one is
``--slowdown`` times slower. Prints the job wall time with ``speculate=True``, without
it, and with the slow provider removed (K-1 providers), run interleaved (issue 11
target: speculate <= 1.3x the wall without the slow provider).

    python benchmarks/bench_speculation.py [--fragments 200] [--providers 8] [--slowdown 20] [--latency 0.02]
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Dict

from golem_tasks import Golem, events
from golem_tasks.testing import FakeProvider


def worker(ctx, item):
    results = yield ctx.run("echo", str(item))
    return int(results[0].stdout)


def run(n: int, providers: int, slowdown: float, latency: float, *, speculate: bool, slow: bool) -> Dict[str, Any]:
    fake = FakeProvider(lambda command, session: command.args[1], latency=latency, assert_all_used=False,
                        record=False)
    if slow:
        fake.slow_down("fake-1", slowdown)
    workers = providers if slow else providers - 1
    seen: Dict[str, Any] = {}

    def note(event: Any) -> None:
        if isinstance(event, events.JobFinished):
            seen["backups"], seen["won"] = event.backups, event.backups_won

    started = time.perf_counter()
    with Golem(fake, max_workers=workers, speculate=speculate, progress=False, events=note) as golem:
        assert list(golem.map(worker, range(n))) == list(range(n))
    return {"wall": time.perf_counter() - started, **seen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fragments", type=int, default=200)
    parser.add_argument("--providers", type=int, default=8)
    parser.add_argument("--slowdown", type=float, default=20)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    shapes = {"speculate=True": dict(speculate=True, slow=True), "speculate=False": dict(speculate=False, slow=True),
              "slow provider removed": dict(speculate=False, slow=False)}
    best: Dict[str, Dict[str, Any]] = {}
    for _ in range(args.repeat):
        for name, shape in shapes.items():
            result = run(args.fragments, args.providers, args.slowdown, args.latency, **shape)
            if name not in best or result["wall"] < best[name]["wall"]:
                best[name] = result
    print(f"{args.fragments} fragments of {args.latency * 1000:g} ms on {args.providers} fake providers, "
          f"one {args.slowdown:g}x slower (best of {args.repeat}, interleaved)")
    for name, result in best.items():
        extra = f", backups {result['backups']} started / {result['won']} won" if result.get("backups") else ""
        print(f"{name:>22}: {result['wall']:.3f} s{extra}")
    base = best["slow provider removed"]["wall"]
    print(f"speculate / slow provider removed: {best['speculate=True']['wall'] / base:.2f}  (target <= 1.3)")
    print(f"no speculation / slow provider removed: {best['speculate=False']['wall'] / base:.2f}")


if __name__ == "__main__":
    main()
