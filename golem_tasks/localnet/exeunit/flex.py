"""serde-flexbuffers payloads of GSB calls, via the ``flatbuffers`` package's flexbuffers.

Rust structs travel as maps keyed by field name, enums as ``{"Variant": value}`` maps
(unit variants as plain strings), ``Option::None`` as null: plain Python dicts, lists,
strings and numbers map onto them directly. Senders may deflate payloads (zlib; yagna
does so on hybrid net); like ya-service-bus, try to inflate and fall back to raw.
"""

from __future__ import annotations

import zlib
from typing import Any

try:
    from flatbuffers import flexbuffers
except ImportError:  # pragma: no cover - reported when the exe-unit starts
    flexbuffers = None


def require() -> None:
    """Raise ImportError with the fix when ``flatbuffers`` is missing."""
    if flexbuffers is None:
        raise ImportError(
            "the local exe-unit needs flatbuffers: pip install 'golem_tasks[localnet]'"
        )


def dumps(value: Any) -> bytes:
    require()
    return bytes(flexbuffers.Dumps(value))


def loads(data: bytes) -> Any:
    require()
    try:
        data = zlib.decompress(data)
    except zlib.error:
        pass
    return flexbuffers.Loads(bytearray(data))
