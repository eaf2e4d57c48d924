"""The Golem backend at scale on the real yagna daemon (localnet), issue 9 item 11, and
how many agreements a job signs (item 1).

    python benchmarks/bench_golem_scale.py scale [--providers 16] [--fragments 1000]
    python benchmarks/bench_golem_scale.py agreements [--providers 2 4] [--workers 1-8] [--per-provider 10]

``scale``: ``max_workers`` = providers; the time from the job's start (its first engage
subscribes the demand) until every provider runs a fragment, then the fragments per
second of the whole job of one-command fragments, and close.
``agreements``: for each provider count and ``max_workers``, one job of 10 fragments per
provider (``--per-provider``); agreements approved vs providers that ran work (they should be equal), the job's
time from its start to its last result, when each agreement was approved (from the job's
start) and the time from its approval until its provider was ready for work.

Needs the localnet extra: pip install -e '.[localnet]'.
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any, Dict, List, Tuple

from golem_tasks import Golem, events
from golem_tasks.localnet import LocalNet
from golem_tasks.providers.yagna import AgreementApproved, GolemProvider

IMAGE = dict(image_hash="a" * 56, image_url="http://127.0.0.1:9/image.gvmi")  # not booted locally


def echo(ctx, n):
    results = yield ctx.run("/bin/echo", str(n))
    return results[0].stdout


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: List[Tuple[float, Any]] = []

    def __call__(self, event: Any) -> None:
        with self.lock:
            self.seen.append((time.monotonic(), event))

    def of(self, kind: type) -> List[Tuple[float, Any]]:
        with self.lock:
            return [(t, e) for t, e in self.seen if isinstance(e, kind)]


def provider_for(net: LocalNet, budget: str = "50") -> GolemProvider:
    """A provider on ``net``; its events reach the Golem's consumers (passing the same
    consumer to both would count each event twice)."""
    assert net.requestor is not None
    return GolemProvider(app_key=net.requestor.app_key, api_url=net.api_url, budget=budget, **IMAGE)


def scale(providers: int, fragments: int) -> None:
    t0 = time.monotonic()
    with LocalNet(providers=providers) as net:
        up = time.monotonic() - t0
        record = Recorder()
        provider = provider_for(net)
        started = time.monotonic()
        with Golem(provider, max_workers=providers, progress=False, events=record) as golem:
            done = list(golem.map(echo, range(fragments)))
        job_done = time.monotonic()
        provider.close()
        closed = time.monotonic()
    assert len(done) == fragments
    first_start: Dict[str, float] = {}
    for t, e in record.of(events.FragmentStarted):
        first_start.setdefault(e.provider_id, t)
    ran = sorted(first_start.values())
    approved = record.of(AgreementApproved)
    last = max(t for t, _ in record.of(events.FragmentFinished))
    late = sum(1 for t, _ in approved if t > last)
    print(f"localnet up with {providers} providers: {up:.1f} s")
    print(f"providers that ran fragments: {len(ran)} of {providers}; agreements approved: {len(approved)} "
          f"({late} after the last result)")
    print(f"job start -> first fragment running: {ran[0] - started:.2f} s")
    if len(ran) == providers:
        print(f"job start -> all {providers} providers running: {ran[-1] - started:.2f} s")
    print(f"{fragments} one-command fragments end to end: {job_done - started:.2f} s "
          f"({fragments / (job_done - started):.1f} fragments/s); close {closed - job_done:.2f} s")


def agreements(provider_counts: List[int], workers: List[int], per_provider: int = 10) -> None:
    print("providers  max_workers  ran_work  approved  approved_after_last_result  close_s  job_s  "
          "approved_at_s  approval_to_ready_s (- : not ready before the job ended)")
    for count in provider_counts:
        with LocalNet(providers=count) as net:
            for max_workers in workers:
                record = Recorder()
                provider = provider_for(net)
                started = time.monotonic()
                with Golem(provider, max_workers=max_workers, progress=False, events=record) as golem:
                    list(golem.map(echo, range(per_provider * count)))
                job_done = time.monotonic()
                provider.close()
                close = time.monotonic() - job_done
                finished = record.of(events.FragmentFinished)
                ran = {e.provider_id for _, e in finished}
                last = max(t for t, _ in finished)
                approved = record.of(AgreementApproved)
                late = sum(1 for t, _ in approved if t > last)
                ready = {e.provider_id: t for t, e in record.of(events.ProviderEngaged)}
                waits = " ".join(f"{ready[e.provider_id] - t:.2f}" if e.provider_id in ready else "-"
                                 for t, e in approved)
                at = " ".join(f"{t - started:.2f}" for t, _ in approved)
                print(f"{count:9d}  {max_workers:11d}  {len(ran):8d}  {len(approved):8d}  {late:26d}  {close:7.2f}  "
                      f"{last - started:5.2f}  {at:>13}  {waits}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("scale")
    one.add_argument("--providers", type=int, default=16)
    one.add_argument("--fragments", type=int, default=1000)
    many = commands.add_parser("agreements")
    many.add_argument("--providers", type=int, nargs="+", default=[2, 4])
    many.add_argument("--workers", default="1-8", help="a range like 1-8")
    many.add_argument("--per-provider", type=int, default=10, help="fragments per provider in each job")
    args = parser.parse_args()
    if args.command == "scale":
        scale(args.providers, args.fragments)
    else:
        low, _, high = args.workers.partition("-")
        agreements(args.providers, list(range(int(low), int(high or low) + 1)), args.per_provider)


if __name__ == "__main__":
    main()
