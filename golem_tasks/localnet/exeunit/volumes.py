"""The extra volumes of a ``deploy`` command, mounted in the local sandbox.

yagna's ``deploy`` takes ``volumes`` as a list of VM paths or a map of VM path to
``{"host": {}}``, ``{"storage": {...}}`` or ``{"ram": {...}}`` (yagna-protocol.md
§3.3). ya-runtime-vm adds a ``host`` volume to the image's, or replaces the image's
at that path with a disk image or tmpfs. Here every kind is a fresh writable
directory of the activity: under ``/golem`` a sandbox volume, elsewhere a writable
mount. Sizes are not enforced, and unlike on a real provider a ``storage`` or ``ram``
volume can also receive transfers.
"""

from __future__ import annotations

import os
from typing import Any, List, Mapping, Tuple

from ...providers.mounts import Mount

_KINDS = ("host", "storage", "ram")


def requested(body: Mapping[str, Any]) -> Tuple[str, ...]:
    """The VM paths of ``deploy``'s ``volumes`` (none when it has none).

    Raises:
        ValueError: ``volumes`` has neither accepted shape (the exe-unit's parse error).
    """
    volumes = body.get("volumes")
    if volumes is None:
        return ()
    if isinstance(volumes, list) and all(isinstance(path, str) for path in volumes):
        return tuple(dict.fromkeys(volumes))
    if isinstance(volumes, Mapping):
        for path, mount in volumes.items():
            if not (isinstance(mount, Mapping) and len(mount) == 1 and next(iter(mount)) in _KINDS):
                raise ValueError(f"ExeScript command error: volume {path!r}: {mount!r} is not one of "
                                    f"{{{', '.join(repr(k) + ': {...}' for k in _KINDS)}}}")
        return tuple(volumes)
    raise ValueError(f"ExeScript command error: deploy volumes must be a list of paths or a map of "
                        f"path to mount, not {volumes!r}")


def layout(volumes: Tuple[str, ...], directory: str) -> Tuple[Tuple[str, ...], List[Mount]]:
    """``(sandbox volumes, writable mounts)`` for ``volumes``; the mounts' directories
    are made under ``directory``."""
    golem = tuple(path for path in volumes if path.startswith("/golem/"))
    mounts = []
    for number, path in enumerate(p for p in volumes if not p.startswith("/golem/")):
        source = os.path.join(directory, str(number))
        os.makedirs(source, exist_ok=True)
        mounts.append(Mount(source, path, writable=True))
    return golem, mounts


def check_target(path: str, volumes: Tuple[str, ...]) -> None:
    """Refuse a transfer into ``path`` outside the VM's volumes, in the exe-unit's words.

    Raises:
        ValueError: ``path`` lies in no volume.
    """
    if volumes and not any(path == v or path.startswith(v.rstrip("/") + "/") for v in volumes):
        raise ValueError(f"path not found in container: {path} (the volumes are {', '.join(volumes)})")
