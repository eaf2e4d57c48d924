"""Data and exe-unit moves shared by the GsbGftpStorage tests (test_gftp*.py)."""

from __future__ import annotations

import hashlib
import random
import threading
from concurrent.futures import ThreadPoolExecutor

CHUNK = 40 * 1024
OK = {"Ok": None}


def data_of(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def sha3(data: bytes) -> str:
    return hashlib.sha3_256(data).hexdigest()


def fetch(daemon, url, concurrency=8):
    """Download as the exe-unit does: GetMetadata, then GetChunk i*40 KiB, 8 in flight."""
    size = daemon.call(url, "GetMetadata")["Ok"]["fileSize"]
    offsets = range(0, size, CHUNK)
    with ThreadPoolExecutor(concurrency) as pool:
        replies = list(pool.map(lambda o: daemon.call(url, "GetChunk", {"offset": o, "size": CHUNK}),
                                offsets))
    out = bytearray()
    for offset, reply in zip(offsets, replies):
        assert reply["Ok"]["offset"] == offset
        assert isinstance(reply["Ok"]["content"], bytearray)  # a Blob, as serde_bytes needs
        out += reply["Ok"]["content"]
    return bytes(out)


def push(daemon, url, data, *, seed=1, concurrency=8, digest="sha3"):
    """Upload as the exe-unit does, chunks shuffled; returns the UploadFinished reply."""
    chunks = [(o, data[o:o + CHUNK]) for o in range(0, len(data), CHUNK)]
    random.Random(seed).shuffle(chunks)
    send = lambda c: daemon.call(url, "UploadChunk", {"chunk": {"offset": c[0], "content": c[1]}})  # noqa: E731
    if concurrency == 1:
        replies = [send(c) for c in chunks]
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            replies = list(pool.map(send, chunks))
    assert replies == [OK] * len(chunks)
    return daemon.call(url, "UploadFinished", {"hash": sha3(data) if digest == "sha3" else digest})


def gftp_threads():
    return [t for t in threading.enumerate() if t.name.startswith("gsb-ws")]
