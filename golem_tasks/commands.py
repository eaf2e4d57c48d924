"""Commands a worker puts in a batch, and what each one gives back.

Commands are frozen value objects; a provider receives them as a tuple and returns
one :class:`CommandResult` per command, in order.
"""

from __future__ import annotations

import json
import os
import posixpath
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Tuple, Union

import attrs

#: The directories every Golem VM image has; providers create them for every session.
GOLEM_DIRS = ("/golem/input", "/golem/output", "/golem/work")

#: Downloads into memory are capped so a runaway file cannot exhaust the requestor.
DEFAULT_DOWNLOAD_LIMIT = 64 * 1024 * 1024


def _remote_path(value: Union[str, os.PathLike]) -> str:
    path = os.fspath(value)
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(
            f"provider path {value!r} must be absolute (for example '/golem/input/data.json')"
        )
    normal = posixpath.normpath(path)
    if normal != path.rstrip("/") and normal + "/" != path:
        # '..' and '.' segments could walk out of the directory the user meant.
        raise ValueError(f"provider path {value!r} must be normalised (no '..' or '.'): use {normal!r}")
    return normal


def _args(value: Any) -> Tuple[str, ...]:
    items = tuple(value)
    if not items:
        raise ValueError("run() needs a program to run, for example run('/bin/sh', '-c', 'date')")
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(f"run() arguments must be strings, got {item!r} ({type(item).__name__})")
    args = tuple(os.fspath(item) for item in items)
    for arg in args:
        if "\0" in arg:
            # No program can receive a NUL byte in argv; caught here, not on a provider.
            raise ValueError(f"run() argument {arg!r} contains a NUL byte, which no program can receive: "
                             f"send such data as a file (send_bytes) instead")
    return args


def _env(value: Optional[Mapping[str, str]]) -> Tuple[Tuple[str, str], ...]:
    if not value:
        return ()
    for key, val in value.items():
        if not isinstance(key, str) or not isinstance(val, str):
            raise TypeError(f"run(env=...) needs str keys and values, got {key!r}: {val!r}")
        if not key or "=" in key or "\0" in key:
            raise ValueError(f"run(env=...) variable name {key!r} is not allowed: a name must be non-empty "
                             f"and contain no '=' or NUL byte")
        if "\0" in val:
            raise ValueError(f"run(env=...) variable {key} holds a NUL byte, which an environment cannot carry: "
                             f"send such data as a file (send_bytes) instead")
    return tuple(sorted(value.items()))


@attrs.frozen
class Command:
    """Base class of every command."""

    def describe(self) -> str:
        """One line a person can read: what the command does."""
        return repr(self)

    def __str__(self) -> str:
        return self.describe()


@attrs.frozen
class Run(Command):
    """Run a program on the provider.

    Attributes:
        args: the program and its arguments (no shell: use ``('/bin/sh', '-c', line)`` for one).
        env: extra environment variables, as sorted ``(name, value)`` pairs.
        check: when True (the default) a non-zero exit raises ``CommandExecutionError``
            at the worker's ``yield``; when False it is returned as a plain result.
        on_output: None, or ``callback(stream, text)`` called with ``"stdout"``/``"stderr"``
            text (UTF-8 decoded across chunk borders) while the program runs; the result
            still holds the whole output. It is called on a library thread, one call at a
            time, never after the batch ended: keep it quick. One that raises is logged
            and not called again for this command. On Golem, output printed before the
            live stream was connected is not replayed. Not part of equality, hash or repr.
    """

    args: Tuple[str, ...] = attrs.field(converter=_args)
    env: Tuple[Tuple[str, str], ...] = attrs.field(default=(), converter=_env)
    check: bool = True
    on_output: Optional[Callable[[str, str], None]] = attrs.field(
        default=None, kw_only=True, eq=False, repr=False,
        validator=attrs.validators.optional(attrs.validators.is_callable()))

    def describe(self) -> str:
        return "run " + " ".join(self.args)

    @property
    def env_dict(self) -> dict:
        return dict(self.env)


