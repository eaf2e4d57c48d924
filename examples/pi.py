"""Monte-Carlo pi: each fragment throws darts with its own seed on a provider;
the requestor adds up the hits.

    python examples/pi.py --fragments 16 --samples 200000
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import golem_options, parse, parser  # noqa: E402

from golem_tasks import Golem  # noqa: E402

#: Any image with python3 will do on the Golem provider.
IMAGE = "golem/python:3.11-slim"

# Runs on the provider; any image with python3 will do.
DARTS = r"""
import random, sys
rng = random.Random(int(sys.argv[1]))
n = int(sys.argv[2])
print(sum(1 for _ in range(n) if rng.random() ** 2 + rng.random() ** 2 <= 1.0))
"""


def throw_darts(ctx, job):
    seed, samples = job
    results = yield ctx.run("python3", "-c", DARTS, str(seed), str(samples))
    return int(results[0].stdout)


def main(argv: Optional[List[str]] = None) -> float:
    p = parser(__doc__, IMAGE)
    p.add_argument("--fragments", type=int, default=16, help="how many fragments (seeds) to run (default: 16)")
    p.add_argument("--samples", type=int, default=200_000, help="darts each fragment throws (default: 200000)")
    args = parse(p, argv)
    jobs = ((seed, args.samples) for seed in range(args.fragments))
    with Golem(**golem_options(args)) as golem:
        hits = sum(golem.map(throw_darts, jobs))
    estimate = 4.0 * hits / (args.fragments * args.samples)
    print(f"pi ~= {estimate:.5f} (error {abs(estimate - math.pi):.5f}) "
          f"from {args.fragments * args.samples:,} darts")
    return estimate


if __name__ == "__main__":
    main()
