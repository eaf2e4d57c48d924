"""Extra volumes: directories the provider mounts into the VM at ``deploy``, beyond
the image's own ``VOLUME``s.

yagna's ``deploy`` command takes ``volumes`` as a map of VM path to mount kind
(yagna-protocol.md §3.3): ``{"host": {}}`` is a directory on the provider's disk,
``{"storage": {"size": ...}}`` a disk image of that size and ``{"ram": ...}`` a tmpfs.
Only ``host`` volumes are registered with the exe-unit's transfer service, so only
they can receive ``send_file`` and be downloaded from; golem_tasks asks for those.
Providers need yagna 0.17 and ``vm`` runtime 0.5 or newer; older ones ignore the field,
and then a transfer into the volume fails on the provider ("path not found").
"""

from __future__ import annotations

import os
import posixpath
from typing import Any, Dict, Iterable, Optional, Tuple

from ....errors import ConfigurationError

#: The volumes of the SDK images (``golem/alpine``, yapapi's and golem-js' examples):
#: with extra volumes, a batch is checked against these and the extra ones.
IMAGE_VOLUMES = ("/golem/input", "/golem/output", "/golem/work")

#: Paths a host volume may not cover: the VM's own file systems.
_RESERVED = ("/", "/proc", "/dev", "/sys", "/golem")


def check_volumes(volumes: Iterable[str]) -> Tuple[str, ...]:
    """The extra volumes, validated and in order, duplicates dropped.

    Raises:
        ConfigurationError: ``volumes`` is one string, or a path is not a normalised
            absolute path, or it is one of the VM's own directories.
    """
    if isinstance(volumes, (str, bytes)):
        raise ConfigurationError(f"volumes must be a list of VM paths, got the string {volumes!r}: "
                                 f"use volumes=[{volumes!r}]")
    found = []
    for volume in volumes:
        path = os.fspath(volume) if isinstance(volume, (str, os.PathLike)) else volume
        if not isinstance(path, str) or not path.startswith("/") or posixpath.normpath(path) != path:
            raise ConfigurationError(f"volume {volume!r} must be a normalised absolute path in the VM, "
                                     f"for example '/golem/resource'")
        if path in _RESERVED or path.startswith(("/proc/", "/dev/", "/sys/")):
            raise ConfigurationError(f"volume {path} is one of the VM's own directories: choose another path, "
                                     f"for example '/golem/resource'")
        found.append(path)
    return tuple(dict.fromkeys(found))


def deploy_volumes(volumes: Tuple[str, ...]) -> Optional[Dict[str, Any]]:
    """The ``volumes`` argument of ``deploy``: each path a host volume; None for none."""
    if not volumes:
        return None
    return {path: {"host": {}} for path in volumes}


def session_volumes(volumes: Tuple[str, ...]) -> Tuple[str, ...]:
    """``ProviderInfo.volumes`` of a session: the image's and the extra ones, or none
    (nothing checked) when no extra volume was asked for, since the image's own
    ``VOLUME``s are not known here."""
    if not volumes:
        return ()
    return tuple(dict.fromkeys(IMAGE_VOLUMES + volumes))