@attrs.frozen
class SendFile(Command):
    """Copy a local file to ``dst`` on the provider."""

    src: Path = attrs.field(converter=Path)
    dst: str = attrs.field(converter=_remote_path)

    def describe(self) -> str:
        return f"send file {self.src} -> {self.dst}"


@attrs.frozen
class SendBytes(Command):
    """Write ``data`` to ``dst`` on the provider."""

    data: bytes = attrs.field(validator=attrs.validators.instance_of(bytes), repr=lambda d: f"<{len(d)} bytes>")
    dst: str = attrs.field(converter=_remote_path)

    def describe(self) -> str:
        return f"send {len(self.data)} bytes -> {self.dst}"


@attrs.frozen
class SendJson(SendBytes):
    """Write a JSON-able object to ``dst`` on the provider (encoded when the batch is built,
    so a non-serialisable object fails in the worker, not on the provider)."""

    @classmethod
    def of(cls, obj: Any, dst: Union[str, os.PathLike]) -> "SendJson":
        try:
            data = json.dumps(obj).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise TypeError(f"send_json() needs a JSON-serialisable object: {exc}") from exc
        return cls(data, dst)

    def describe(self) -> str:
        return f"send json ({len(self.data)} bytes) -> {self.dst}"


def _http_url(_: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError(f"{attribute.name} must be an http(s) URL the provider can reach, got {value!r}")


@attrs.frozen
class SendUrl(Command):
    """The provider downloads ``url`` (HTTP GET) into ``dst``: data the user hosts
    never passes through the requestor. On Golem the provider's exe-unit fetches it,
    so the URL must be reachable from the provider; the local provider fetches it from
    this machine."""

    url: str = attrs.field(validator=_http_url)
    dst: str = attrs.field(converter=_remote_path)

    def describe(self) -> str:
        return f"send url {self.url} -> {self.dst}"


@attrs.frozen
class UploadUrl(Command):
    """The provider uploads ``src`` to ``url`` with an HTTP PUT (for example a
    pre-signed object-store URL), so results need not pass through the requestor."""

    src: str = attrs.field(converter=_remote_path)
    url: str = attrs.field(validator=_http_url)

    def describe(self) -> str:
        return f"upload {self.src} -> url {self.url}"


@attrs.frozen
class DownloadFile(Command):
    """Copy ``src`` on the provider to the local path ``dst``; the result's ``data`` is that path."""

    src: str = attrs.field(converter=_remote_path)
    dst: Path = attrs.field(converter=Path)

    def describe(self) -> str:
        return f"download file {self.src} -> {self.dst}"


@attrs.frozen
class DownloadBytes(Command):
    """Read ``src`` on the provider into memory; the result's ``data`` is the bytes.

    A file larger than ``limit`` bytes fails the command rather than exhausting memory.
    """

    src: str = attrs.field(converter=_remote_path)
    limit: int = attrs.field(default=DEFAULT_DOWNLOAD_LIMIT, validator=attrs.validators.gt(0))

    def describe(self) -> str:
        return f"download bytes {self.src}"


@attrs.frozen
class DownloadJson(DownloadBytes):
    """Read ``src`` on the provider and parse it as JSON; the result's ``data`` is the object."""

    def describe(self) -> str:
        return f"download json {self.src}"


@attrs.frozen(kw_only=True)
class CommandResult:
    """What one command gave back.

    Attributes:
        command: the command.
        index: its position in the batch.
        exit_code: the program's exit code for ``Run``, 0 for a transfer that worked.
        stdout, stderr: what a program printed, decoded as UTF-8 (invalid bytes replaced).
        data: bytes for ``download_bytes``, the parsed object for ``download_json``,
            the local ``Path`` for ``download_file``; None otherwise.
    """

    command: Command
    index: int
    exit_code: int = 0
    stdout: str = ""
    stderr: str = ""
    data: Any = None

    @property
    def success(self) -> bool:
        return self.exit_code == 0
