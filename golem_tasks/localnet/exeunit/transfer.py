"""ExeScript ``transfer`` URLs, as yagna's exe-unit understands them.

Supported: ``container:/path`` (or a bare absolute path), ``http(s)://`` (download with
GET, upload with PUT), and ``gftp://<node>/<id>`` (chunks pulled from / pushed to a
GFTP service on the requestor's node through GSB, 40 KiB at a time, the upload
finished with its sha3-256). Any URL may carry a ``hash:sha3:<hex>:`` prefix, checked
after a download. Archive options (``format``, ``fileset``) are not supported.

Every transfer goes through a local temporary file: ``fetch`` brings a source there,
``push`` sends it to a destination; container paths are copied by the sandbox session.
"""

from __future__ import annotations

import hashlib
import os
from typing import Callable, Optional, Tuple

import requests

from .gsb import GsbClient, GsbError

#: yagna's GFTP chunk size (core/gftp/src/gftp.rs, DEFAULT_CHUNK_SIZE). Chunks go one at a
#: time, where yagna's client keeps 12 GetChunk (3 UploadChunk) calls in flight: through
#: the daemon on loopback that was slower (docs/benchmarks.md, "GFTP transfers on localnet").
CHUNK = 40 * 1024

#: sha3 variants by hex digest length, as yagna's ``hash:sha3:`` prefix allows.
_SHA3 = {56: hashlib.sha3_224, 64: hashlib.sha3_256, 96: hashlib.sha3_384, 128: hashlib.sha3_512}


class TransferError(Exception):
    """A transfer failed; the message is reported as ``Transfer error: <message>``."""


def split_hash(url: str) -> Tuple[Optional[str], str]:
    """``("<hex>", url)`` for ``hash:sha3:<hex>:<url>``, ``(None, url)`` otherwise."""
    if url.startswith("hash:"):
        parts = url.split(":", 3)
        if len(parts) != 4 or parts[1] not in ("sha3", "sha3-256") or len(parts[2]) not in _SHA3:
            raise TransferError(f"unsupported hash prefix in {url!r}")
        return parts[2].lower(), parts[3]
    return None, url


def container_path(url: str) -> Optional[str]:
    """The path inside the sandbox for ``container:`` URLs and bare paths, else None."""
    if url.startswith("container:"):
        return url[len("container:") :]
    if url.startswith("/"):
        return url
    return None


class Transfers:
    """Moves bytes between local files and remote URLs for one exe-unit.

    Args:
        bus: the exe-unit's GSB connection (for ``gftp://``).
    """

    def __init__(self, bus: GsbClient) -> None:
        self.bus = bus
        self._http = requests.Session()

    def close(self) -> None:
        self._http.close()

    def fetch(self, url: str, target: str) -> None:
        """Download ``url`` (not a container path) into the local file ``target``."""
        expected, bare = split_hash(url)
        if bare.startswith(("http://", "https://")):
            self._http_get(bare, target)
        elif bare.startswith("gftp://"):
            self._gftp_get(bare, target)
        else:
            raise TransferError(f"unsupported source URL {url!r}")
        if expected is not None:
            digest = _digest(target, _SHA3[len(expected)])
            if digest != expected:
                raise TransferError(f"hash mismatch for {bare}: expected {expected}, got {digest}")

    def push(self, source: str, url: str) -> None:
        """Upload the local file ``source`` to ``url`` (not a container path)."""
        _, bare = split_hash(url)
        if bare.startswith(("http://", "https://")):
            with open(source, "rb") as data:
                response = self._http.put(bare, data=data, timeout=300)
            if not response.ok:
                raise TransferError(f"PUT {bare}: HTTP {response.status_code}")
        elif bare.startswith("gftp://"):
            self._gftp_put(source, bare)
        else:
            raise TransferError(f"unsupported destination URL {url!r}")

    # -- http -------------------------------------------------------------------------

    def _http_get(self, url: str, target: str) -> None:
        try:
            with self._http.get(url, stream=True, timeout=300) as response:
                if not response.ok:
                    raise TransferError(f"GET {url}: HTTP {response.status_code}")
                with open(target, "wb") as out:
                    for chunk in response.iter_content(CHUNK):
                        out.write(chunk)
        except requests.RequestException as exc:
            raise TransferError(f"GET {url}: {exc}") from exc

    # -- gftp -------------------------------------------------------------------------

    def _gftp_address(self, url: str) -> str:
        node, _, file_id = url[len("gftp://") :].partition("/")
        if not node or not file_id:
            raise TransferError(f"malformed GFTP URL {url!r}")
        # /transfer/net/... is yagna's transfer route: no 40 ms stall between call kinds.
        return f"/transfer/net/{node.lower()}/gftp/{file_id}"

    def _gftp_call(self, address: str, payload: object) -> object:
        try:
            reply = self.bus.call(address, payload, timeout=60)
        except GsbError as exc:
            raise TransferError(f"{address}: {exc}") from exc
        if isinstance(reply, dict) and "Err" in reply:
            raise TransferError(f"{address}: {reply['Err']}")
        return reply.get("Ok") if isinstance(reply, dict) else reply

    def _gftp_get(self, url: str, target: str) -> None:
        address = self._gftp_address(url)
        meta = self._gftp_call(f"{address}/GetMetadata", None)
        size = int(meta["fileSize"]) if isinstance(meta, dict) else 0
        with open(target, "wb") as out:
            for offset in range(0, size, CHUNK):
                chunk = self._gftp_call(f"{address}/GetChunk", {"offset": offset, "size": CHUNK})
                content = bytes(chunk["content"]) if isinstance(chunk, dict) else b""
                out.seek(offset)
                out.write(content)

    def _gftp_put(self, source: str, url: str) -> None:
        address = self._gftp_address(url)
        digest = hashlib.sha3_256()
        offset = 0
        with open(source, "rb") as data:
            for content in iter(lambda: data.read(CHUNK), b""):
                digest.update(content)
                self._gftp_call(
                    f"{address}/UploadChunk", {"chunk": {"offset": offset, "content": content}}
                )
                offset += len(content)
        self._gftp_call(f"{address}/UploadFinished", {"hash": digest.hexdigest()})


def _digest(path: str, algorithm: Callable[[], "hashlib._Hash"]) -> str:
    hasher = algorithm()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def temp_path(directory: str, name: str) -> str:
    """A path for an intermediate file of one transfer."""
    os.makedirs(directory, exist_ok=True)
    return os.path.join(directory, name)
