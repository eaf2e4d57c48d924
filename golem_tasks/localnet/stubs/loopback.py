"""The life cycle every loopback HTTP stub of localnet shares (chain stub, image
registry): a threaded server on 127.0.0.1, one serving thread, an idempotent stop."""

from __future__ import annotations

import abc
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional, Type, TypeVar

from ..daemon.ports import LOOPBACK

S = TypeVar("S", bound="LoopbackServer")


class LoopbackServer(abc.ABC):
    """Subclasses give ``_handler()``; the rest is here.

    Args:
        port: 0 picks a free port.
    """

    #: The serving thread's name, and how errors name the server.
    name = "loopback server"

    def __init__(self, *, port: int = 0) -> None:
        self._port = port
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{self.name} not started")
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    @abc.abstractmethod
    def _handler(self) -> Type[BaseHTTPRequestHandler]:
        """The request handler class this stub serves with."""

    def start(self: S) -> S:
        if self._server is not None:
            raise RuntimeError(f"{self.name} already started")
        self._server = ThreadingHTTPServer((LOOPBACK, self._port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket. Idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
