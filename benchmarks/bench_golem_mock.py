"""The Golem backend against a mocked yagna daemon on loopback: HTTP round trips and
client CPU time per one-command fragment, against a bare keep-alive exec + results loop
on the same server, in the same run.

    python benchmarks/bench_golem_mock.py [--fragments 1000] [--providers 10] [--repeat 3]

The mocked daemon (tests/yagna/http_daemon.py) is the tests' in-memory yagna model
served over HTTP/1.1 keep-alive from a child process, so the figures count real sockets
and the benchmark process's CPU time (``time.process_time``: every thread of it) holds
no daemon work. Its providers answer ``/bin/echo`` at once: a fragment costs only the
client and the HTTP exchanges. Requests are counted by the server, per route.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Tuple

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: golem_tasks and tests
from golem_tasks import Golem  # noqa: E402
from golem_tasks.providers.yagna import GolemProvider
from tests.localnet.requestor import PlainRequestor  # noqa: E402  (plain REST flows)
from tests.yagna.fake_daemon import node  # noqa: E402
from tests.yagna.http_daemon import MockDaemonProcess  # noqa: E402
from benchmarks.warm_up import engage_all  # noqa: E402

IMAGE = dict(image_hash="a" * 56, image_url="http://127.0.0.1:9/image.gvmi")  # never downloaded
CAPTURE = {"stdout": {"atEnd": {"format": "string"}}, "stderr": {"atEnd": {"format": "string"}}}
WORK = ("exec", "results")


def echo(ctx: Any, item: int) -> Any:
    results = yield ctx.run("/bin/echo", str(item))
    return results[0].stdout


def diff(after: Dict[str, Any], before: Dict[str, Any]) -> Tuple[Counter, Counter]:
    """Requests per route, and exec/results/batches of work batches, between two stats."""
    calls = Counter(after["calls"])
    calls.subtract(before["calls"])
    work = Counter(after["batches"]["work"])
    work.subtract(before["batches"]["work"])
    return +calls, +work


def route_name(route: str) -> str:
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route)


def backend(daemon: MockDaemonProcess, n: int, providers: int, **options: Any) -> Dict[str, Any]:
    """``n`` fragments after a warm-up of ``providers`` ones; ``options`` go to GolemProvider."""
    start, cpu_start, t_start = daemon.stats(), time.process_time(), time.perf_counter()
    settings: Dict[str, Any] = dict(app_key="bench", api_url=daemon.url, budget="5", storage=None, **IMAGE)
    provider = GolemProvider(**{**settings, **options})
    with provider:
        with Golem(provider, max_workers=providers, progress=False) as golem:
            engage_all(golem, providers)  # every provider engaged before the timing starts
            before, t0, cpu0 = daemon.stats(), time.perf_counter(), time.process_time()
            done = list(golem.map(echo, range(n)))
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            after, t_after = daemon.stats(), time.perf_counter()
    closing = time.perf_counter() - t_after
    end, cpu_job = daemon.stats(), time.process_time() - cpu_start
    assert done == [f"{i}\n" for i in range(n)], "wrong results"
    steady_calls, steady_work = diff(after, before)
    job_calls, job_work = diff(end, start)
    assert steady_work["batches"] == n and job_work["batches"] == n + providers
    job_total = sum(job_calls.values())
    job_exec_results = job_work["exec"] + job_work["results"]
    return {
        "warm_up": t0 - t_start, "close": closing,
        "rate": n / wall, "cpu_ms": 1000 * cpu / n, "job_cpu_ms": 1000 * cpu_job / (n + providers),
        "steady_per_fragment": sum(steady_calls.values()) / n,
        "steady_work_per_fragment": (steady_work["exec"] + steady_work["results"]) / n,
        "job_per_fragment": job_total / (n + providers),
        "job_work_per_fragment": job_exec_results / (n + providers),
        "job_setup": job_total - job_exec_results,
        "engaged": len(set(end["activities"]) - set(start["activities"])),
        # Terminated once approved; Cancelled if let go while the provider was still deciding.
        "all_ended": set(end["agreements"].values()) <= {"Terminated", "Cancelled"},
        "released": end["released"] == end["allocations"],
        "routes": job_calls,
    }


def bare(daemon: MockDaemonProcess, n: int, providers: int) -> Dict[str, Any]:
    """Exec + results with plain keep-alive sessions, one thread per activity."""
    with PlainRequestor(daemon.url, "bench") as plain:
        allocation = plain.allocate("5")["allocationId"]
        engaged = []
        for number in range(1, providers + 1):
            agreement = plain.engage(node(number).id, allocation)
            activity = plain.create_activity(agreement)
            plain.run_script(activity, [{"deploy": {}}, {"start": {}}])
            engaged.append((agreement, activity))
        before = daemon.stats()
        wrong: List[str] = []

        def loop(activity: str, items: range) -> None:
            with requests.Session() as http:
                http.trust_env = False
                url = f"{daemon.url}/activity-api/v1/activity/{activity}/exec"
                for item in items:
                    script = [{"run": {"entry_point": "/bin/echo", "args": [str(item)], "capture": CAPTURE}}]
                    batch = http.post(url, json={"text": json.dumps(script)}, timeout=30).json()
                    while True:
                        answer = http.get(f"{url}/{batch}", params={"timeout": 20}, timeout=30).json()
                        if answer and answer[-1]["isBatchFinished"]:
                            break
                    if answer[-1]["stdout"] != f"{item}\n":
                        wrong.append(batch)

        threads = [threading.Thread(target=loop, args=(activity, range(i, n, providers)))
                   for i, (_, activity) in enumerate(engaged)]
        t0, cpu0 = time.perf_counter(), time.process_time()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        calls, _ = diff(daemon.stats(), before)
        for agreement, activity in engaged:
            plain.destroy(activity)
            plain.terminate(agreement)
    assert not wrong, f"wrong results in {len(wrong)} batches"
    return {"rate": n / wall, "cpu_ms": 1000 * cpu / n, "per_fragment": sum(calls.values()) / n}


def spread(values: List[float], digits: int = 2) -> str:
    return f"min {min(values):.{digits}f}, median {statistics.median(values):.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fragments", type=int, default=1000)
    parser.add_argument("--providers", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ours: List[Dict[str, Any]] = []
    base: List[Dict[str, Any]] = []
    with MockDaemonProcess(providers=args.providers) as daemon:
        for _ in range(args.repeat):  # interleaved, so drifts in the machine's load hit both
            base.append(bare(daemon, args.fragments, args.providers))
            ours.append(backend(daemon, args.fragments, args.providers))
    last = ours[-1]
    print(f"fragments={args.fragments} providers={args.providers} max_workers={args.providers} "
          f"runs={args.repeat} (+{args.providers} warm-up fragments per backend run)")
    print("HTTP requests of the last backend run, whole job, by route:")
    for route, count in sorted(last["routes"].items(), key=lambda item: -item[1]):
        print(f"  {count:6d}  {route_name(route)}")
    print(f"backend round trips per fragment, steady state: {spread([r['steady_per_fragment'] for r in ours])} "
          f"(exec + results: {spread([r['steady_work_per_fragment'] for r in ours])})")
    print(f"backend round trips per fragment, whole job: {spread([r['job_per_fragment'] for r in ours])} "
          f"(exec + results {spread([r['job_work_per_fragment'] for r in ours])}; "
          f"setup, payment and teardown: {last['job_setup']} requests in all)")
    print(f"bare loop round trips per fragment: {spread([r['per_fragment'] for r in base])}")
    print(f"providers engaged: {[r['engaged'] for r in ours]}; every agreement ended: "
          f"{all(r['all_ended'] for r in ours)}; allocation released: {all(r['released'] for r in ours)}")
    print(f"bare keep-alive loop: {spread([r['rate'] for r in base], 0)} fragments/s, "
          f"CPU {spread([r['cpu_ms'] for r in base], 3)} ms/fragment")
    print(f"Golem backend, steady state: {spread([r['rate'] for r in ours], 0)} fragments/s, "
          f"CPU {spread([r['cpu_ms'] for r in ours], 3)} ms/fragment")
    print(f"Golem backend, whole job CPU (setup and close included): "
          f"{spread([r['job_cpu_ms'] for r in ours], 3)} ms/fragment")
    print(f"Golem backend, from GolemProvider() to the warm-up's {args.providers} results: "
          f"{spread([r['warm_up'] for r in ours])} s; closing: {spread([r['close'] for r in ours])} s")
    rates = [o["rate"] / b["rate"] for o, b in zip(ours, base)]
    cpus = [o["cpu_ms"] / b["cpu_ms"] for o, b in zip(ours, base)]
    print(f"ratio backend / bare, fragment rate: {spread(rates)}; CPU per fragment: {spread(cpus)}")


if __name__ == "__main__":
    main()
