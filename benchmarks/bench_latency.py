"""The latency promises the test suite no longer asserts (issue 8: no test measures
time), measured and printed against each promise.

    python benchmarks/bench_latency.py [--repeat 5] [--localnet]

* Ctrl-C ends a local job (two running programs killed, sandboxes removed) within 2 s.
* A ``break`` out of a local ``map`` kills its programs and releases within 2 s.
* ``shutdown(cancel_futures=True)`` ends hanging fake work within 2 s.
* A failed command reaches the worker within 0.3 s: on the local provider, and on the
  Golem backend against the fake daemon (not the 2 s results poll, nor the batch timeout).
* A batch cancelled from another thread on the Golem backend (fake daemon) ends within 1.5 s.
* No yagna daemon at the URL is reported within 5 s.
* ``--localnet``: a local Golem network (1 provider) is up within 10 s.

Each figure is the median (and worst) of ``--repeat`` runs, printed with the promise and
the ratio figure/promise (below 1.0 keeps it). Exits non-zero if a median breaks a promise.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from golem_tasks import BatchCancelled, CommandExecutionError, Golem, LocalProvider  # noqa: E402
from golem_tasks.testing import FakeProvider  # noqa: E402

from tests.test_local_provider import marker_pids, unique_sleep, wait_for  # noqa: E402


def local_ctrl_c() -> float:
    """Seconds from SIGINT to the job gone: KeyboardInterrupt out of the with, no program left."""
    marker = unique_sleep()
    stopped: List[float] = []

    def interrupt() -> None:
        if wait_for(lambda: len(marker_pids(marker)) >= 2, 30):
            stopped.append(time.perf_counter())
            os.kill(os.getpid(), signal.SIGINT)

    def sleeper(ctx, item):
        yield ctx.run("sleep", marker)

    with tempfile.TemporaryDirectory() as tmp, LocalProvider(Path(tmp) / "root", sandbox="host") as provider:
        thread = threading.Thread(target=interrupt)
        try:
            with Golem(provider, max_workers=2, progress=False) as golem:
                thread.start()
                list(golem.map(sleeper, range(4)))
        except KeyboardInterrupt:
            pass
        thread.join()
        gone = time.perf_counter()
        assert not marker_pids(marker), "programs survived Ctrl-C"
    return gone - stopped[0]


def local_break() -> float:
    marker = unique_sleep()

    def quick_then_sleepy(ctx, item):
        yield ctx.run("true") if item == 0 else ctx.run("sleep", marker)

    with tempfile.TemporaryDirectory() as tmp, LocalProvider(Path(tmp) / "root", sandbox="host") as provider:
        with Golem(provider, max_workers=3, progress=False) as golem:
            for _ in golem.as_completed(quick_then_sleepy, range(6)):
                assert wait_for(lambda: len(marker_pids(marker)) >= 2, 30)
                started = time.perf_counter()
                break
            took = time.perf_counter() - started
            assert golem.engaged == 0 and not marker_pids(marker)
    return took


def fake_cancel_futures() -> float:
    fake = FakeProvider(assert_all_used=False)
    fake.on_run("hang", hang=True)

    def hanging(ctx, item):
        yield ctx.run("hang")

    golem = Golem(fake, max_workers=2, progress=False)
    futures = [golem.submit(hanging, i) for i in range(2)]
    assert fake.wait_for_commands(2, timeout=30)
    started = time.perf_counter()
    golem.shutdown(cancel_futures=True)
    took = time.perf_counter() - started
    assert all(isinstance(f.exception(timeout=0), BatchCancelled) for f in futures)
    return took


def local_failure_seen() -> float:
    def failing(ctx, _):
        started = time.perf_counter()
        try:
            yield ctx.run("/bin/sh", "-c", "echo oops >&2; exit 3")
        except CommandExecutionError:
            return time.perf_counter() - started
        raise AssertionError("the command did not fail")

    with tempfile.TemporaryDirectory() as tmp, LocalProvider(Path(tmp) / "root", sandbox="host") as provider:
        with Golem(provider, max_workers=1, progress=False) as golem:
            golem.run(echo_true)  # engaged and warm: time the failure, not the start
            return golem.run(failing, None)


def echo_true(ctx):
    yield ctx.run("true")


def _fake_daemon_session(body: Callable) -> float:
    """Run ``body(daemon, session)`` on a session of the Golem backend against the fake daemon."""
    import responses

    from tests.yagna.fake_daemon import FakeDaemon, node
    from tests.yagna.golem_helpers import make_provider

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps, \
            tempfile.TemporaryDirectory() as tmp:
        daemon = FakeDaemon(rsps, [node(1)], tmp=Path(tmp))
        with make_provider() as provider:
            session = provider.engage()
            try:
                session.execute([_sh("true")])
                return body(daemon, session)
            finally:
                session.release()


def _sh(line: str):
    from golem_tasks.commands import Run
    return Run(("/bin/sh", "-c", line))


def golem_failure_seen() -> float:
    def body(daemon, session) -> float:
        started = time.perf_counter()
        try:
            session.execute([_sh("echo ok"), _sh("echo bad >&2; exit 3"), _sh("echo never")], timeout=30)
        except CommandExecutionError:
            return time.perf_counter() - started
        raise AssertionError("the batch did not fail")
    return _fake_daemon_session(body)


def golem_cancel() -> float:
    def body(daemon, session) -> float:
        seen = threading.Event()
        daemon.exeunit(session.activity_id).handler = \
            lambda args: (seen.set(), (0, "", "", math.inf))[1] if "hang" in args else None
        marks: List[float] = []

        def cancel() -> None:
            if seen.wait(30):
                marks.append(time.perf_counter())
                session.cancel()

        thread = threading.Thread(target=cancel)
        thread.start()
        try:
            session.execute([_sh("hang")])
        except BatchCancelled:
            pass
        ended = time.perf_counter()
        thread.join()
        return ended - marks[0]
    return _fake_daemon_session(body)


def no_daemon() -> float:
    from golem_tasks.providers.yagna import GolemProvider, YagnaUnreachable
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.perf_counter()
    try:
        GolemProvider(image_hash="a" * 56, image_url="http://127.0.0.1:9/image.gvmi", app_key="k",
                      api_url=f"http://127.0.0.1:{port}")
    except YagnaUnreachable:
        return time.perf_counter() - started
    raise AssertionError("a missing daemon was not reported")


def localnet_up() -> float:
    from golem_tasks.localnet import LocalNet
    started = time.perf_counter()
    with LocalNet(providers=1):
        took = time.perf_counter() - started
    return took


PROMISES: List[Tuple[str, float, Callable[[], float]]] = [
    ("Ctrl-C ends a local job (2 programs killed)", 2.0, local_ctrl_c),
    ("break out of a local map kills and releases", 2.0, local_break),
    ("shutdown(cancel_futures=True), hanging fake work", 2.0, fake_cancel_futures),
    ("failed command reaches the worker (local)", 0.3, local_failure_seen),
    ("failed command reaches the worker (Golem, fake daemon)", 0.3, golem_failure_seen),
    ("cancel from another thread ends a batch (Golem, fake daemon)", 1.5, golem_cancel),
    ("no yagna daemon is reported", 5.0, no_daemon),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--localnet", action="store_true", help="also time a localnet start (needs golem-node)")
    args = parser.parse_args()
    promises = PROMISES + ([("localnet (1 provider) up", 10.0, localnet_up)] if args.localnet else [])
    broken = 0
    print(f"{'promise':62} {'limit':>6} {'median':>8} {'worst':>8} {'ratio':>6}")
    for name, limit, measure in promises:
        figures = [measure() for _ in range(args.repeat if measure is not localnet_up else 1)]
        median = statistics.median(figures)
        broken += median > limit
        print(f"{name:62} {limit:5.1f}s {median:7.3f}s {max(figures):7.3f}s {median / limit:6.2f}", flush=True)
    print(f"{len(promises) - broken} of {len(promises)} promises kept (median); {args.repeat} runs each")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
