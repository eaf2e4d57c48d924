"""What a file transfer adds to a fragment on the real yagna daemon (localnet): GFTP
through the daemon's GSB, requestor to exe-unit (``send_bytes``) and back
(``download_bytes``), against a one-command fragment run in the same job (the baseline).

    python benchmarks/bench_transfers_localnet.py [--fragments 20] [--size 400000] [--rounds 3]

One provider, ``max_workers=1``, so every figure is one fragment after another; each
kind runs ``--fragments`` times per round and the medians of the rounds are printed.
Needs the localnet extra: pip install -e '.[localnet]'.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable, Dict, List

from golem_tasks import Golem
from golem_tasks.localnet import LocalNet
from golem_tasks.providers.yagna import GolemProvider

IMAGE = dict(image_hash="a" * 56, image_url="http://127.0.0.1:9/image.gvmi")  # not booted locally


def echo(ctx: Any, _: int) -> Any:
    yield ctx.run("/bin/echo", "x")


def make_send(size: int) -> Callable[..., Any]:
    data = b"x" * size

    def send(ctx: Any, _: int) -> Any:
        batch = ctx.batch()
        batch.send_bytes(data, "/golem/input/data.bin")
        yield batch
    return send


def download(ctx: Any, _: int) -> Any:
    batch = ctx.batch()
    batch.run("/bin/sh", "-c", "echo done > /golem/output/result.txt")
    batch.download_bytes("/golem/output/result.txt")
    results = yield batch
    return results[-1].data


def timed(golem: Golem, worker: Callable[..., Any], fragments: int) -> float:
    """Milliseconds per fragment, one after another."""
    started = time.perf_counter()
    list(golem.map(worker, range(fragments)))
    return (time.perf_counter() - started) / fragments * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fragments", type=int, default=20)
    parser.add_argument("--size", type=int, default=400_000, help="bytes each send_bytes fragment sends")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    kinds: Dict[str, Callable[..., Any]] = {
        "one command (baseline)": echo, f"send_bytes {args.size:,} B": make_send(args.size),
        "command + download_bytes": download}
    figures: Dict[str, List[float]] = {name: [] for name in kinds}
    with LocalNet(providers=1) as net:
        assert net.requestor is not None
        provider = GolemProvider(app_key=net.requestor.app_key, api_url=net.api_url, budget="5", **IMAGE)
        with provider, Golem(provider, max_workers=1, progress=False) as golem:
            golem.run(echo, 0)  # engaged and deployed before anything is timed
            for _ in range(args.rounds):
                for name, worker in kinds.items():
                    figures[name].append(timed(golem, worker, args.fragments))
    baseline = statistics.median(figures["one command (baseline)"])
    for name, values in figures.items():
        median = statistics.median(values)
        print(f"{name:>28}: {median:6.1f} ms per fragment (x{median / baseline:.2f} of the baseline, "
              f"+{median - baseline:.1f} ms)   rounds " + " ".join(f"{v:.1f}" for v in values))


if __name__ == "__main__":
    main()
