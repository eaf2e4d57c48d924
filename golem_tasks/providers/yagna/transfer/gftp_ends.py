"""The two ends of GFTP transfers, answered on a GSB-API reader thread: published data
(``GetMetadata``, ``GetChunk``) and downloads (``UploadChunk``, ``UploadFinished``).

The messages and their errors are described in :mod:`.gftp`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import IO, Any, Callable, List, Mapping, Optional, Tuple, Union

from ....errors import CommandExecutionError
from . import storage as _storage
from .gsb_ws import GsbReplyError

logger = logging.getLogger(__name__)

#: What the exe-unit asks for at a time (``gftp::DEFAULT_CHUNK_SIZE``).
CHUNK_SIZE = 40 * 1024
#: The most content one reply carries: the daemon drops frames above 64 KiB.
MAX_CHUNK = 64 * 1024 - 512

PUBLISH_COMPONENTS = ("GetMetadata", "GetChunk")
RECEIVE_COMPONENTS = ("UploadChunk", "UploadFinished")


class TransferFailed(CommandExecutionError):
    """A download from a provider did not complete: it was incomplete or corrupted,
    over its limit, the connection to the daemon broke, it was released, or it did not
    finish in time. Safe to retry on another provider."""


def _uint(payload: Mapping[str, Any], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise GsbReplyError("InternalError", f"{name} must be an unsigned integer, got {value!r}")
    return value


def _content(chunk: Mapping[str, Any]) -> bytes:
    content = chunk.get("content")
    if isinstance(content, (bytes, bytearray, memoryview)):
        return bytes(content)
    if isinstance(content, list) and all(isinstance(b, int) and 0 <= b < 256 for b in content):
        return bytes(content)  # a serializer that sends Vec<u8> as a vector of ints
    raise GsbReplyError("InternalError", f"chunk content must be bytes, got {type(content).__name__}")


class _Published:
    """Answers GetMetadata/GetChunk for bytes or an open file."""

    def __init__(self, data: Optional[bytes] = None, file: Optional[IO[bytes]] = None) -> None:
        self._data = data
        self._file = file
        self.size = len(data) if data is not None else os.fstat(file.fileno()).st_size  # type: ignore[union-attr]

    def handle(self, component: str, payload: Mapping[str, Any]) -> Any:
        if component == "GetMetadata":
            return {"fileSize": self.size}
        if component == "GetChunk":
            offset, size = _uint(payload, "offset"), _uint(payload, "size")
            if offset > self.size:
                raise GsbReplyError("ReadError", f"offset {offset} is past the end ({self.size} bytes)")
            count = min(size, self.size - offset)
            if count > MAX_CHUNK:
                raise GsbReplyError("InternalError", f"chunks of {size} bytes do not fit in one "
                                    f"GSB-API frame; at most {MAX_CHUNK}")
            if self._data is not None:
                content = self._data[offset:offset + count]
            else:
                assert self._file is not None
                self._file.seek(offset)
                content = self._file.read(count)
                if len(content) != count:
                    raise GsbReplyError("ReadError", f"the file shrank: {len(content)} of {count} "
                                        f"bytes at offset {offset}")
            return {"offset": offset, "content": content}
        raise GsbReplyError("InternalError", f"{component} is not served for published data")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _gaps(ranges: List[Tuple[int, int]]) -> Tuple[int, List[Tuple[int, int]]]:
    """``(end, holes)`` of the union of ``[start, end)`` ranges, from 0."""
    end, holes = 0, []
    for start, stop in sorted(ranges):
        if start > end:
            holes.append((end, start))
        end = max(end, stop)
    return end, holes


class GftpUpload(_storage.Upload):
    """Data published under :attr:`url` (``gftp://<node>/<id>``) until :meth:`close`.

    Attributes:
        url: what the exe-unit pulls.
        size: how many bytes it gets.
    """

    def __init__(self, url: str, size: int, release: Callable[[str], None]) -> None:
        self.url = url
        self.size = size
        self._release = release

    def __repr__(self) -> str:
        return f"GftpUpload({self.url!r}, {self.size} bytes)"

    def close(self) -> None:
        self._release(self.url)


class GftpDownload(_storage.Download):
    """Data a provider uploads to :attr:`url`, into memory or into a file.

    The exe-unit sends ``UploadFinished`` and waits for its answer before its
    ``transfer`` command succeeds, so once the command's result is ``Ok``,
    :meth:`result` returns at once.

    Attributes:
        url: the ``gftp://`` URL to give the provider as the transfer's ``to``.
        path: the destination file, or None for a download into memory.
    """

    def __init__(self, url: str, path: Optional[Path], limit: Optional[int],
                 release: Callable[[str], None] = lambda url: None) -> None:
        self.url = url
        self.path = path
        self._limit = limit
        self._release = release
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self._error: Optional[str] = None
        self._ranges: List[Tuple[int, int]] = []
        self._buffer = bytearray()
        self._part: Optional[Path] = None
        self._file: Optional[IO[bytes]] = None
        self._data: Optional[bytes] = None
        self._digest = ""
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._part = path.with_name(f".{path.name}.{url.rsplit('/', 1)[-1][:12]}.part")
            self._file = open(self._part, "w+b")  # noqa: SIM115 - closed by _finish/_discard

    def __repr__(self) -> str:
        state = "done" if self.done else "failed" if self._error else "pending"
        return f"GftpDownload({self.url!r}, {str(self.path) if self.path else 'memory'}, {state})"

    @property
    def done(self) -> bool:
        """True once the whole content arrived and was checked."""
        return self._finished.is_set() and self._error is None

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until the provider finished (or failed) the upload; False on timeout."""
        return self._finished.wait(timeout)

    def close(self) -> None:
        """Stop receiving; a partial file is removed. Idempotent."""
        self._release(self.url)

    def result(self, timeout: Optional[float] = 0.0) -> Union[bytes, Path]:
        """The received bytes, or the destination path, waiting at most ``timeout``
        seconds (None: no limit) for the upload to finish.

        Raises:
            TransferFailed: not finished within ``timeout`` seconds, or failed.
        """
        if not self._finished.wait(timeout):
            raise TransferFailed(f"the upload to {self.url} did not finish"
                                 + (f" within {timeout:g} s" if timeout else ""))
        if self._error is not None:
            raise TransferFailed(f"the upload to {self.url} failed: {self._error}")
        if self.path is not None:
            return self.path
        assert self._data is not None
        return self._data

    # -- the reader thread -----------------------------------------------------------

    def handle(self, component: str, payload: Mapping[str, Any]) -> Any:
        if component == "UploadChunk":
            chunk = payload.get("chunk")
            if not isinstance(chunk, dict):
                raise GsbReplyError("InternalError", "UploadChunk without a chunk")
            self._write(_uint(chunk, "offset"), _content(chunk))
            return None
        if component == "UploadFinished":
            expected = payload.get("hash")
            if expected is not None and not isinstance(expected, str):
                raise GsbReplyError("InternalError", f"hash must be a string, got {expected!r}")
            self._finish(expected)
            return None
        raise GsbReplyError("InternalError", f"{component} is not served for a download")

    def _write(self, offset: int, content: bytes) -> None:
        end = offset + len(content)
        with self._lock:
            self._check_writable()
            if self._finished.is_set():
                return  # a repeated transfer (the exe-unit retried a lost reply): see _finish
            if self._limit is not None and end > self._limit:
                self._fail(f"more than the limit of {self._limit} bytes")
                raise GsbReplyError("WriteError", f"the upload exceeds its limit of {self._limit} bytes")
            try:
                if self._file is not None:
                    self._file.seek(offset)
                    self._file.write(content)
                else:
                    if end > len(self._buffer):
                        self._buffer.extend(bytes(end - len(self._buffer)))
                    self._buffer[offset:end] = content
            except OSError as exc:
                self._fail(f"cannot write {self._part}: {exc.strerror}")
                raise GsbReplyError("WriteError", f"cannot write at offset {offset}: {exc.strerror}") from exc
            self._ranges.append((offset, end))

    def _finish(self, expected: Optional[str]) -> None:
        with self._lock:
            self._check_writable()
            if self._finished.is_set():
                if expected is not None and expected.lower() != self._digest:
                    raise GsbReplyError("IntegrityError")
                return
            end, holes = _gaps(self._ranges)
            if holes:
                missing = ", ".join(f"{a}-{b}" for a, b in holes[:5])
                self._fail(f"incomplete: bytes {missing} never arrived")
                raise GsbReplyError("IntegrityError")
            digest = hashlib.sha3_256()
            if self._file is not None:
                self._file.flush()
                self._file.seek(0)
                for block in iter(lambda: self._file.read(1 << 20), b""):  # type: ignore[union-attr]
                    digest.update(block)
            else:
                digest.update(self._buffer)
            if expected is not None and digest.hexdigest() != expected.lower():
                self._fail(f"corrupted: sha3-256 {digest.hexdigest()}, the provider sent {expected}")
                raise GsbReplyError("IntegrityError")
            self._digest = digest.hexdigest()
            try:
                self._complete(end)
            except OSError as exc:
                self._fail(f"cannot move {self._part} to {self.path}: {exc.strerror}")
                raise GsbReplyError("WriteError", f"cannot store the file: {exc.strerror}") from exc
            self._finished.set()
            logger.debug("received %d bytes at %s", end, self.url)

    def _check_writable(self) -> None:
        # Failures are final: the exe-unit does not retry after a gftp error, only after
        # GSB ones (timeouts, a closed socket), which never reach this point.
        if self._error is not None:
            raise GsbReplyError("WriteError", f"the upload already failed: {self._error}")

    def _complete(self, end: int) -> None:
        if self._file is not None:
            assert self._part is not None and self.path is not None
            self._file.truncate(end)
            self._file.close()
            self._file = None
            os.replace(self._part, self.path)
        else:
            self._data = bytes(self._buffer)
            self._buffer = bytearray()

    def _fail(self, reason: str) -> None:
        self._error = reason
        self._finished.set()
        logger.warning("the upload to %s failed: %s", self.url, reason)

    def _discard(self, reason: str) -> None:
        """Called when the transfer ends: drop a partial file, fail waiters."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
                if self._part is not None:
                    try:
                        os.unlink(self._part)
                    except OSError:
                        pass
            if not self._finished.is_set():
                self._error = reason
                self._finished.set()
