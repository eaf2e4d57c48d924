"""ExeScript ``capture`` modes, applied to a finished program's output.

Mirrors yagna's ``exe-unit/src/output.rs``: no capture means the output is discarded
(``null``); ``atEnd`` keeps all of it, or its ``head``/``tail``/``headTail`` bytes;
``stream`` also sends it as runtime events; empty output is ``null``; format ``str``
gives a string (``null`` if it is not UTF-8), ``bin`` a list of byte values (serde's
``Vec<u8>``).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

_FORMATS = {"str": "str", "string": "str", "bin": "bin", "binary": "bin"}


def mode(capture: Optional[Dict[str, Any]], stream: str) -> Optional[Tuple[str, Dict[str, Any]]]:
    """``("atEnd" | "stream", body)`` for ``stream`` ("stdout"/"stderr"), or None to discard."""
    spec = (capture or {}).get(stream)
    if not spec:
        return None
    kind = next(iter(spec))
    return kind, dict(spec[kind] or {})


def streams(capture: Optional[Dict[str, Any]], stream: str) -> bool:
    found = mode(capture, stream)
    return found is not None and found[0] == "stream"


def _cut(data: bytes, body: Dict[str, Any], kind: str) -> bytes:
    if kind == "stream":
        limit = body.get("limit")
        return data if limit is None else data[: int(limit)]
    if "head" in body:
        return data[: int(body["head"])]
    if "tail" in body:
        size = int(body["tail"])
        return data[-size:] if size else b""
    if "headTail" in body:
        size = int(body["headTail"])
        head = (size + 1) // 2
        tail = size - head
        return data if len(data) <= size else data[:head] + (data[-tail:] if tail else b"")
    return data


def render(data: bytes, capture: Optional[Dict[str, Any]], stream: str) -> Any:
    """The ``stdout``/``stderr`` value of a result for ``data`` under ``capture``."""
    found = mode(capture, stream)
    if found is None:
        return None
    kind, body = found
    kept = _cut(data, body, kind)
    if not kept:
        return None
    if _FORMATS.get(str(body.get("format", "str")), "str") == "bin":
        return list(kept)
    try:
        return kept.decode("utf-8")
    except UnicodeDecodeError:
        return None
