"""A server-sent-events parser (https://html.spec.whatwg.org/#event-stream-interpretation).

Yagna streams batch output as ``event: runtime`` / ``data: <json>`` / ``id: <n>``
frames separated by blank lines, with ``:ping`` comment lines in between.
"""

from __future__ import annotations

import codecs
from typing import Iterable, Iterator, List, Optional

import attrs


@attrs.frozen
class SseMessage:
    """One dispatched event: its type (``message`` when the frame named none), its
    data (multi-line data joined with ``\\n``) and its id."""

    event: str
    data: str
    id: Optional[str] = None


def iter_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Split a byte stream into lines at ``\\r\\n``, ``\\n`` or ``\\r``, decoding UTF-8
    across chunk borders (a ``\\r`` at the end of a chunk may pair with a ``\\n``
    starting the next one: that is one line end, not two)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    after_cr = False
    for chunk in chunks:
        text = decoder.decode(chunk)
        if not text:
            continue
        if after_cr and text.startswith("\n"):
            text = text[1:]
        after_cr = False
        pending += text
        while True:
            cut = _line_end(pending)
            if cut is None:
                break
            line, end = cut
            if pending[end - 1] == "\r" and end == len(pending):
                after_cr = True
            yield line
            pending = pending[end:]
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def _line_end(text: str) -> Optional[tuple]:
    for index, char in enumerate(text):
        if char == "\n":
            return text[:index], index + 1
        if char == "\r":
            if index + 1 < len(text) and text[index + 1] == "\n":
                return text[:index], index + 2
            return text[:index], index + 1
    return None


def iter_messages(lines: Iterable[str]) -> Iterator[SseMessage]:
    """Turn lines into dispatched :class:`SseMessage` objects. Comments (``:ping``)
    and unknown fields are skipped; a frame without ``data`` is not dispatched."""
    event = ""
    data: List[str] = []
    last_id: Optional[str] = None
    for line in lines:
        if not line:
            if data:
                yield SseMessage(event or "message", "\n".join(data), last_id)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            last_id = value
    # A frame cut off by the end of the stream is dropped, as the standard says.
