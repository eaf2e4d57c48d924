"""A small filtering HTTP proxy: commands reach the hosts of ``outbound=`` and nothing else.

The local provider (and localnet's exe-units, which run on it) start one per provider
when ``outbound=`` is set. It speaks the two ways HTTP clients use a proxy:

* ``CONNECT host:port`` (https, wss, or anything tunnelled): the tunnel opens only when
  the host and port belong to a URL of the manifest;
* a plain request with an absolute URL (``GET http://host:port/path``): forwarded,
  with ``Connection: close``, only when its host and port do.

Anything else is answered ``403`` with a body (and a reason phrase, which clients such
as urllib show for a refused tunnel) saying that the computation payload manifest
blocked it and how to allow it. Like yagna's exe-unit, the check is by host and port,
not path. It listens on 127.0.0.1 (for the host sandbox) and on a unix socket (which
the bwrap sandbox sees, and reaches through its agent's forwarder; see :mod:`._agent`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import socketserver
import threading
from typing import Any, List, Optional, Sequence, Tuple

from .outbound import Endpoint, denied_text, endpoints

logger = logging.getLogger(__name__)

#: The longest request head read before deciding (a request line and its headers).
HEAD_LIMIT = 64 * 1024
#: Seconds to connect to an allowed host.
CONNECT_TIMEOUT = 10.0
_CHUNK = 64 * 1024


class _Refused(Exception):
    def __init__(self, status: int, phrase: str, body: str) -> None:
        super().__init__(body)
        self.status, self.phrase, self.body = status, phrase, body


class OutboundProxy:
    """The proxy for one list of URLs, serving until :meth:`close`.

    Args:
        urls: the allowed URLs (already checked, see :func:`.outbound.check_outbound`).
        unix_path: also listen on a unix socket at this path.

    Attributes:
        port: its TCP port on 127.0.0.1.
        unix_path: its unix socket, or None.
        denied: ``(host, port)`` of every refused request, in order (for tests and logs).
    """

    def __init__(self, urls: Sequence[str], *, unix_path: Optional[str] = None) -> None:
        self.urls = tuple(urls)
        self.allowed = endpoints(self.urls)
        self.denied: List[Endpoint] = []
        self._lock = threading.Lock()
        handler = self._handler_class()
        tcp = _TcpServer(("127.0.0.1", 0), handler)
        self._servers: List[socketserver.BaseServer] = [tcp]
        self.port: int = tcp.socket.getsockname()[1]
        self.unix_path = unix_path
        if unix_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(unix_path)
            self._servers.append(_UnixServer(unix_path, handler))
        self._threads = [threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                          name="golem_tasks-outbound-proxy", daemon=True)
                         for server in self._servers]
        for thread in self._threads:
            thread.start()
        logger.info("outbound proxy on 127.0.0.1:%d%s allows %s", self.port,
                    f" and {unix_path}" if unix_path else "", ", ".join(self.urls))

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, for ``http_proxy``."""
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        """Stop listening (tunnels already open end with their connections). Idempotent."""
        servers, self._servers = self._servers, []
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join()
        if self.unix_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.unix_path)

    def __enter__(self) -> "OutboundProxy":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- one connection ------------------------------------------------------------

    def _handler_class(self) -> Any:
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.request)

        return Handler

    def _serve(self, client: socket.socket) -> None:
        try:
            head, rest = _read_head(client)
            method, host, port, forward = _parse(head)
            if (host, port) not in self.allowed:
                with self._lock:
                    self.denied.append((host, port))
                logger.info("outbound proxy refused %s %s:%d", method, host, port)
                raise _Refused(403, "Blocked by the computation payload manifest",
                               denied_text(host, port, self.urls))
            try:
                upstream = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
            except OSError as exc:
                raise _Refused(502, "Bad Gateway", f"cannot connect to {host}:{port}: {exc}") from exc
        except _Refused as refused:
            _answer(client, refused)
            return
        except OSError:
            return  # the client went away
        with upstream:
            upstream.settimeout(None)
            if method == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                upstream.sendall(forward)
            if rest:
                upstream.sendall(rest)
            _pump(client, upstream)


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def _read_head(client: socket.socket) -> Tuple[bytes, bytes]:
    """The request head (up to the blank line) and whatever came after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > HEAD_LIMIT:
            raise _Refused(431, "Request Header Fields Too Large", "the request head is too long")
        chunk = client.recv(_CHUNK)
        if not chunk:
            raise OSError("the client closed the connection")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return head, rest


def _parse(head: bytes) -> Tuple[str, str, int, bytes]:
    """(method, host, port, the head to forward for a plain request)."""
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise _Refused(400, "Bad Request", f"not an HTTP request line: {lines[0]!r}") from None
    if method == "CONNECT":
        host, _, port = target.rpartition(":")
        host = host.strip("[]").lower()
        if not host or not port.isdigit():
            raise _Refused(400, "Bad Request", f"CONNECT needs host:port, got {target!r}")
        return method, host, int(port), b""
    from urllib.parse import urlsplit  # noqa: PLC0415 - plain requests only
    parts = urlsplit(target)
    if parts.scheme not in ("http", "ws") or not parts.hostname:
        raise _Refused(400, "Bad Request", f"a proxy request needs an absolute http URL, got {target!r}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    headers = [line for line in lines[1:]
               if line.split(":", 1)[0].strip().lower() not in ("connection", "proxy-connection",
                                                                 "proxy-authorization", "keep-alive")]
    forward = "\r\n".join([f"{method} {path} {version}", *headers, "Connection: close", "", ""])
    return method, parts.hostname.lower(), parts.port or 80, forward.encode("latin-1")


def _answer(client: socket.socket, refused: _Refused) -> None:
    body = (refused.body + "\n").encode()
    head = (f"HTTP/1.1 {refused.status} {refused.phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    with contextlib.suppress(OSError):
        client.sendall(head + body)


def _pump(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways until both sides have closed."""
    open_ends = {a: b, b: a}
    while open_ends:
        ready, _, _ = select.select(list(open_ends), [], [])
        for source in ready:
            try:
                data = source.recv(_CHUNK)
            except OSError:
                data = b""
            target = open_ends[source]
            if data:
                try:
                    target.sendall(data)
                    continue
                except OSError:
                    pass
            del open_ends[source]
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)
