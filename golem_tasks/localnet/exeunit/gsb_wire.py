"""The GSB wire format: a u32 big-endian length, then one protobuf ``Packet``.

The schema is ya-service-bus' ``gsb_api.proto`` (proto3). Only scalar fields occur
(strings, bytes, varint enums and bools), so a fifty-line codec covers it and the
package needs neither ``protobuf`` nor generated code. Payloads inside calls are serde
flexbuffers (see :mod:`._flex`).
"""

from __future__ import annotations

import struct
from typing import Any, Dict, Tuple

#: Packet oneof field number -> message name, and each message's fields:
#: number -> (name, kind) with kind "str", "bytes" or "int" (varint: enums, bools).
PACKETS: Dict[int, Tuple[str, Dict[int, Tuple[str, str]]]] = {
    1: ("hello", {1: ("name", "str"), 2: ("version", "str"), 3: ("instance_id", "bytes")}),
    2: ("register_request", {1: ("service_id", "str")}),
    3: ("register_reply", {1: ("code", "int"), 2: ("message", "str")}),
    4: ("unregister_request", {1: ("service_id", "str")}),
    5: ("unregister_reply", {1: ("code", "int")}),
    6: (
        "call_request",
        {
            1: ("caller", "str"),
            2: ("address", "str"),
            3: ("request_id", "str"),
            4: ("data", "bytes"),
            5: ("no_reply", "int"),
        },
    ),
    7: (
        "call_reply",
        {
            1: ("request_id", "str"),
            2: ("code", "int"),
            3: ("reply_type", "int"),
            4: ("data", "bytes"),
        },
    ),
    8: ("subscribe_request", {1: ("topic", "str")}),
    9: ("subscribe_reply", {1: ("code", "int"), 2: ("message", "str")}),
    10: ("unsubscribe_request", {1: ("topic", "str")}),
    11: ("unsubscribe_reply", {1: ("code", "int")}),
    12: ("broadcast_request", {1: ("caller", "str"), 2: ("data", "bytes"), 3: ("topic", "str")}),
    13: ("broadcast_reply", {1: ("code", "int"), 2: ("message", "str")}),
    14: ("ping", {}),
    15: ("pong", {}),
}
_NUMBERS = {name: number for number, (name, _) in PACKETS.items()}

CALL_REPLY_OK = 0
CALL_REPLY_BAD_REQUEST = 400
SERVICE_FAILURE = 500
FULL = 0
PARTIAL = 1

#: Frames above this are refused: a corrupt length must not make us allocate gigabytes.
MAX_FRAME = 64 * 1024 * 1024


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1  # negative enums are sign-extended to 64 bits in protobuf
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _field(number: int, kind: str, value: Any) -> bytes:
    if kind == "int":
        return _varint(number << 3) + _varint(int(value)) if value else b""
    raw = value.encode() if kind == "str" else bytes(value)
    return _varint(number << 3 | 2) + _varint(len(raw)) + raw if raw else b""


def encode(kind: str, **fields: Any) -> bytes:
    """One framed packet of message ``kind`` (e.g. ``"call_reply"``), ready to send."""
    number = _NUMBERS[kind]
    schema = PACKETS[number][1]
    body = b"".join(
        _field(n, k, fields[name]) for n, (name, k) in sorted(schema.items()) if name in fields
    )
    packet = _varint(number << 3 | 2) + _varint(len(body)) + body
    return struct.pack(">I", len(packet)) + packet


def _fields(data: bytes) -> Dict[int, Any]:
    found: Dict[int, Any] = {}
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            found[number], pos = _read_varint(data, pos)
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            found[number], pos = data[pos : pos + length], pos + length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    return found


def decode(packet: bytes) -> Tuple[str, Dict[str, Any]]:
    """``(kind, fields)`` of one packet body (without its length prefix).

    Missing fields get proto3 defaults ("" / b"" / 0).
    """
    outer = _fields(packet)
    if len(outer) != 1:
        raise ValueError(f"GSB packet with {len(outer)} oneof fields")
    number, body = next(iter(outer.items()))
    if number not in PACKETS:
        raise ValueError(f"unknown GSB packet type {number}")
    kind, schema = PACKETS[number]
    raw = _fields(bytes(body))
    fields: Dict[str, Any] = {}
    for n, (name, k) in schema.items():
        value = raw.get(n)
        if k == "str":
            fields[name] = bytes(value).decode() if value is not None else ""
        elif k == "bytes":
            fields[name] = bytes(value) if value is not None else b""
        else:
            fields[name] = value or 0
    return kind, fields
