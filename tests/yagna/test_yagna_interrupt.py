"""Interruptible long polls (issue 9 item 6): a payment-event poll pending in the daemon
is ended at once by ``Interruptible.interrupt``, not waited out; over real sockets on
127.0.0.1, since ``responses`` has none to shut down."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator, List

import pytest

from golem_tasks.errors import ApiError
from golem_tasks.providers.yagna._connect import Connection

HANG = 60.0  # only catches a hang (generous: the suite must pass on a busy machine)


class Holding(ThreadingHTTPServer):
    """Answers every request only when ``release`` is set (a long poll with no news)."""

    daemon_threads = True

    def __init__(self) -> None:
        self.release = threading.Event()
        self.arrived = threading.Semaphore(0)
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Holding

    def do_GET(self) -> None:
        self.server.arrived.release()
        self.server.release.wait(HANG)
        body = b"[]"
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client went away: that is the point
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Holding]:
    httpd = Holding()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield httpd
    finally:
        httpd.release.set()
        httpd.shutdown()
        thread.join()
        httpd.server_close()


def test_interrupt_ends_a_pending_poll_and_it_is_not_retried(server):
    connection = Connection(f"http://127.0.0.1:{server.server_address[1]}", "key")
    poller = connection.interruptible()
    outcome: List[Any] = []

    def poll() -> None:
        try:
            outcome.append(poller.client().payment.collect_invoice_events(timeout=30))
        except ApiError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=poll)
    thread.start()
    assert server.arrived.acquire(timeout=HANG)
    poller.interrupt()
    thread.join(HANG)
    assert not thread.is_alive(), "the poll was waited out"
    assert not server.release.is_set()  # the daemon never answered it
    [error] = outcome
    assert isinstance(error, ApiError) and "broke" in str(error)
    assert not server.arrived.acquire(timeout=0)  # interrupted: not retried
    poller.close()
    connection.close()


def test_interrupt_leaves_the_main_session_alone(server):
    connection = Connection(f"http://127.0.0.1:{server.server_address[1]}", "key")
    poller = connection.interruptible()
    outcome: List[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(
        connection.client().payment.collect_invoice_events(timeout=30)))
    thread.start()
    assert server.arrived.acquire(timeout=HANG)
    poller.interrupt()
    server.release.set()
    thread.join(HANG)
    assert outcome == [[]]
    poller.close()
    connection.close()
