"""Host directories shown to the local provider's commands at chosen paths.

Usage::

    LocalProvider(mounts={"/golem/data": "/srv/dataset"})                 # read-only
    LocalProvider(mounts=[Mount("/srv/scratch", "/scratch", writable=True)])

In the bubblewrap sandbox a mount is a real bind mount. In the host sandbox it is a
path mapping, like ``/golem``: arguments and ``env=`` values that start with the
mount's path are rewritten to the host directory (paths written inside scripts are
not), and transfers to and from the mount's path use the host directory.
"""

from __future__ import annotations

import os
import posixpath
from typing import Iterable, Mapping, Tuple, Union

import attrs

from ..errors import ConfigurationError

#: Paths a mount may not cover: the sandbox's own file systems.
_RESERVED = ("/", "/proc", "/dev", "/golem")


@attrs.frozen
class Mount:
    """One host directory at ``target`` inside the sandbox.

    Attributes:
        source: the host directory.
        target: where commands see it: an absolute, normalised path.
        writable: commands (and sends) may change it; read-only by default.
    """

    source: str = attrs.field(converter=os.fspath)
    target: str
    writable: bool = False


MountsArg = Union[Mapping[str, Union[str, "os.PathLike[str]"]], Iterable[Mount], None]


def check_mounts(mounts: MountsArg, reserved: Iterable[str] = ()) -> Tuple[Mount, ...]:
    """Validate ``mounts`` (a mapping target -> host directory, read-only, or Mount values).

    Raises:
        ConfigurationError: a target that is not a normalised absolute path, covers the
            sandbox's own directories or another mount, or a source that is no directory.
    """
    if mounts is None:
        return ()
    if isinstance(mounts, (str, bytes)):
        raise ConfigurationError(f"mounts must map sandbox paths to host directories, got {mounts!r}: "
                                 f"use mounts={{'/golem/data': {mounts!r}}}")
    items = [Mount(os.fspath(source), target) for target, source in mounts.items()] \
        if isinstance(mounts, Mapping) else list(mounts)
    taken = set(reserved)
    found = []
    for mount in items:
        if not isinstance(mount, Mount):
            raise ConfigurationError(f"mounts must be a mapping or Mount values, got {mount!r}")
        target = mount.target
        if not isinstance(target, str) or not target.startswith("/") or posixpath.normpath(target) != target:
            raise ConfigurationError(f"mount target {target!r} must be a normalised absolute path, "
                                     f"for example '/golem/data'")
        if target in _RESERVED or target.startswith(("/proc/", "/dev/")) or target in taken:
            raise ConfigurationError(f"mount target {target} is taken by the sandbox itself or by "
                                     f"another mount or volume: choose another path")
        if not os.path.isdir(mount.source):
            raise ConfigurationError(f"mount source {mount.source} (for {target}) is not a directory")
        taken.add(target)
        found.append(Mount(os.path.realpath(mount.source), target, bool(mount.writable)))
    # A parent is mounted before a mount inside it.
    return tuple(sorted(found, key=lambda m: m.target))
