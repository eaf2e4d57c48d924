"""ExeScript ``capture`` modes, applied to a finished program's output, and to its live
chunks for ``stream`` (runtime events sent while the program runs).

Mirrors yagna's ``exe-unit/src/output.rs``: no capture means the output is discarded
(``null``); ``atEnd`` keeps all of it, or its ``head``/``tail``/``headTail`` bytes;
``stream`` also sends it as runtime events; empty output is ``null``; format ``str``
gives a string (``null`` if it is not UTF-8), ``bin`` a list of byte values (serde's
``Vec<u8>``).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

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


class LiveOutput:
    """``on_output`` of a ``run`` whose capture streams: each chunk becomes a runtime
    event ``emit(stream, value)`` at once, in the capture's format, up to its ``limit``
    bytes in all (as yagna's exe-unit does for ``{"stream": {...}}``)."""

    def __init__(self, capture: Optional[Dict[str, Any]], emit: Callable[[str, Any], None]) -> None:
        self._emit = emit
        self._modes: Dict[str, Dict[str, Any]] = {}
        for name in ("stdout", "stderr"):
            found = mode(capture, name)
            if found is not None and found[0] == "stream":
                self._modes[name] = found[1]
        self._left = {name: body.get("limit") for name, body in self._modes.items()}

    @property
    def wanted(self) -> bool:
        return bool(self._modes)

    def __call__(self, stream: str, text: str) -> None:
        body = self._modes.get(stream)
        if body is None:
            return
        data, left = text.encode("utf-8"), self._left[stream]
        if left is not None:
            data = data[: int(left)]
            self._left[stream] = int(left) - len(data)
        if not data:
            return
        if _FORMATS.get(str(body.get("format", "str")), "str") == "bin":
            self._emit(stream, list(data))
        else:
            self._emit(stream, data.decode("utf-8", errors="replace"))
