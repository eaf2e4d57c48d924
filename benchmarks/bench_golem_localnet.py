"""The Golem backend on the real yagna daemon (localnet), against a bare keep-alive
loop of exec + results calls on the same daemon, in the same run.

    python benchmarks/bench_golem_localnet.py [--fragments 200] [--providers 2] [--rounds 5]

The two sides take turns on one localnet, round by round, the first side alternating,
so a slow spell of a shared machine slows both alike; the ratio reported is the median
of the rounds' ratios. The localnet's providers and exe-units are threads of this
process, so their share of the CPU (and of the GIL) varies from round to round.

Needs the localnet extra: pip install -e '.[localnet]'.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import List, Tuple

import requests

from golem_tasks import CommandExecutionError, Golem, events
from golem_tasks.localnet import LocalNet
from golem_tasks.providers.yagna import GolemProvider

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.localnet.requestor import PlainRequestor  # noqa: E402  (plain REST flows)
from benchmarks.warm_up import engage_all  # noqa: E402

IMAGE = dict(image_hash="a" * 56, image_url="http://127.0.0.1:9/image.gvmi")  # not booted locally
RUN = {"run": {"entry_point": "/bin/echo", "args": ["x"], "capture": {"stdout": {"atEnd": {"format": "string"}}}}}


class HttpCounter:
    """Counts HTTP requests by path kind by wrapping the requests transport."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.lock = threading.Lock()
        self._send = requests.adapters.HTTPAdapter.send

    def __enter__(self) -> "HttpCounter":
        counter = self

        def send(adapter, request, **kwargs):
            with counter.lock:
                counter.counts[request.path_url.split("?")[0].split("/")[1]] += 1
            return counter._send(adapter, request, **kwargs)

        requests.adapters.HTTPAdapter.send = send
        return self

    def __exit__(self, *exc: object) -> None:
        requests.adapters.HTTPAdapter.send = self._send

    def total(self) -> int:
        with self.lock:
            return sum(self.counts.values())


def echo(ctx, _):
    results = yield ctx.run("/bin/echo", "x")
    return ctx.provider_id, results[0].stdout


def failing(ctx, _):
    started = time.monotonic()
    try:
        yield ctx.run("/bin/sh", "-c", "exit 3")
    except CommandExecutionError:
        return time.monotonic() - started


def backend(net: LocalNet, n: int, providers: int) -> dict:
    first_running = []
    with HttpCounter() as http:
        provider = GolemProvider.from_env(budget="50", **IMAGE)
        started = time.monotonic()
        golem = Golem(provider, max_workers=providers, progress=False,
                      events=lambda e: isinstance(e, events.FragmentStarted) and first_running.append(time.monotonic()))
        with golem:
            engage_all(golem, providers)  # every provider engaged before the timing starts
            to_first = first_running[0] - started
            before, t0, cpu0 = http.total(), time.perf_counter(), time.thread_time()
            done = list(golem.map(echo, range(n)))
            wall, main_cpu = time.perf_counter() - t0, time.thread_time() - cpu0
            per_fragment = (http.total() - before) / n
            fail_latency = sorted(golem.run(failing, None) for _ in range(5))[2]
        provider.close()
    engaged = Counter(p for p, _ in done)
    return {"rate": n / wall, "wall": wall, "to_first": to_first, "http_per_fragment": per_fragment,
            "engaged": dict(engaged), "fail_latency": fail_latency, "caller_cpu_ms": 1000 * main_cpu / n}


def bare(net: LocalNet, n: int, providers: int) -> dict:
    with PlainRequestor(net.env["YAGNA_API_URL"], net.env["YAGNA_APPKEY"]) as plain:
        allocation = plain.allocate("50")["allocationId"]
        activities, agreements = [], []
        for provider_id in [p.node_id for p in net.providers[:providers]]:
            agreement = plain.engage(provider_id, allocation)
            agreements.append(agreement)
            activity = plain.create_activity(agreement)
            plain.run_script(activity, [{"deploy": {}}, {"start": {}}])
            activities.append(activity)

        def loop(activity: str, count: int) -> None:
            with PlainRequestor(net.env["YAGNA_API_URL"], net.env["YAGNA_APPKEY"]) as own:  # keep-alive each
                for _ in range(count):
                    batch = own.exec(activity, [RUN])
                    while True:
                        answer = own.results(activity, batch, timeout=5).json()
                        if answer and answer[-1]["isBatchFinished"]:
                            break

        t0 = time.perf_counter()
        threads = [threading.Thread(target=loop, args=(a, n // providers)) for a in activities]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        for activity in activities:
            plain.destroy(activity)
        for agreement in agreements:
            plain.terminate(agreement)  # the providers are free again for the next round
    return {"rate": n / wall, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fragments", type=int, default=200)
    parser.add_argument("--providers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    t0 = time.monotonic()
    rounds: List[Tuple[dict, dict]] = []
    with LocalNet(providers=args.providers) as net:
        up = time.monotonic() - t0
        os.environ.update(net.env)
        for number in range(args.rounds):
            first_ours = number % 2 == 0
            if first_ours:
                ours = backend(net, args.fragments, args.providers)
            base = bare(net, args.fragments, args.providers)
            if not first_ours:
                ours = backend(net, args.fragments, args.providers)
            rounds.append((ours, base))
            print(f"round {number + 1}: bare {base['rate']:.1f} fragments/s, backend {ours['rate']:.1f} "
                  f"fragments/s, ratio {ours['rate'] / base['rate']:.2f}, fragments per provider "
                  f"{sorted(ours['engaged'].values(), reverse=True)}", flush=True)
    ours = rounds[0][0]
    ratios = sorted(o["rate"] / b["rate"] for o, b in rounds)
    print(f"localnet up with {args.providers} providers: {up:.2f} s")
    print(f"first demand -> first fragment running: {ours['to_first']:.2f} s (round 1)")
    print(f"HTTP round trips per one-command fragment (steady state): {ours['http_per_fragment']:.2f} (round 1)")
    print(f"failed command reaches the worker in {ours['fail_latency'] * 1000:.0f} ms (median of 5, round 1)")
    print(f"bare exec+results loop: median {statistics.median(b['rate'] for _, b in rounds):.1f} fragments/s")
    print(f"golem_tasks Golem backend: median {statistics.median(o['rate'] for o, _ in rounds):.1f} fragments/s, "
          f"caller thread CPU {statistics.median(o['caller_cpu_ms'] for o, _ in rounds):.2f} ms/fragment")
    print(f"ratio (backend / bare): median {statistics.median(ratios):.2f}, rounds "
          f"{' '.join(f'{r:.2f}' for r in ratios)}  (target >= 0.9)")


if __name__ == "__main__":
    main()
