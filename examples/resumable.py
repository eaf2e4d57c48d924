"""A job that survives a crash: Monte-Carlo pi with a journal, and a report of what
happened. Kill it half way (Ctrl-C, kill -9) and run it again: only the rest runs.

    python examples/resumable.py --fragments 40 --journal pi.journal --report pi.csv [--timeline pi.png]
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import golem_options, parse, parser  # noqa: E402
from pi import IMAGE, throw_darts  # noqa: E402

from golem_tasks import Golem  # noqa: E402


def main(argv: Optional[List[str]] = None) -> float:
    p = parser(__doc__.splitlines()[0], IMAGE)
    p.add_argument("--fragments", type=int, default=40)
    p.add_argument("--samples", type=int, default=200_000, help="darts per fragment")
    p.add_argument("--journal", default="pi.journal", help="where results are recorded (default pi.journal)")
    p.add_argument("--report", default=None, help="write one CSV row per fragment here")
    p.add_argument("--timeline", default=None, help="draw the timeline here (.png/.svg; needs matplotlib)")
    args = parse(p, argv)
    jobs = [(seed, args.samples) for seed in range(args.fragments)]
    with Golem(**golem_options(args)) as golem:
        hits = sum(golem.map(throw_darts, jobs, journal=args.journal))
    report = golem.report()
    ran = sum(1 for row in report if row.status == "done")
    print(f"{ran} fragment(s) ran, {len(report) - ran} came from the journal {args.journal}")
    if args.report:
        report.to_csv(args.report)
    if args.timeline:
        report.timeline().save(args.timeline)
    estimate = 4.0 * hits / (args.fragments * args.samples)
    print(f"pi ~= {estimate:.5f} (error {abs(estimate - math.pi):.5f})")
    return estimate


if __name__ == "__main__":
    main()
