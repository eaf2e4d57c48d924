"""The Golem backend on the real yagna daemon (localnet), against a bare keep-alive
loop of exec + results calls on the same daemon, in the same run.

    python benchmarks/bench_golem_localnet.py [--fragments 200] [--providers 2]

Needs the localnet extra: pip install -e '.[localnet]'.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import requests

from golem_tasks import CommandExecutionError, Golem, events
from golem_tasks.localnet import LocalNet
from golem_tasks.providers.yagna import GolemProvider

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.localnet.requestor import PlainRequestor  # noqa: E402  (plain REST flows)

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
            list(golem.map(echo, range(providers)))  # engages every provider (warm-up)
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
        activities = []
        for provider_id in [p.node_id for p in net.providers[:providers]]:
            agreement = plain.engage(provider_id, allocation)
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
    return {"rate": n / wall, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fragments", type=int, default=200)
    parser.add_argument("--providers", type=int, default=2)
    args = parser.parse_args()
    t0 = time.monotonic()
    with LocalNet(providers=args.providers) as net:
        up = time.monotonic() - t0
        import os
        os.environ.update(net.env)
        ours = backend(net, args.fragments, args.providers)
    with LocalNet(providers=args.providers) as net:
        base = bare(net, args.fragments, args.providers)
    print(f"localnet up with {args.providers} providers: {up:.2f} s")
    print(f"first demand -> first fragment running: {ours['to_first']:.2f} s")
    print(f"HTTP round trips per one-command fragment (steady state): {ours['http_per_fragment']:.2f}")
    print(f"fragments per provider: {json.dumps(ours['engaged'])}")
    print(f"failed command reaches the worker in {ours['fail_latency'] * 1000:.0f} ms (median of 5)")
    print(f"bare exec+results loop: {base['rate']:.1f} fragments/s ({base['wall']:.2f} s)")
    print(f"golem_tasks Golem backend: {ours['rate']:.1f} fragments/s ({ours['wall']:.2f} s), "
          f"caller thread CPU {ours['caller_cpu_ms']:.2f} ms/fragment")
    print(f"ratio (backend / bare): {ours['rate'] / base['rate']:.2f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
