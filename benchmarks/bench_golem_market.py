"""The market preflight, feedback before work starts, and signals, on the real yagna
daemon (localnet): how long a market scan takes, how soon the first ``MarketStatus``
comes and how long past ``startup_timeout`` the job ends, and how long a process
running a Golem job takes to exit after SIGTERM or SIGHUP (against Ctrl-C, SIGINT,
in the same run).

    python benchmarks/bench_golem_market.py [--repeat 3] [--providers 3]

Needs the localnet extra: pip install -e '.[localnet]'. Default ``Timeouts``.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Dict, List

from golem_tasks import BrokenPool, Golem
from golem_tasks.localnet import LocalNet
from golem_tasks.providers.yagna import GolemProvider, MarketStatus

ROOT = Path(__file__).resolve().parents[1]
IMAGE = dict(image_hash="a" * 56, image_url="http://127.0.0.1:9/image.gvmi")  # not booted locally

JOB = textwrap.dedent("""
    import sys
    from golem_tasks import Golem
    from golem_tasks.events import FragmentStarted

    def slow(ctx, i):
        yield ctx.run("/bin/sh", "-c", "sleep 30")

    def report(event):
        if isinstance(event, FragmentStarted):
            sys.stdout.write("running\\n")
            sys.stdout.flush()

    with Golem(provider="golem", image="golem/alpine:latest", max_workers=2, progress=False,
               events=report) as golem:
        for _ in golem.map(slow, range(40)):
            pass
""")


def scan_time(net: LocalNet) -> float:
    provider = GolemProvider(app_key=net.requestor.app_key, api_url=net.api_url, **IMAGE)
    try:
        started = time.monotonic()
        provider.scan(seconds=10)
        return time.monotonic() - started
    finally:
        provider.close()


def cli_scan_time(net: LocalNet, env: Dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "golem_tasks.cli", "market", "scan"], env=env, check=True,
                   capture_output=True, timeout=120)
    return time.monotonic() - started


def startup(net: LocalNet, timeout: float) -> Dict[str, float]:
    """An impossible price cap with ``startup_timeout``: the first status, the error."""
    marks: Dict[str, float] = {}

    def watch(event: object) -> None:
        if isinstance(event, MarketStatus):
            marks.setdefault("first status", time.monotonic())
            if event.rejected:
                marks.setdefault("causes known", time.monotonic())
    provider = GolemProvider(app_key=net.requestor.app_key, api_url=net.api_url, max_cpu_hour_price="0.01",
                             startup_timeout=timeout, events=watch, **IMAGE)
    started = time.monotonic()
    try:
        with Golem(provider, max_workers=2, progress=False) as golem:
            try:
                golem.run(lambda ctx: (yield ctx.run("/bin/true")))
            except BrokenPool:
                marks["BrokenPool"] = time.monotonic()
    finally:
        provider.close()
    closed = time.monotonic()
    return {"first status": marks["first status"] - started, "causes known": marks["causes known"] - started,
            "BrokenPool past the timeout": marks["BrokenPool"] - started - timeout,
            "closed past the timeout": closed - started - timeout}


def signal_exit(env: Dict[str, str], script: Path, signum: int) -> float:
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True, env=env)
    try:
        assert child.stdout is not None and child.stdout.readline().startswith("running")
        time.sleep(1.0)  # into the command
        sent = time.monotonic()
        child.send_signal(signum)
        child.wait(timeout=240)
        took = time.monotonic() - sent
        assert child.returncode in (-signum, 130), child.returncode
        return took
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--providers", type=int, default=3)
    args = parser.parse_args()
    with LocalNet(providers=args.providers) as net, tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("YAGNA_", "GOLEM_TASKS_"))}
        env.update(net.env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        script = Path(tmp) / "job.py"
        script.write_text(JOB)
        results: Dict[str, List[float]] = {}
        for _ in range(args.repeat):
            results.setdefault("GolemProvider.scan()", []).append(scan_time(net))
            results.setdefault("golem-tasks market scan (process)", []).append(cli_scan_time(net, env))
            for name, value in startup(net, 5.0).items():
                results.setdefault(f"startup_timeout=5: {name}", []).append(value)
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                results.setdefault(f"{signal.Signals(signum).name} -> exit", []).append(
                    signal_exit(env, script, signum))
        print(f"localnet, {args.providers} providers, {args.repeat} runs; seconds, median (each run)")
        for name, values in results.items():
            print(f"  {name}: {statistics.median(values):.2f} ({', '.join(f'{v:.2f}' for v in values)})")
        base = statistics.median(results["SIGINT -> exit"])
        for name in ("SIGTERM -> exit", "SIGHUP -> exit"):
            print(f"  {name} / SIGINT -> exit: {statistics.median(results[name]) / base:.2f}")


if __name__ == "__main__":
    main()
