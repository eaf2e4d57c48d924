"""Failure paths of the Golem backend on the real yagna daemon (localnet): how long a
killed exe-unit takes to be noticed and its fragment to run elsewhere, and how long
leaving a job (``GolemProvider.close``) takes.

    python benchmarks/bench_golem_failures.py [--repeat 3]

Needs the localnet extra: pip install -e '.[localnet]'. Default ``Timeouts`` throughout.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from typing import Dict, List

from golem_tasks import Golem, events
from golem_tasks.localnet import LocalNet
from golem_tasks.providers.yagna import GolemProvider

IMAGE = dict(image_hash="a" * 56, image_url="http://127.0.0.1:9/image.gvmi")  # not booted locally


def slow(ctx):
    results = yield ctx.run("/bin/sh", "-c", "sleep 8; echo done")
    return results[0].stdout.strip()


def killed_exe_unit(net: LocalNet) -> Dict[str, float]:
    """Kill the exe-unit 1.5 s into an 8 s command; time the retry and the new start."""
    marks: Dict[str, float] = {}
    started: List[float] = []

    def on_event(event: object) -> None:
        now = time.monotonic()
        if isinstance(event, events.FragmentStarted):
            started.append(now)
        elif isinstance(event, events.FragmentRetried):
            marks.setdefault("retried", now)

    def killer() -> None:
        while not any(agent.activities.live() for agent in net.agents):
            time.sleep(0.05)
        time.sleep(1.5)
        for agent in net.agents:
            if agent.activities.live():
                marks["kill"] = time.monotonic()
                agent.activities.crash()
                return

    provider = GolemProvider(app_key=net.requestor.app_key, api_url=net.api_url, budget="5", **IMAGE)
    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        with Golem(provider, max_workers=1, progress=False, events=on_event) as golem:
            assert golem.run(slow) == "done"
    finally:
        thread.join()
        closing = time.monotonic()
        provider.close()
        marks["close"] = time.monotonic() - closing
    kill = marks["kill"]
    return {"noticed": marks["retried"] - kill, "restarted": started[-1] - kill, "close": marks["close"]}


def leave(net: LocalNet) -> float:
    """Seconds ``close()`` takes after a two-provider job of quick fragments."""
    provider = GolemProvider(app_key=net.requestor.app_key, api_url=net.api_url, budget="5", **IMAGE)
    with Golem(provider, max_workers=2, progress=False) as golem:
        list(golem.map(lambda ctx, i: (yield ctx.run("/bin/echo", str(i)))[0].stdout, range(4)))
    started = time.monotonic()
    provider.close()
    assert provider.unpaid_agreements() == ()
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    kills: List[Dict[str, float]] = []
    leaves: List[float] = []
    with LocalNet(providers=2) as net:
        for _ in range(args.repeat):
            kills.append(killed_exe_unit(net))
            leaves.append(leave(net))
    for key, label in (("noticed", "kill -> fragment retried"), ("restarted", "kill -> fragment running again"),
                       ("close", "close() after the kill")):
        values = [k[key] for k in kills]
        print(f"{label}: median {statistics.median(values):.2f} s ({', '.join(f'{v:.2f}' for v in values)})")
    print(f"close() after a 2-provider job: median {statistics.median(leaves):.2f} s "
          f"({', '.join(f'{v:.2f}' for v in leaves)})")


if __name__ == "__main__":
    main()
