"""GSB services answered over the daemon's GSB-API WebSocket (``/gsb-api/v1``).

yagna relays calls to a bound address to one WebSocket per bound prefix
(``core/gsb-api`` in yagna; ``gsb-api.yaml`` and ``gsb-api-messages.yaml`` in the specs):

1. ``POST /gsb-api/v1/services {"listen": {"on": PREFIX, "components": [...]}}`` binds
   ``PREFIX/<component>`` for each component; the answer's ``servicesId`` is the
   URL-safe base64 of ``PREFIX``.
2. ``GET /gsb-api/v1/services/<servicesId>`` upgrades to a WebSocket, subprotocol
   ``gsb+flexbuffers``. The app key goes in the ``Authorization: Bearer`` header (the
   daemon also takes ``?authToken=``, which golem-js uses in browsers; a key in a URL
   ends up in logs, so it is never used here). Calls made before the socket is open
   are buffered by the daemon and delivered once it connects.
3. Each call arrives as one binary frame, a flexbuffers map ``{"id": str, "component":
   str, "payload": map}`` (``GetMetadata``'s unit payload arrives as an empty map).
   Each is answered by one binary frame ``{"id": id, "payload": value}`` or ``{"id": id,
   "error": {"Variant": "message"}}`` (a unit variant as the plain string ``"Variant"``):
   the daemon wraps them as ``{"Ok": value}`` / ``{"Err": error}`` and hands them to the
   caller's serde. Text frames make the daemon close the socket.
4. ``DELETE /gsb-api/v1/services/<servicesId>`` unbinds, fails pending calls and sends
   a close frame.

Seen against yagna 0.17.6: the daemon never answers a close frame that the client
sends first (a polite close handshake would wait for nothing), so the socket is shut
down right after sending ours; and a reply frame over 65,536 bytes (actix-http's
default frame limit) fails the call with ``ProtocolError: payload reached size limit``.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlsplit

import websocket
from flatbuffers import flexbuffers

from ....errors import ApiError
from ..errors import AppKeyRefused, NotFound, TransportError, YagnaUnreachable

logger = logging.getLogger(__name__)

#: The WebSocket subprotocol of the GSB API.
SUBPROTOCOL = "gsb+flexbuffers"

#: The largest reply frame the daemon accepts (actix-http's default WebSocket limit).
MAX_REPLY_FRAME = 65536

#: A handler answers ``(component, payload)`` with the reply payload, or raises
#: :class:`GsbReplyError`.
Handler = Callable[[str, Mapping[str, Any]], Any]


class GsbReplyError(Exception):
    """Raised by a handler to answer a call with an error variant of the service's
    ``Error`` enum, e.g. ``GsbReplyError("ReadError", "offset beyond the end")``, or
    ``GsbReplyError("IntegrityError")`` for a unit variant."""

    def __init__(self, variant: str, message: Optional[str] = None) -> None:
        super().__init__(f"{variant}: {message}" if message is not None else variant)
        self.variant = variant
        self.message = message


class MalformedRequest(ValueError):
    """A frame that is not a GSB-API request; ``request_id`` is set when it had one."""

    def __init__(self, message: str, request_id: Optional[str] = None) -> None:
        super().__init__(message)
        self.request_id = request_id


def decode_request(frame: bytes) -> Tuple[str, str, Mapping[str, Any]]:
    """``(id, component, payload)`` of one request frame.

    Raises:
        MalformedRequest: not a flexbuffers map with a string ``id`` and ``component``.
    """
    try:
        message = flexbuffers.Loads(bytearray(frame))
    except Exception as exc:  # the decoder raises anything from IndexError to struct.error
        raise MalformedRequest(f"not a flexbuffers message ({type(exc).__name__})") from exc
    if not isinstance(message, dict):
        raise MalformedRequest(f"a {type(message).__name__}, not a map")
    request_id = message.get("id")
    if not isinstance(request_id, str) or not request_id:
        raise MalformedRequest("no request id")
    component = message.get("component")
    if not isinstance(component, str) or not component:
        raise MalformedRequest("no component", request_id)
    payload = message.get("payload")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise MalformedRequest(f"a {type(payload).__name__} payload, not a map", request_id)
    return request_id, component, payload


def encode_reply(request_id: str, payload: Any) -> bytes:
    """The frame answering ``request_id`` with ``payload`` (``None`` for ``()``)."""
    return bytes(flexbuffers.Dumps({"id": request_id, "payload": payload}))


def encode_error(request_id: str, variant: str, message: Optional[str] = None) -> bytes:
    """The frame answering ``request_id`` with an error variant."""
    error: Any = variant if message is None else {variant: message}
    return bytes(flexbuffers.Dumps({"id": request_id, "error": error}))


def _open_socket(url: str, timeout: float) -> socket.socket:
    """A TCP (TLS for ``wss``) connection straight to the daemon. Like the REST session
    (``trust_env=False``), it ignores ``HTTP(S)_PROXY``: websocket-client would follow
    them, and a proxy in front of a local daemon only breaks it."""
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    host = parts.hostname or ""
    sock = socket.create_connection((host, parts.port or (443 if secure else 80)), timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small replies go at once
        if secure:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise
    return sock


def _close_reason(data: bytes) -> str:
    if len(data) < 2:
        return "closed by the daemon"
    code = int.from_bytes(data[:2], "big")
    text = data[2:].decode("utf-8", "replace")
    return f"closed by the daemon ({code}{': ' + text if text else ''})"


class BoundService:
    """One GSB address prefix, bound through the REST API and answered by ``handler``
    on a reader thread of its own.

    Args:
        gsb: the client's ``GsbApi`` (``client.gsb``).
        auth_header: the ``Authorization`` header for the WebSocket upgrade.
        on: the address prefix, e.g. ``/public/gftp/<id>``.
        components: the message types to bind under it.
        handler: answers each call; it runs on the reader thread, one call at a time.
        connect_timeout: seconds for the WebSocket connection and upgrade.
        close_timeout: seconds :meth:`close` waits for the reader thread.
        on_end: called once from the reader thread when the socket ends without
            :meth:`close`, with the reason.
    """

    def __init__(self, gsb: Any, auth_header: Mapping[str, str], on: str, components: Sequence[str],
                 handler: Handler, *, connect_timeout: float = 10.0, close_timeout: float = 5.0,
                 on_end: Optional[Callable[[str], None]] = None) -> None:
        self._gsb = gsb
        self._auth = dict(auth_header)
        self.on = on
        self.components: Tuple[str, ...] = tuple(components)
        self._handler = handler
        self._connect_timeout = connect_timeout
        self._close_timeout = close_timeout
        self._on_end = on_end
        self._ws: Optional[websocket.WebSocket] = None
        self._thread: Optional[threading.Thread] = None
        self._services_id: Optional[str] = None
        self._closing = threading.Event()
        self._lock = threading.Lock()
        #: Why the socket ended without :meth:`close` (None while it is open).
        self.failure: Optional[str] = None

    def __repr__(self) -> str:
        return f"BoundService({self.on!r}, {list(self.components)!r})"

    def start(self) -> "BoundService":
        """Bind, connect and start answering.

        Raises:
            ApiError: the daemon refused the binding or the WebSocket (narrowed to
                :class:`AppKeyRefused`, :class:`NotFound`, :class:`YagnaUnreachable`
                or :class:`TransportError` where it can be).
        """
        services = self._gsb.bind_services(self.on, list(self.components))
        self._services_id = services.services_id
        try:
            self._ws = self._connect(self._gsb.websocket_url(services.services_id))
        except BaseException:
            self._unbind()
            raise
        self._thread = threading.Thread(target=self._read_loop, name=f"gsb-ws{self.on}", daemon=True)
        self._thread.start()
        logger.debug("serving GSB %s %s", self.on, ",".join(self.components))
        return self

    def _connect(self, url: str) -> websocket.WebSocket:
        host = urlsplit(url).hostname or ""
        what = f"the GSB-API WebSocket of {self.on}"
        try:
            sock = _open_socket(url, self._connect_timeout)
            try:
                ws = websocket.create_connection(
                    url, timeout=self._connect_timeout, socket=sock, header=self._auth,
                    subprotocols=[SUBPROTOCOL], suppress_origin=True, enable_multithread=True,
                    skip_utf8_validation=True)
            except BaseException:
                sock.close()
                raise
        except websocket.WebSocketBadStatusException as exc:
            status = exc.status_code
            if status == 401:
                raise AppKeyRefused(f"the daemon refused the app key for {what} (401): use a "
                                    "requestor app key (`yagna app-key list`)", status=401) from None
            if status == 404:
                raise NotFound(f"{what} does not exist (404): the services were unbound",
                               status=404) from None
            raise ApiError(f"{what}: the daemon answered the upgrade with HTTP {status}",
                           status=status) from None
        except ConnectionRefusedError:
            raise YagnaUnreachable(f"{what}: connection refused at {host}; is `yagna service run` "
                                   "running?") from None
        except (websocket.WebSocketTimeoutException, socket.timeout):
            raise TransportError(f"{what}: no upgrade within {self._connect_timeout:g} s",
                                 request_sent=True) from None
        except (websocket.WebSocketException, OSError) as exc:
            # The text of these never holds the request headers, but keep it short.
            raise TransportError(f"{what}: {type(exc).__name__}: {str(exc)[:200]}",
                                 request_sent=True) from None
        ws.settimeout(None)  # the reader blocks until a call comes; close() wakes it
        return ws

    # -- the reader thread -----------------------------------------------------------

    def _read_loop(self) -> None:
        ws = self._ws
        assert ws is not None
        reason: Optional[str] = None
        try:
            while True:
                opcode, data = ws.recv_data()
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    reason = _close_reason(data)
                    return
                if opcode != websocket.ABNF.OPCODE_BINARY:
                    logger.warning("GSB %s: ignoring a non-binary WebSocket frame", self.on)
                    continue
                reply = self._answer(data)
                if reply is not None:
                    ws.send_binary(reply)
        except (websocket.WebSocketException, OSError) as exc:
            reason = f"connection lost ({type(exc).__name__})"
        except BaseException:  # pragma: no cover - a bug: keep it visible, end the service
            logger.exception("GSB %s: the reader failed", self.on)
            reason = "the reader failed"
        finally:
            if not self._closing.is_set():
                self.failure = reason or "closed"
                logger.warning("GSB %s: the WebSocket ended: %s", self.on, self.failure)
                if self._on_end is not None:
                    self._on_end(self.failure)

    def _answer(self, frame: bytes) -> Optional[bytes]:
        try:
            request_id, component, payload = decode_request(frame)
        except MalformedRequest as exc:
            logger.warning("GSB %s: malformed request: %s", self.on, exc)
            if exc.request_id is None:
                return None
            return encode_error(exc.request_id, "InternalError", f"malformed request: {exc}")
        try:
            result = self._handler(component, payload)
        except GsbReplyError as exc:
            return encode_error(request_id, exc.variant, exc.message)
        except Exception as exc:
            logger.exception("GSB %s: %s failed", self.on, component)
            return encode_error(request_id, "InternalError", f"{component} failed: {type(exc).__name__}")
        reply = encode_reply(request_id, result)
        if len(reply) > MAX_REPLY_FRAME:
            return encode_error(request_id, "InternalError", f"the reply to {component} has "
                                f"{len(reply)} bytes; the daemon takes at most {MAX_REPLY_FRAME}")
        return reply

    # -- closing ---------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """True while the reader thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        """Unbind (the daemon fails pending calls), close the socket, join the reader.
        Idempotent; cleanup failures are logged, not raised."""
        with self._lock:
            if self._closing.is_set():
                return
            self._closing.set()
        self._unbind()
        ws = self._ws
        if ws is not None:
            try:
                ws.send_close(websocket.STATUS_NORMAL, b"released")
            except (websocket.WebSocketException, OSError, ValueError):
                pass
            sock = ws.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # wakes the reader: no close handshake
                except OSError:
                    pass
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self._close_timeout)
            if thread.is_alive():  # pragma: no cover - shutdown() wakes recv on every OS we run
                logger.warning("GSB %s: the reader did not stop within %g s", self.on, self._close_timeout)
        if ws is not None:
            ws.shutdown()

    def _unbind(self) -> None:
        services_id, self._services_id = self._services_id, None
        if services_id is None:
            return
        try:
            self._gsb.unbind_services(services_id)
        except NotFound:
            pass  # already unbound (the daemon restarted, or someone else did it)
        except ApiError as exc:
            logger.warning("GSB %s: unbinding failed: %s", self.on, exc)
