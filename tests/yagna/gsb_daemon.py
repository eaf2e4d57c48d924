"""A fake yagna daemon for the GSB API: REST binding plus the services' WebSockets,
on 127.0.0.1, playing the daemon's side as yagna 0.17.6 does (``core/gsb-api``).

* ``GET /me``; ``POST /gsb-api/v1/services`` (201, ``servicesId`` = URL-safe base64 of
  the prefix, 400 for a duplicate); ``DELETE /gsb-api/v1/services/<id>`` (200 ``null``,
  404 unknown) fails pending calls and sends a close frame "Unbinding service: ...".
* ``GET /gsb-api/v1/services/<id>`` upgrades to a WebSocket with subprotocol
  ``gsb+flexbuffers`` (401 without the app key, 404 unknown); a second socket replaces
  the first (closed with 1008). Calls made while no socket is open are buffered.
* :meth:`FakeGsbDaemon.call` is what a provider's exe-unit does: it sends ``{"id",
  "component", "payload"}`` (unsigned ints as UInt, bytes as Blob, as serde does) and
  returns the reply as the daemon hands it over: ``{"Ok": payload}`` or ``{"Err":
  error}``. A reply without ``id``, or with neither ``payload`` nor a non-empty
  ``error``, closes the socket (1008); a frame over 65,536 bytes closes it (1009, the
  daemon says "payload reached size limit"); a text frame closes it (1003). The
  daemon never answers a close frame the client sends first.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from flatbuffers import flexbuffers

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_FRAME = 65536


class CallFailed(Exception):
    """The call failed at the GSB level (as a ``GsbError`` reaches the exe-unit)."""


def encode_request(request_id: str, component: str, payload: Any) -> bytes:
    """A request frame encoded the way the daemon's flexbuffers builder does."""
    builder = flexbuffers.Builder()

    def put(value: Any) -> None:
        if value is None:
            builder.Null()
        elif isinstance(value, bool):
            builder.Bool(value)
        elif isinstance(value, int):
            builder.UInt(value) if value >= 0 else builder.Int(value)
        elif isinstance(value, (bytes, bytearray)):
            builder.Blob(bytes(value))
        elif isinstance(value, str):
            builder.String(value)
        elif isinstance(value, dict):
            with builder.Map():
                for key in sorted(value):
                    builder.Key(key)
                    put(value[key])
        else:
            raise TypeError(type(value))

    put({"id": request_id, "component": component, "payload": payload or {}})
    return bytes(builder.Finish())


