"""GFTP without the ``gftp`` binary: files and bytes moved through the daemon's GSB API.

A provider's exe-unit moves data with GFTP calls to the requestor's node
(``/transfer/net/<requestor>/gftp/<id>/<Message>``), which yagna routes to the GSB
address ``/public/gftp/<id>``. :class:`GsbGftpStorage` binds that address through
``POST /gsb-api/v1/services`` and answers the calls on a WebSocket (:mod:`.gsb_ws`),
as golem-js does in browsers. The messages are yagna's ``ya_core_model::gftp``
(``core/model/src/gftp.rs``), serde field names in camelCase:

* published data (the exe-unit downloads it):
  ``GetMetadata {}`` -> ``{"fileSize": u64}``;
  ``GetChunk {"offset": u64, "size": u64}`` -> ``{"offset": u64, "content": bytes}``,
  shorter at the end of the data, an error past it. The exe-unit asks 40 KiB chunks,
  8 at a time.
* received data (the exe-unit uploads it):
  ``UploadChunk {"chunk": {"offset": u64, "content": bytes}}`` -> ``()``; chunks come
  8 at a time, so in any order: each is written at its offset.
  ``UploadFinished {"hash": str | null}`` -> ``()``, once every chunk was answered; the
  hash is the lowercase hex sha3-256 of the whole content, checked here.
* errors: ``gftp::Error`` variants ``{"ReadError": str}``, ``{"WriteError": str}``,
  ``"IntegrityError"``, ``{"InternalError": str}``. A gftp error fails the exe-unit's
  transfer for good; it retries a whole transfer only after GSB-level errors.

The URL handed to the provider is ``gftp://<requestor node id>/<id>`` with a fresh
random ``id`` per transfer. Every transfer has its own binding, WebSocket and reader
thread; :meth:`GsbGftpStorage.release` (or :meth:`~GsbGftpStorage.close`) ends them.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Union

from ....errors import ProviderError
from . import storage as _storage
from .gftp_ends import (
    CHUNK_SIZE,
    MAX_CHUNK,
    PUBLISH_COMPONENTS,
    RECEIVE_COMPONENTS,
    GftpDownload,
    GftpUpload,
    TransferFailed,
    _Published,
)
from .gsb_ws import BoundService

if TYPE_CHECKING:  # pragma: no cover
    from .._client import YagnaClient

logger = logging.getLogger(__name__)

__all__ = ["CHUNK_SIZE", "MAX_CHUNK", "GftpDownload", "GftpUpload", "GsbGftpStorage", "TransferFailed"]


class GsbGftpStorage(_storage.Storage):
    """Publishes local data to providers and receives their uploads, over GFTP, with
    no ``gftp`` binary: through the daemon's GSB API and one WebSocket per transfer.

    Usage::

        with GsbGftpStorage(client) as storage:
            upload = storage.publish(Path("in.txt"))        # upload.url: gftp://0x.../<id>
            download = storage.receive(Path("out.txt"))     # download.url for the provider
            ... run the ExeScript: transfer from upload.url, transfer to download.url ...
            download.result(timeout=10)                     # TransferFailed if not whole
            upload.close(); download.close()

    Every method may be called from any thread. A local file that cannot be read or
    written raises ``OSError``; the daemon's problems raise
    :class:`golem_tasks.errors.ApiError`.

    Args:
        client: the :class:`YagnaClient` of the requestor's daemon.
        node_id: the requestor's node id (default: ``client.me().identity``, asked once).
        connect_timeout: seconds for each WebSocket connection.
        close_timeout: seconds to wait for a reader thread when a transfer is released.
    """

    def __init__(self, client: "YagnaClient", *, node_id: Optional[str] = None,
                 connect_timeout: float = 10.0, close_timeout: float = 5.0) -> None:
        self._client = client
        self._node_id = node_id
        self._connect_timeout = connect_timeout
        self._close_timeout = close_timeout
        self._lock = threading.Lock()
        self._transfers: Dict[str, Tuple[BoundService, Any]] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"GsbGftpStorage({self._client!r}, {len(self._transfers)} transfers)"

    def __enter__(self) -> "GsbGftpStorage":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def node_id(self) -> str:
        """The requestor's node id, the host part of every URL."""
        if self._node_id is None:
            self._node_id = str(self._client.me().identity)
        return self._node_id

    def publish(self, source: Union[bytes, str, "os.PathLike[str]"]) -> GftpUpload:
        """Serve ``source``: bytes, or a local file (its size when published, read when
        the provider asks), under a new ``gftp://`` URL.

        Raises:
            OSError: the file cannot be opened.
        """
        self._check_open()
        if isinstance(source, (bytes, bytearray, memoryview)):
            published = _Published(data=bytes(source))
        else:
            file = open(source, "rb")  # noqa: SIM115 - closed on release
            try:
                published = _Published(file=file)
            except BaseException:
                file.close()
                raise
        try:
            url = self._start(published, PUBLISH_COMPONENTS)
        except BaseException:
            published.close()
            raise
        return GftpUpload(url, published.size, self.release)

    def receive(self, destination: Optional[Union[str, "os.PathLike[str]"]] = None, *,
                limit: Optional[int] = None) -> GftpDownload:
        """A new ``gftp://`` URL a provider can upload one file to: into the local file
        ``destination`` (parents are created), or into memory, refusing more than
        ``limit`` bytes. A file goes to a hidden ``.part`` file beside it first, renamed
        to ``destination`` once complete and checked: ``destination`` never holds a
        partial file.

        Raises:
            OSError: the destination's directory cannot be created or written.
        """
        self._check_open()
        file_id = uuid.uuid4().hex
        download = GftpDownload(self._url(file_id), Path(destination) if destination is not None else None,
                                limit, self.release)
        try:
            self._start(download, RECEIVE_COMPONENTS, file_id)
        except BaseException:
            download._discard("not started")
            raise
        return download

    # -- the transfers -----------------------------------------------------------------

    def _url(self, file_id: str) -> str:
        return f"gftp://{self.node_id}/{file_id}"

    def _start(self, endpoint: Any, components: Tuple[str, ...], file_id: Optional[str] = None) -> str:
        file_id = file_id or uuid.uuid4().hex
        url = self._url(file_id)

        def on_end(reason: str) -> None:
            if isinstance(endpoint, GftpDownload):
                endpoint._discard(f"the connection to the daemon ended: {reason}")

        service = BoundService(self._client.gsb, self._client.auth_header(), f"/public/gftp/{file_id}",
                               components, endpoint.handle, connect_timeout=self._connect_timeout,
                               close_timeout=self._close_timeout, on_end=on_end)
        service.start()
        with self._lock:
            if not self._closed:
                self._transfers[url] = (service, endpoint)
                logger.debug("GFTP %s open (%s)", url, "download" if isinstance(endpoint, GftpDownload)
                             else f"{endpoint.size} bytes published")
                return url
        service.close()
        raise ProviderError("the GFTP storage was closed while the transfer started")

    def _check_open(self) -> None:
        if self._closed:
            raise ProviderError("the GFTP storage is closed")

    def urls(self) -> List[str]:
        """The URLs of the open transfers."""
        with self._lock:
            return list(self._transfers)

    def release(self, url: str) -> None:
        """End the transfer at ``url``: unbind it, close its socket and file. A download
        not finished by then fails (:meth:`GftpDownload.result` raises). Unknown URLs
        are ignored, so releasing twice is harmless."""
        with self._lock:
            entry = self._transfers.pop(url, None)
        if entry is None:
            return
        service, endpoint = entry
        service.close()
        if isinstance(endpoint, GftpDownload):
            endpoint._discard("released before it finished")
        else:
            endpoint.close()
        logger.debug("GFTP %s released", url)

    def close(self) -> None:
        """Release every transfer. Idempotent."""
        with self._lock:
            self._closed = True
            urls = list(self._transfers)
        for url in urls:
            self.release(url)
