"""Run many generated fault schedules through the scheduler (outside the default suite).

    python benchmarks/schedules.py [--schedules 10000] [--seed 8] [--watchdog 30]
                                   [--api map --api execute_tasks ...]

Each schedule (tests/schedules.py: an API, the pool's shape, injected faults, how the
caller leaves) runs on the fake provider under a watchdog and is checked for every
promise: delivered at most once (exactly once when everything is taken), order kept for
map, initializer once per provider, every provider released, no thread left. Prints the
schedules run, the failures (the first few in full) and the wall time. A seeded random
generator drives the same runner as the hypothesis tests, so a failure is reproduced by
its seed and number, without shrinking.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.schedules import APIS, Hung, random_schedule, run_schedule  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--watchdog", type=float, default=30.0, help="seconds after which a schedule counts as hung")
    parser.add_argument("--api", action="append", choices=APIS, help="only these APIs (default: all)")
    parser.add_argument("--show", type=int, default=3, help="failures printed in full")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    failures: "collections.Counter[str]" = collections.Counter()
    by_api: "collections.Counter[str]" = collections.Counter()
    shown = 0
    ran = 0
    started = time.perf_counter()
    while ran < args.schedules:
        case = random_schedule(rng)
        if args.api and case["api"] not in args.api:
            continue
        ran += 1
        by_api[case["api"]] += 1
        try:
            run_schedule(case, limit=args.watchdog)
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
            kind = "hang" if isinstance(exc, Hung) else type(exc).__name__
            failures[f"{case['api']}: {kind}"] += 1
            if shown < args.show:
                shown += 1
                text = str(exc)
                print(f"schedule #{ran} (seed {args.seed}) failed: {kind}\n  {case}\n  "
                      f"{text[:3000]}{' ...' if len(text) > 3000 else ''}\n", flush=True)
        if ran % 1000 == 0:
            print(f"  {ran} schedules, {sum(failures.values())} failed, "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
    wall = time.perf_counter() - started
    print(f"schedules run: {ran} ({', '.join(f'{api} {n}' for api, n in sorted(by_api.items()))})")
    print(f"failures: {sum(failures.values())}" + "".join(f"\n  {k}: {n}" for k, n in sorted(failures.items())))
    print(f"wall time: {wall:.1f} s ({ran / wall:.0f} schedules/s), seed {args.seed}, watchdog {args.watchdog:g} s")
    sys.stdout.flush()
    # A hung schedule leaves non-daemon pool threads behind; do not wait for them at exit.
    os._exit(1 if failures else 0)


if __name__ == "__main__":
    sys.exit(main())
