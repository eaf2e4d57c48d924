"""The fake yagna daemon (fake_daemon.py) served over real HTTP on 127.0.0.1, in a process
of its own.

``responses`` answers inside the client's process and skips sockets, so it can neither
show what keep-alive connections cost nor leave the client's CPU time unpolluted by the
daemon's. This front end serves the same in-memory model (same routes, same JSON shapes,
same long polls) with ``ThreadingHTTPServer`` on HTTP/1.1 keep-alive, and
:class:`MockDaemonProcess` runs it in a child process. Its providers answer ``/bin/echo``
and ``/bin/true`` at once, without starting a process, so a one-command batch is
finished by the time ``exec`` returns.

It also counts requests on the server side: per route, and exec + results calls split
into ``setup`` batches (deploy/start) and ``work`` batches. ``GET /_mock/stats`` (not a
yagna route) reports them with the state of every agreement, activity and allocation.

    python -m tests.yagna.http_daemon --providers 10    # prints its URL; ends when stdin closes
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional

import requests

from .fake_daemon import FakeDaemon, node
from .fake_exeunit import script_of
from .fake_payments import Answer, _json

ROOT = Path(__file__).resolve().parents[2]
_EXEC = re.compile(r"/activity-api/v1/activity/[^/]+/exec$")
_RESULTS = re.compile(r"/activity-api/v1/activity/[^/]+/exec/(?P<batch>[^/?]+)")


def instant(args: List[str]) -> Optional[tuple]:
    """``/bin/echo`` and ``/bin/true`` finish at once without a process; anything else
    really runs (fake_exeunit.py)."""
    if args[0] == "/bin/true":
        return 0, "", ""
    if args[0] == "/bin/echo":
        return 0, " ".join(args[1:]) + "\n", ""
    return None


class _Request(NamedTuple):
    """What FakeDaemon._dispatch reads of a ``requests.PreparedRequest``."""

    method: str
    url: str
    body: Optional[bytes]


class _NoMock:
    """Stands in for the ``responses`` mock FakeDaemon registers its routes with: here
    the HTTP handler calls its dispatcher."""

    def add_callback(self, *args: Any, **kwargs: Any) -> None:
        pass


class MockDaemonServer(ThreadingHTTPServer):
    """A FakeDaemon behind a threading HTTP/1.1 server, counting what it is asked."""

    daemon_threads = True

    def __init__(self, fake: FakeDaemon, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.fake = fake
        self.lock = threading.Lock()
        self.batch_kinds: Dict[str, str] = {}
        self.split: Dict[str, Counter] = {"setup": Counter(), "work": Counter()}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that closes a long poll it no longer needs (as a fast close does) is
        # normal, not worth a traceback; anything else still prints one.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def answer(self, request: _Request) -> Answer:
        path = request.url.split("?", 1)[0][len(self.url):]
        if path == "/_mock/stats":
            return _json(200, self.stats())
        kind = None
        if request.method == "POST" and _EXEC.search(path) and request.body:
            script = script_of(request.body)
            kind = "setup" if any("deploy" in command or "start" in command for command in script) else "work"
        answer = self.fake._dispatch(request)
        results = _RESULTS.search(path)
        with self.lock:
            if kind is not None and answer[0] == 200:
                self.batch_kinds[json.loads(answer[2])] = kind
                self.split[kind]["batches"] += 1
            if kind is not None:
                self.split[kind]["exec"] += 1
            elif request.method == "GET" and results:
                self.split[self.batch_kinds.get(results["batch"], "work")]["results"] += 1
        return answer

    def stats(self) -> Dict[str, Any]:
        fake = self.fake
        with fake.lock, self.lock:
            return {
                "calls": dict(fake.calls),
                "batches": {kind: dict(counts) for kind, counts in self.split.items()},
                "agreements": {key: value["state"] for key, value in fake.agreements.items()},
                "activities": {key: value["state"] for key, value in fake.activities.items()},
                "allocations": list(fake.allocations),
                "released": list(fake.released),
                "subscriptions": list(fake.subscriptions),
                "invoices": list(fake.invoices),
                "accepted": list(fake.accepted),
            }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real daemon (actix) serves
    disable_nagle_algorithm = True  # small answers must not wait for a delayed ACK
    server: MockDaemonServer

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        status, headers, text = self.server.answer(_Request(self.command, self.server.url + self.path, body))
        data = text.encode() if isinstance(text, str) else text
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a request log line per call would cost the daemon more than its answer


class MockDaemonProcess:
    """The mocked daemon with ``providers`` instant providers, in a child process.

    Usage::

        with MockDaemonProcess(providers=3) as daemon:
            provider = GolemProvider(api_url=daemon.url, app_key="any", ...)
            ...
            daemon.stats()["released"]
    """

    def __init__(self, providers: int = 10) -> None:
        self.providers = providers
        self.url = ""
        self._process: Optional["subprocess.Popen[str]"] = None
        self._http = requests.Session()
        self._http.trust_env = False  # never through a proxy: it is on loopback

    def __enter__(self) -> "MockDaemonProcess":
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.yagna.http_daemon", "--providers", str(self.providers)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        self.url = self._process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.close()
            raise RuntimeError("the mocked daemon did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> Dict[str, Any]:
        """What the daemon saw so far (see :meth:`MockDaemonServer.stats`)."""
        response = self._http.get(self.url + "/_mock/stats", timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def close(self) -> None:
        self._http.close()
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()  # the child ends when its stdin does
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=10)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="golem_tasks-mock-daemon-") as tmp:
        nodes = [node(number, handler=instant) for number in range(1, args.providers + 1)]
        server = MockDaemonServer(FakeDaemon(_NoMock(), nodes, tmp=Path(tmp)), args.port)
        serving = threading.Thread(target=server.serve_forever, name="mock-daemon", daemon=True)
        serving.start()
        print(server.url, flush=True)
        sys.stdin.read()  # until the parent closes it, or dies
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
