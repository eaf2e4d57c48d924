"""Backup copies of stragglers on localnet: the real daemon and K local providers of
which one (the cheapest, so the market engages it) runs every command ``--slowdown``
times slower (``Faults(slowdown=...)``, a localnet test knob). Prints the job wall with
``speculate=True``, without it, and with the slow provider removed (denied, K-1
workers), run interleaved on one network, and the ratios (issue 11 target, there
with the fake: speculate <= 1.3x the wall without the slow provider).

    python benchmarks/bench_speculation_localnet.py [--fragments 40] [--providers 4] [--slowdown 20] [--work 0.2]

Needs the localnet extra: pip install -e '.[localnet]'.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Dict

from golem_tasks import Golem, Speculation, events
from golem_tasks.localnet import Faults, LocalNet, Negotiator, OfferSpec
from golem_tasks.providers.yagna import GolemProvider

IMAGE = dict(image_hash="a" * 56, image_url="http://127.0.0.1:9/image.gvmi")  # not booted locally


def make_worker(work: float):
    def nap(ctx, n):
        results = yield ctx.run("/bin/sh", "-c", f"sleep {work}; echo {n}")
        return int(results[0].stdout)
    return nap


def run(net: LocalNet, n: int, work: float, *, speculate: Any, slow: bool) -> Dict[str, Any]:
    workers = net.provider_count if slow else net.provider_count - 1
    deny = () if slow else (net.providers[0].name,)
    seen: Dict[str, Any] = {}

    def note(event: Any) -> None:
        if isinstance(event, events.JobFinished):
            seen["backups"], seen["won"] = event.backups, event.backups_won

    started = time.perf_counter()
    with GolemProvider(app_key=net.requestor.app_key, api_url=net.api_url, budget="5", provider_record=False,
                       deny_providers=deny, **IMAGE) as provider, \
            Golem(provider, max_workers=workers, speculate=speculate, progress=False, events=note) as golem:
        assert list(golem.map(make_worker(work), range(n))) == list(range(n))
    return {"wall": time.perf_counter() - started, **seen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fragments", type=int, default=40)
    parser.add_argument("--providers", type=int, default=4)
    parser.add_argument("--slowdown", type=float, default=20)
    parser.add_argument("--work", type=float, default=0.2, help="seconds each fragment's command sleeps")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    cheap = OfferSpec(price_cpu_sec="0.00001", price_duration_sec="0.000002")
    negotiators = [Negotiator(offer=cheap)] + [Negotiator() for _ in range(args.providers - 1)]
    rule = Speculation(min_finished=3)
    shapes = {"speculate=True": dict(speculate=rule, slow=True), "speculate=False": dict(speculate=False, slow=True),
              "slow provider removed": dict(speculate=False, slow=False)}
    best: Dict[str, Dict[str, Any]] = {}
    with LocalNet(providers=args.providers, negotiators=negotiators,
                  faults={0: Faults(slowdown=args.slowdown)}) as net:
        for _ in range(args.repeat):
            for name, shape in shapes.items():
                result = run(net, args.fragments, args.work, **shape)
                if name not in best or result["wall"] < best[name]["wall"]:
                    best[name] = result
    print(f"{args.fragments} fragments of {args.work:g} s on {args.providers} localnet providers, one "
          f"{args.slowdown:g}x slower (best of {args.repeat}, interleaved; engagement included)")
    for name, result in best.items():
        extra = f", backups {result['backups']} started / {result['won']} won" if result.get("backups") else ""
        print(f"{name:>22}: {result['wall']:.2f} s{extra}")
    base = best["slow provider removed"]["wall"]
    print(f"speculate / slow provider removed: {best['speculate=True']['wall'] / base:.2f}")
    print(f"no speculation / slow provider removed: {best['speculate=False']['wall'] / base:.2f}")


if __name__ == "__main__":
    main()
