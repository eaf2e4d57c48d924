"""How data moves between this machine and a provider's VM: the storage seam.

A provider's exe-unit runs every transfer itself; the requestor only hands it URLs
(yagna-protocol.md §4). A :class:`Storage` makes local data reachable under a URL the
exe-unit can pull (``publish``), and gives a URL it can push a file to (``receive``).
The GFTP implementation over the daemon's GSB WebSocket API plugs in here; until
then, and for small data always, the session sends data inline (base64 inside the
ExeScript, see :mod:`..activity.plan`), which needs no storage at all.

Data users host themselves needs no storage either: ``Batch.send_url`` makes the
provider download an http(s) URL into the VM, ``Batch.upload_url`` makes it PUT a file
from the VM to an http(s) URL (for example a pre-signed object-store URL).
"""

from __future__ import annotations

import abc
import os
from pathlib import Path
from typing import Optional, Union

from ....commands import SendUrl, UploadUrl  # re-exported: they lived here first

__all__ = ("Download", "SendUrl", "Storage", "Upload", "UploadUrl")

Source = Union[bytes, Path]


class Upload(abc.ABC):
    """Data published for one transfer into a VM.

    Attributes:
        url: what the exe-unit pulls (``gftp://<node>/<id>``, ``https://...``); may carry
            a ``hash:sha3:<hex>:`` prefix, which the exe-unit then checks.
    """

    url: str

    def close(self) -> None:
        """Stop serving the data. Idempotent."""


class Download(abc.ABC):
    """A place one transfer out of a VM writes to.

    Attributes:
        url: what the exe-unit pushes the file to.
    """

    url: str

    @abc.abstractmethod
    def result(self, timeout: float) -> Union[bytes, Path]:
        """After the transfer command reported success: the received data, as bytes
        when no destination was given, else the destination path. Waits at most
        ``timeout`` s for the last bytes to arrive.

        Raises:
            golem_tasks.errors.CommandExecutionError: the data did not arrive whole, or
                is over the limit.
        """

    def close(self) -> None:
        """Stop receiving; discard partial data. Idempotent."""


class Storage(abc.ABC):
    """Makes transfers possible: one per session backend, shared by its sessions and
    used from several threads at once.

    Usage::

        provider = GolemProvider(image_tag="golem/alpine:latest", storage=MyStorage())
    """

    @abc.abstractmethod
    def publish(self, source: Source) -> Upload:
        """Serve ``source`` (bytes, or a local file read when the provider asks) under a
        new URL the provider can pull."""

    @abc.abstractmethod
    def receive(self, destination: Optional[Path] = None, *, limit: Optional[int] = None) -> Download:
        """A new URL the provider can push one file to; the data goes to ``destination``
        (a local file) or is kept in memory, refused beyond ``limit`` bytes."""

    def close(self) -> None:
        """Release everything the storage holds. Idempotent."""


def source_size(source: Source) -> int:
    """The size of bytes or of a local file (OSError when the file cannot be read)."""
    return len(source) if isinstance(source, bytes) else os.stat(source).st_size
