"""Web servers on 127.0.0.1 that play "the internet" for the outbound tests."""

from __future__ import annotations

import contextlib
import http.server
import threading
from typing import Iterator, List


class Hello(http.server.BaseHTTPRequestHandler):
    """Answers every GET with ``hello from PORT PATH``, so a test sees which server and
    which URL a request reached."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        body = f"hello from {self.server.server_address[1]} {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def web_servers(count: int = 2) -> Iterator[List[int]]:
    """``count`` servers running :class:`Hello`; their ports. Stopped on exit."""
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello) for _ in range(count)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    try:
        yield [s.server_address[1] for s in servers]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join()