def read_frame(rfile: Any) -> Tuple[int, bytes]:
    """One client frame (masked, unfragmented): ``(opcode, payload)``."""
    head = rfile.read(2)
    if len(head) < 2:
        raise EOFError
    opcode, length = head[0] & 0x0F, head[1] & 0x7F
    if length == 126:
        (length,) = struct.unpack(">H", rfile.read(2))
    elif length == 127:
        (length,) = struct.unpack(">Q", rfile.read(8))
    mask = rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
    data = rfile.read(length)
    if len(data) < length:
        raise EOFError
    key = (mask * (length // 4 + 1))[:length]
    unmasked = (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")
    return opcode, unmasked


def frame(opcode: int, payload: bytes) -> bytes:
    """One server frame (unmasked, FIN)."""
    n = len(payload)
    if n < 126:
        head = struct.pack(">BB", 0x80 | opcode, n)
    elif n < 1 << 16:
        head = struct.pack(">BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack(">BBQ", 0x80 | opcode, 127, n)
    return head + payload


class _Call:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: Optional[str] = None

    def fail(self, message: str) -> None:
        self.error = message
        self.done.set()


class _Socket:
    def __init__(self, sock: socket.socket, wfile: Any) -> None:
        self.sock = sock
        self.wfile = wfile
        self.lock = threading.Lock()
        self.open = True

    def send(self, opcode: int, payload: bytes) -> None:
        with self.lock:
            if self.open:
                self.wfile.write(frame(opcode, payload))

    def close(self, code: int, reason: str) -> None:
        self.send(0x8, struct.pack(">H", code) + reason.encode())
        self.open = False


class _Service:
    def __init__(self, on: str, components: List[str]) -> None:
        self.on = on
        self.components = components
        self.ws: Optional[_Socket] = None
        self.buffered: List[bytes] = []
        self.pending: Dict[str, _Call] = {}

    def fail_all(self, message: str) -> None:
        for call in self.pending.values():
            call.fail(message)
        self.pending.clear()


class FakeGsbDaemon:
    """Start with ``with FakeGsbDaemon(key, node) as daemon:``; ``daemon.url`` is the
    REST base. ``rest`` records ``(method, path, status)``; ``upgrades`` records each
    upgrade request's ``(path, headers)``; ``client_frames`` counts frames received."""

    def __init__(self, app_key: str, node_id: str) -> None:
        self.app_key = app_key
        self.node_id = node_id
        self.lock = threading.Lock()
        self.services: Dict[str, _Service] = {}
        self.rest: List[Tuple[str, str, int]] = []
        self.upgrades: List[Tuple[str, Dict[str, str]]] = []
        self.sockets: List[_Socket] = []
        self.client_frames = 0
        self.closes_received: List[bytes] = []
        #: False plays what yagna 0.17.6 did when unbinding right after the upgrade:
        #: no close frame (the socket was not relaying yet), so only the client ends it.
        self.close_on_unbind = True
        daemon = self

        class Handler(_Handler):
            fake = daemon

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = False  # server_close() joins the handler threads
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                        name="fake-gsb-daemon")

    def __enter__(self) -> "FakeGsbDaemon":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self.lock:
            sockets = list(self.sockets)
        for ws in sockets:
            try:
                ws.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()

    # -- what tests look at --------------------------------------------------------

    @staticmethod
    def services_id(on: str) -> str:
        return base64.urlsafe_b64encode(on.encode()).decode().rstrip("=")

    def bound(self) -> List[str]:
        with self.lock:
            return sorted(service.on for service in self.services.values())

    def connected(self, on: str) -> bool:
        with self.lock:
            service = self.services.get(self.services_id(on))
            return service is not None and service.ws is not None

    def drop(self, on: str, code: int = 1011, reason: str = "going away") -> None:
        """Close the socket of ``on`` from the daemon's side (a daemon in trouble)."""
        with self.lock:
            service = self.services[self.services_id(on)]
            ws = service.ws
        assert ws is not None, f"{on} has no socket"
        self._drop(service, ws, code, reason)

    # -- the exe-unit's side -------------------------------------------------------

    def call(self, target: str, component: str, payload: Any = None, timeout: float = 5.0) -> Any:
        """Call ``component`` of ``target`` (a ``gftp://`` URL or a GSB prefix)."""
        on = f"/public/gftp/{target.rsplit('/', 1)[-1]}" if target.startswith("gftp://") else target
        return self.call_raw(on, component, lambda rid: encode_request(rid, component, payload), timeout)

    def call_raw(self, on: str, component: str, build: Any, timeout: float = 5.0) -> Any:
        request_id = str(uuid.uuid4())
        call = _Call()
        with self.lock:
            service = self.services.get(self.services_id(on))
            if service is None:
                raise CallFailed(f"{on}/{component}: endpoint address not found")
            if component not in service.components:
                raise CallFailed(f"Bad request: No supported msg type for addr: {on}/{component}")
            service.pending[request_id] = call
            data = build(request_id)
            ws = service.ws
            if ws is None:
                service.buffered.append(data)
        if ws is not None:
            ws.send(0x2, data)  # outside the lock: the client may be slow to read
        if not call.done.wait(timeout):
            with self.lock:
                service.pending.pop(request_id, None)
            raise CallFailed(f"{on}/{component}: no reply within {timeout} s")
        if call.error is not None:
            raise CallFailed(call.error)
        return call.result

    # -- the daemon's side ---------------------------------------------------------

    def _reply(self, service: _Service, ws: _Socket, data: bytes) -> None:
        try:
            message = flexbuffers.Loads(bytearray(data))
        except Exception:
            message = None
        if not isinstance(message, dict) or not message:
            return self._drop(service, ws, 1008, "Failed to read response. Err: Missing root map.")
        request_id = message.get("id")
        if not isinstance(request_id, str):
            return self._drop(service, ws, 1008, "Failed to read response. Err: Missing response id.")
        error = message.get("error")
        if error not in (None, {}, ""):
            result = {"Err": error}
        elif "payload" in message:
            result = {"Ok": message["payload"]}
        else:
            return self._drop(service, ws, 1008, "Missing 'payload' and 'error' fields.")
        with self.lock:
            call = service.pending.pop(request_id, None)
        if call is not None:  # the daemon ignores replies to unknown ids
            call.result = result
            call.done.set()

    def _drop(self, service: _Service, ws: _Socket, code: int, reason: str) -> None:
        with self.lock:
            if service.ws is ws:
                service.ws = None
            service.fail_all(f"Called service `{reason}` is unavailable")
        ws.close(code, reason)

    def serve_socket(self, service: _Service, ws: _Socket, rfile: Any, upgrade: bytes) -> None:
        with self.lock:  # attached before the client sees the upgrade: tests may look at once
            old, service.ws = service.ws, ws
            self.sockets.append(ws)
            buffered, service.buffered = service.buffered, []
            with ws.lock:
                ws.wfile.write(upgrade)
        if old is not None:
            old.close(1008, "Closing old WS connection in favour of new WS connection")
        for data in buffered:
            ws.send(0x2, data)
        while True:
            try:
                opcode, data = read_frame(rfile)
            except (EOFError, OSError, struct.error):
                break
            with self.lock:
                self.client_frames += 1
            if opcode == 0x2:
                if len(data) > MAX_FRAME:
                    self._drop(service, ws, 1009, "ProtocolError: payload reached size limit")
                else:
                    self._reply(service, ws, data)
            elif opcode == 0x1:
                self._drop(service, ws, 1003, "Text msg unsupported.")
            elif opcode == 0x8:  # like yagna: stop relaying, answer nothing
                with self.lock:
                    self.closes_received.append(data)
                    if service.ws is ws:
                        service.ws = None
                    service.fail_all("Called service `Normal` is unavailable")
            elif opcode == 0x9:
                ws.send(0xA, data)
        with self.lock:
            if service.ws is ws:
                service.ws = None
            ws.open = False


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGsbDaemon
    PREFIX = "/gsb-api/v1/services"

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any = None, headers: Optional[Dict[str, str]] = None) -> None:
        data = json.dumps(body).encode()
        with self.fake.lock:  # recorded before the client can see the answer
            self.fake.rest.append((self.command, urlsplit(self.path).path, status))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        query = parse_qs(urlsplit(self.path).query)
        key = self.headers.get("Authorization", "").partition("Bearer ")[2] or \
            (query.get("authToken") or [""])[0]
        return key == self.fake.app_key

    def _service_id(self) -> str:
        return urlsplit(self.path).path[len(self.PREFIX) + 1:]

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if not self._authorized():
            return self._answer(401, {"message": "Invalid application key"})
        path = urlsplit(self.path).path
        if path == "/me":
            return self._answer(200, {"identity": self.fake.node_id, "name": "requestor", "role": "manager"})
        if not path.startswith(self.PREFIX + "/"):
            return self._answer(404, {"message": "not found"})
        with self.fake.lock:
            self.fake.upgrades.append((self.path, dict(self.headers.items())))
            service = self.fake.services.get(self._service_id())
        if service is None:
            return self._answer(404, {"message": f"Service prefix not found: {self._service_id()}"})
        if self.headers.get("Upgrade", "").lower() != "websocket":
            return self._answer(400, {"message": "not a WebSocket upgrade"})
        accept = base64.b64encode(hashlib.sha1((self.headers["Sec-WebSocket-Key"] + GUID).encode())
                                  .digest()).decode()
        upgrade = (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: gsb+flexbuffers\r\n\r\n"
        ).encode()
        self.close_connection = True
        self.fake.serve_socket(service, _Socket(self.connection, self.wfile), self.rfile, upgrade)

    def do_POST(self) -> None:  # noqa: N802
        if not self._authorized():
            return self._answer(401, {"message": "Invalid application key"})
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        on, components = body["listen"]["on"], body["listen"]["components"]
        sid = self.fake.services_id(on)
        with self.fake.lock:
            if sid in self.fake.services:
                duplicate = True
            else:
                duplicate = False
                self.fake.services[sid] = _Service(on, list(components))
        if duplicate:
            return self._answer(400, {"message": f"Service {on} already bound"})
        self._answer(201, {"listen": {"on": on, "components": components}, "servicesId": sid},
                     {"Location": f"/{sid}"})

    def do_DELETE(self) -> None:  # noqa: N802
        if not self._authorized():
            return self._answer(401, {"message": "Invalid application key"})
        with self.fake.lock:
            service = self.fake.services.pop(self._service_id(), None)
        if service is None:
            return self._answer(404, {"message": "Service prefix not found"})
        with self.fake.lock:
            service.fail_all("Called service `Normal: Unbinding service` is unavailable")
            ws = service.ws
        if ws is not None and self.fake.close_on_unbind:
            ws.close(1000, f"Unbinding service: {service.on}")
        self._answer(200, None)
