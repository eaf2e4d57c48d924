"""A blocking GSB (Golem Service Bus) client: the socket yagna's own exe-units use.

It connects to the daemon's router (``GSB_URL``), registers services under an address
prefix, answers the calls routed to them, and makes calls of its own::

    with GsbClient("tcp://127.0.0.1:5464") as bus:
        bus.register("/public/exeunit/<activity>", handler)      # handler(address, caller, payload)
        bus.call("/local/activity/SetActivityState", {...})       # -> decoded reply

Each incoming call runs in its own thread, so a handler may block (long polls do).
A handler returns the reply payload, or a :class:`Stream` of payloads for streaming
calls (partial replies, then an empty final one, as ya-service-bus does), or raises
:class:`GsbError` to answer with an error code.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import uuid
from typing import Any, Callable, Dict, Iterable, Optional, Tuple

from . import flex as _flex
from . import gsb_wire as wire
from ..errors import LocalNetError

logger = logging.getLogger(__name__)

Handler = Callable[[str, str, Any], Any]


class GsbError(LocalNetError):
    """A GSB call failed: the router or the service answered with an error ``code``."""

    def __init__(self, message: str, code: int = wire.SERVICE_FAILURE) -> None:
        super().__init__(message)
        self.code = code


class Stream:
    """Returned by a handler to answer with a stream of payloads."""

    def __init__(self, items: Iterable[Any]) -> None:
        self.items = items


def _connect(url: str) -> socket.socket:
    if url.startswith("tcp://"):
        host, _, port = url[len("tcp://") :].rpartition(":")
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    elif url.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(url[len("unix:") :])
    else:
        raise ValueError(f"unsupported GSB URL {url!r} (tcp://host:port or unix:/path)")
    sock.settimeout(None)
    return sock


class GsbClient:
    """One connection to a GSB router.

    Args:
        url: ``tcp://127.0.0.1:<port>`` or ``unix:/path``.
        caller: the ``caller`` of outgoing calls (a node id).
        on_disconnect: called once, from the reader thread, when the connection ends.
    """

    def __init__(
        self, url: str, *, caller: str = "", on_disconnect: Optional[Callable[[], None]] = None
    ) -> None:
        self.url = url
        self.caller = caller
        self.on_disconnect = on_disconnect
        self._sock: Optional[socket.socket] = None
        self._send_lock = threading.Lock()
        self._handlers: Dict[str, Handler] = {}
        self._pending: Dict[str, "queue.Queue[Tuple[int, bytes]]"] = {}
        self._acks: "queue.Queue[Tuple[str, Dict[str, Any]]]" = queue.Queue()
        self._ack_lock = (
            threading.Lock()
        )  # one register/unregister in flight: replies come in order
        self._reader: Optional[threading.Thread] = None
        self.closed = threading.Event()

    def connect(self) -> "GsbClient":
        _flex.require()
        self._sock = _connect(self.url)
        self._send(
            wire.encode(
                "hello", name="golem-tasks-exeunit", version="0.1", instance_id=uuid.uuid4().bytes
            )
        )
        self._reader = threading.Thread(
            target=self._read_loop, name=f"gsb-{self.caller[:10]}", daemon=True
        )
        self._reader.start()
        return self

    def close(self) -> None:
        """Close the connection; the router drops our registrations. Idempotent."""
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(5)

    def __enter__(self) -> "GsbClient":
        return self.connect()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- services ------------------------------------------------------------------

    def register(self, service_id: str, handler: Handler, timeout: float = 10.0) -> None:
        """Route calls to ``service_id/<Message>`` to ``handler``."""
        self._handlers[service_id] = handler
        code, message = self._acked("register_request", "register_reply", service_id, timeout)
        if code != 0:
            del self._handlers[service_id]
            raise GsbError(f"cannot register {service_id}: {code} {message}", code)

    def unregister(self, service_id: str, timeout: float = 10.0) -> None:
        self._handlers.pop(service_id, None)
        if not self.closed.is_set():
            self._acked("unregister_request", "unregister_reply", service_id, timeout)

    def _acked(self, request: str, reply: str, service_id: str, timeout: float) -> Tuple[int, str]:
        with self._ack_lock:
            self._send(wire.encode(request, service_id=service_id))
            try:
                kind, fields = self._acks.get(timeout=timeout)
            except queue.Empty:
                raise GsbError(f"no {reply} for {service_id} within {timeout} s") from None
        if kind != reply:
            raise GsbError(f"expected {reply}, got {kind}")
        return int(fields.get("code", 0)), str(fields.get("message", ""))

    # -- calls ---------------------------------------------------------------------

    def call(self, address: str, payload: Any, timeout: float = 10.0) -> Any:
        """Call ``address`` and return the decoded reply payload.

        Raises:
            GsbError: an error code from the router or service, no reply within
                ``timeout``, or the connection closed.
        """
        request_id = uuid.uuid4().hex
        replies: "queue.Queue[Tuple[int, bytes]]" = queue.Queue()
        self._pending[request_id] = replies
        try:
            self._send(
                wire.encode(
                    "call_request",
                    caller=self.caller,
                    address=address,
                    request_id=request_id,
                    data=_flex.dumps(payload),
                )
            )
            try:
                code, data = replies.get(timeout=timeout)
            except queue.Empty:
                raise GsbError(f"no reply from {address} within {timeout} s") from None
        finally:
            self._pending.pop(request_id, None)
        if code != wire.CALL_REPLY_OK:
            raise GsbError(f"{address}: {code} {data.decode(errors='replace')}", code)
        return _flex.loads(data)

    def _send(self, frame: bytes) -> None:
        sock = self._sock
        if sock is None or self.closed.is_set():
            raise GsbError("GSB connection closed")
        with self._send_lock:
            try:
                sock.sendall(frame)
            except OSError as exc:
                raise GsbError(f"GSB send failed: {exc}") from exc

    # -- reading -------------------------------------------------------------------

    def _read_exactly(self, sock: socket.socket, size: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < size:
            chunk = sock.recv(size - len(chunks))
            if not chunk:
                raise ConnectionError("GSB connection closed by the router")
            chunks += chunk
        return bytes(chunks)

    def _read_loop(self) -> None:
        sock = self._sock
        try:
            while sock is not None:
                length = int.from_bytes(self._read_exactly(sock, 4), "big")
                if length > wire.MAX_FRAME:
                    raise ConnectionError(f"GSB frame of {length} bytes")
                kind, fields = wire.decode(self._read_exactly(sock, length))
                self._dispatch(kind, fields)
        except (OSError, ValueError, GsbError) as exc:
            # GsbError: a ping answered after close() finds the connection gone; the
            # reader must end quietly then instead of dying with a traceback.
            if self._sock is not None:
                logger.info("GSB connection %s ended: %s", self.url, exc)
        finally:
            self.closed.set()
            for replies in list(self._pending.values()):
                replies.put((wire.SERVICE_FAILURE, b"GSB connection closed"))
            if self.on_disconnect is not None:
                try:
                    self.on_disconnect()
                except Exception:
                    logger.exception("GSB on_disconnect callback failed")

    def _dispatch(self, kind: str, fields: Dict[str, Any]) -> None:
        if kind == "call_request":
            thread = threading.Thread(
                target=self._serve, args=(fields,), name="gsb-call", daemon=True
            )
            thread.start()
        elif kind == "call_reply":
            replies = self._pending.get(fields["request_id"])
            if replies is not None and fields["reply_type"] == wire.FULL:
                replies.put((fields["code"], fields["data"]))
        elif kind in ("register_reply", "unregister_reply"):
            self._acks.put((kind, fields))
        elif kind == "ping":
            self._send(wire.encode("pong"))

    def _handler_for(self, address: str) -> Optional[Handler]:
        best = ""
        for prefix in list(self._handlers):
            if (address == prefix or address.startswith(prefix + "/")) and len(prefix) > len(best):
                best = prefix
        return self._handlers.get(best) if best else None

    def _serve(self, fields: Dict[str, Any]) -> None:
        request_id, address = fields["request_id"], fields["address"]
        handler = self._handler_for(address)
        try:
            if handler is None:
                self._reply(
                    request_id,
                    wire.CALL_REPLY_BAD_REQUEST,
                    f"endpoint address not found: {address}".encode(),
                )
                return
            try:
                result = handler(address, fields["caller"], _flex.loads(fields["data"]))
            except GsbError as exc:  # the handler refuses the call with a GSB error code
                self._reply(request_id, exc.code, str(exc).encode())
                return
            except Exception as exc:  # a handler bug must answer the caller, not hang it
                logger.exception("GSB handler for %s failed", address)
                self._reply(request_id, wire.SERVICE_FAILURE, str(exc).encode())
                return
            if fields["no_reply"]:
                return
            if isinstance(result, Stream):
                for item in result.items:
                    self._reply(request_id, wire.CALL_REPLY_OK, _flex.dumps(item), wire.PARTIAL)
                self._reply(request_id, wire.CALL_REPLY_OK, b"")
            else:
                self._reply(request_id, wire.CALL_REPLY_OK, _flex.dumps(result))
        except GsbError as exc:  # the connection went away meanwhile
            logger.debug("GSB reply to %s not sent: %s", address, exc)

    def _reply(self, request_id: str, code: int, data: bytes, reply_type: int = wire.FULL) -> None:
        self._send(
            wire.encode(
                "call_reply", request_id=request_id, code=code, reply_type=reply_type, data=data
            )
        )
