"""Golem VM images for the local provider: a GVMI file or a root file system directory.

A GVMI file is what ``gvmkit-build`` makes of a Docker image: a squashfs file system
followed by the image's Docker configuration as JSON (``Env``, ``WorkingDir``,
``Volumes``, ...), laid out as::

    <squashfs> <crc32 of the JSON, 4 bytes little-endian> <JSON> <JSON length, 8 ASCII digits>

squashfs ignores what follows its own end, so ``unsquashfs`` reads the file as it is.
Unpacked images are cached by their SHA3-224 hash (the hash Golem's registry names
them by) under ``~/.cache/golem_tasks/images`` (``$XDG_CACHE_HOME``), so the second
use costs a hash of the file and no unpacking. ``unsquashfs`` (Debian's squashfs-tools)
is used rather than squashfuse: it needs no FUSE device, which containers and CI
runners seldom have, and an unpacked tree can be bind-mounted by bubblewrap at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import posixpath
import shutil
import subprocess
import tempfile
import zlib
from typing import Any, Dict, Mapping, Optional, Tuple

import attrs

from ..errors import ConfigurationError

logger = logging.getLogger(__name__)

_SIZE_DIGITS = 8
_CRC_BYTES = 4
_METADATA_FILE = "metadata.json"


@attrs.frozen
class Image:
    """An image ready to run: its root file system on this machine and its settings.

    Attributes:
        root: the host directory holding the root file system.
        env: the image's environment (``ENV``); None for a bare directory, whose
            commands get the VM-like default environment.
        workdir: the image's working directory (``WORKDIR``), None when it sets none.
        volumes: the image's ``VOLUME`` directories.
        hash: the GVMI file's SHA3-224 hash, None for a directory.
    """

    root: str
    env: Optional[Mapping[str, str]] = None
    workdir: Optional[str] = None
    volumes: Tuple[str, ...] = ()
    hash: Optional[str] = None


def read_metadata(path: str) -> Dict[str, Any]:
    """The Docker configuration appended to a GVMI file.

    Raises:
        ConfigurationError: the file has no valid metadata (not a GVMI file).
    """
    try:
        with open(path, "rb") as image:
            image.seek(0, os.SEEK_END)
            size = image.tell()
            if size < _SIZE_DIGITS + _CRC_BYTES:
                raise ValueError("the file is too small")
            image.seek(size - _SIZE_DIGITS)
            length = int(image.read(_SIZE_DIGITS).decode("ascii"))
            if length + _SIZE_DIGITS + _CRC_BYTES > size:
                raise ValueError("the metadata length is larger than the file")
            image.seek(size - _SIZE_DIGITS - length - _CRC_BYTES)
            crc = int.from_bytes(image.read(_CRC_BYTES), "little")
            raw = image.read(length)
        if zlib.crc32(raw) != crc:
            raise ValueError("the metadata checksum does not match")
        metadata = json.loads(raw.decode("utf-8"))
        if not isinstance(metadata, dict):
            raise ValueError("the metadata is not a JSON object")
        return metadata
    except OSError as exc:
        raise ConfigurationError(f"cannot read the image {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConfigurationError(f"{path} is not a GVMI image ({exc}); build one with gvmkit-build, "
                                 f"or pass a root file system directory") from exc


def metadata_bytes(config: Mapping[str, Any]) -> bytes:
    """What gvmkit-build appends to the squashfs file for ``config`` (tests build images)."""
    raw = json.dumps(dict(config)).encode("utf-8")
    return zlib.crc32(raw).to_bytes(_CRC_BYTES, "little") + raw + b"%08d" % len(raw)


def _image_from_metadata(root: str, metadata: Mapping[str, Any], digest: Optional[str]) -> Image:
    env: Dict[str, str] = {}
    for item in metadata.get("Env") or ():
        key, _, value = str(item).partition("=")
        env[key] = value
    volumes = tuple(sorted(posixpath.normpath(str(v)) for v in (metadata.get("Volumes") or {})))
    return Image(root=root, env=env, workdir=metadata.get("WorkingDir") or None, volumes=volumes, hash=digest)


def default_cache() -> str:
    """``$XDG_CACHE_HOME/golem_tasks/images``, ``~/.cache/...`` without it."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "golem_tasks", "images")


def looks_like_path(spec: str) -> bool:
    """Whether ``image=`` names a local file or directory rather than a registry tag/hash."""
    return spec.startswith(("/", "./", "../", "~")) or spec.endswith(".gvmi") or os.path.exists(spec)


def file_hash(path: str) -> str:
    """The SHA3-224 hash of a file, as hex (Golem's image hash)."""
    digest = hashlib.sha3_224()
    with open(path, "rb") as image:
        for block in iter(lambda: image.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def open_image(spec: str, cache: Optional[str] = None) -> Image:
    """The image named by ``spec`` (a GVMI file or a directory), unpacked when needed.

    Raises:
        ConfigurationError: the path does not exist, is not an image, or cannot be unpacked.
    """
    path = os.path.abspath(os.path.expanduser(spec))
    if os.path.isdir(path):
        return Image(root=os.path.realpath(path))
    if not os.path.isfile(path):
        raise ConfigurationError(f"image {spec!r} is neither a GVMI file nor a directory on this machine")
    metadata = read_metadata(path)
    digest = file_hash(path)
    directory = os.path.join(cache or default_cache(), digest)
    if not os.path.isdir(os.path.join(directory, "rootfs")):
        _unpack(path, directory, metadata)
    return _image_from_metadata(os.path.join(directory, "rootfs"), metadata, digest)


def _unpack(path: str, directory: str, metadata: Mapping[str, Any]) -> None:
    unsquashfs = shutil.which("unsquashfs")
    if unsquashfs is None:
        raise ConfigurationError("unpacking a GVMI image needs unsquashfs: install squashfs-tools "
                                 "(apt-get install squashfs-tools)")
    parent = os.path.dirname(directory)
    try:
        os.makedirs(parent, exist_ok=True)
        work = tempfile.mkdtemp(prefix=os.path.basename(directory) + ".unpacking-", dir=parent)
    except OSError as exc:
        raise ConfigurationError(f"cannot create the image cache {parent}: {exc.strerror}") from exc
    try:
        # -no-xattrs: extended attributes need privileges; device nodes that cannot be
        # made without root are skipped (the sandbox brings its own /dev).
        done = subprocess.run([unsquashfs, "-no-xattrs", "-no-progress", "-quiet", "-d",
                               os.path.join(work, "rootfs"), path],
                              stdin=subprocess.DEVNULL, capture_output=True, check=False)
        if done.returncode not in (0, 2) or not os.path.isdir(os.path.join(work, "rootfs")):
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise ConfigurationError(f"unsquashfs cannot unpack {path}: "
                                     f"{message[-1] if message else done.returncode}")
        with open(os.path.join(work, _METADATA_FILE), "w", encoding="utf-8") as out:
            json.dump(dict(metadata), out)
        try:
            os.rename(work, directory)  # atomic: a half-unpacked image is never used
        except OSError:
            if not os.path.isdir(os.path.join(directory, "rootfs")):
                raise
            # Another process unpacked it meanwhile: use theirs.
        else:
            logger.info("unpacked image %s into %s", path, directory)
    finally:
        if os.path.isdir(work):
            with contextlib.suppress(OSError):
                shutil.rmtree(work)
