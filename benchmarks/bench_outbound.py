"""What ``outbound=`` costs in the local sandbox: HTTP requests from a command through the
filtering proxy, against the same requests with the whole network open, in the same run.

One command makes ``--requests`` sequential GETs (``urllib``, a new connection each) to a
web server on 127.0.0.1:

* bwrap, ``network=True``: straight to the server (the baseline);
* bwrap, ``outbound=[...]``: agent's forwarder -> unix socket -> proxy -> server;
* host, ``outbound=[...]``: proxy -> server.

It also times an engage (sandbox, agent and forwarder) with and without ``outbound=``.

    python benchmarks/bench_outbound.py [--requests 300] [--repeat 3]
"""

from __future__ import annotations

import argparse
import http.server
import statistics
import threading
import time
from typing import Dict, List

from golem_tasks.commands import Run
from golem_tasks.providers.local import LocalProvider

LOOP = """
import sys, time, urllib.request
url, n = sys.argv[1], int(sys.argv[2])
started = time.perf_counter()
for _ in range(n):
    urllib.request.urlopen(url, timeout=30).read()
print(time.perf_counter() - started)
"""


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args: object) -> None:
        pass


def timed_requests(provider: LocalProvider, url: str, requests: int) -> float:
    session = provider.engage()
    try:
        [result] = session.execute([Run(("python3", "-c", LOOP, url, str(requests)))], timeout=600)
    finally:
        session.release()
    return float(result.stdout)


def timed_engage(provider: LocalProvider) -> float:
    started = time.perf_counter()
    session = provider.engage()
    took = time.perf_counter() - started
    session.release()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    kinds = {"bwrap, network=True (baseline)": dict(sandbox="bwrap", network=True),
             "bwrap, outbound=": dict(sandbox="bwrap", outbound=[url]),
             "host, outbound=": dict(sandbox="host", outbound=[url])}
    requests: Dict[str, List[float]] = {name: [] for name in kinds}
    engages: Dict[str, List[float]] = {name: [] for name in kinds}
    try:
        for _ in range(options.repeat):
            for name, settings in kinds.items():
                with LocalProvider(**settings) as provider:  # type: ignore[arg-type]
                    requests[name].append(timed_requests(provider, url, options.requests))
                    engages[name].append(timed_engage(provider))
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    base = statistics.median(requests["bwrap, network=True (baseline)"])
    print(f"{options.requests} sequential GETs from one command, median of {options.repeat}:")
    print("| | per request | ratio | engage |")
    print("|---|---|---|---|")
    for name in kinds:
        wall = statistics.median(requests[name])
        print(f"| {name} | {wall / options.requests * 1000:.2f} ms | {wall / base:.2f}x | "
              f"{statistics.median(engages[name]) * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
