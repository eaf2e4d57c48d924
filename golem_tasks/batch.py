"""The batch a worker builds and yields."""

from __future__ import annotations

import os
import posixpath
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple, Union

from .commands import (
    DEFAULT_DOWNLOAD_LIMIT,
    Command,
    DownloadBytes,
    DownloadFile,
    DownloadJson,
    Run,
    SendBytes,
    SendFile,
    SendJson,
    SendUrl,
    UploadUrl,
)
from .errors import ConfigurationError

PathLike = Union[str, "os.PathLike[str]"]
#: ``callback(stream, text)`` of a ``run``'s live output.
OutputCallback = Callable[[str, str], None]


class Batch:
    """An ordered list of commands that runs on one provider when the worker yields it.

    Build it with the methods below (each returns the batch, so calls chain), then
    ``results = yield batch``: ``results[i]`` is the :class:`CommandResult` of the
    i-th command. The first failing command stops the batch and raises
    :class:`CommandExecutionError` at the ``yield``.

    Usage::

        def worker(ctx, word):
            batch = ctx.batch(timeout=60)
            batch.send_json({"word": word}, "/golem/input/task.json")
            batch.run("python3", "/golem/input/job.py")
            batch.download_json("/golem/output/result.json")
            results = yield batch
            return results[-1].data

    The requestor's own mistakes are raised where the batch is built, never sent to a
    provider: a local file to send that does not exist (``FileNotFoundError``), a
    malformed argument or environment variable (``ValueError``), and, for a batch
    from ``ctx.batch()``, a transfer to or from a path outside the provider's volumes
    (``ConfigurationError``).

    Args:
        timeout: seconds the whole batch may take; the running command is killed after
            that and ``BatchTimeoutError`` is raised at the ``yield``. None means the
            ``Golem(batch_timeout=...)`` default.
        volumes: the provider directories transfers may use (``ctx.batch()`` fills it
            in from the provider); empty means unchecked.
    """

    __slots__ = ("_commands", "timeout", "volumes")

    def __init__(self, timeout: Optional[float] = None, *, volumes: Sequence[str] = ()) -> None:
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or not timeout > 0):
            raise ConfigurationError(f"batch timeout must be a positive number of seconds, got {timeout!r}")
        self._commands: List[Command] = []
        self.timeout = timeout
        self.volumes = tuple(volumes)

    @property
    def commands(self) -> Tuple[Command, ...]:
        """The commands added so far, in order."""
        return tuple(self._commands)

    def add(self, command: Command) -> "Batch":
        """Append a ready-made :class:`Command`."""
        if not isinstance(command, Command):
            raise TypeError(f"Batch.add() takes a Command, got {type(command).__name__}")
        if self.volumes:
            _check_path(command, self.volumes)
        self._commands.append(command)
        return self

    def check_paths(self, volumes: Sequence[str]) -> None:
        """Raise ``ConfigurationError`` for a transfer outside ``volumes`` (none: no check)."""
        if volumes and tuple(volumes) != self.volumes:
            for command in self._commands:
                _check_path(command, volumes)

    def run(self, program: PathLike, *args: PathLike, env: Optional[Mapping[str, str]] = None,
            check: bool = True, on_output: Optional[OutputCallback] = None) -> "Batch":
        """Run ``program`` with ``args`` (no shell). With ``check=False`` a non-zero exit
        is returned as a result instead of raised. ``on_output(stream, text)`` gets the
        program's ``"stdout"``/``"stderr"`` as it is printed (see :class:`Run`)."""
        return self.add(Run((program, *args), env=env, check=check, on_output=on_output))

    def send_file(self, src: PathLike, dst: PathLike) -> "Batch":
        """Send the local file ``src`` to ``dst`` on the provider."""
        if not os.path.isfile(src):
            what = "is a directory, not a file" if os.path.isdir(src) else "does not exist"
            raise FileNotFoundError(f"send_file(): the local file {os.fspath(src)!r} {what} "
                                    f"(relative paths are taken from {os.getcwd()!r})")
        return self.add(SendFile(src, dst))

    def send_bytes(self, data: bytes, dst: PathLike) -> "Batch":
        """Write ``data`` to ``dst`` on the provider."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"send_bytes() needs bytes, got {type(data).__name__}; use send_json() for objects")
        return self.add(SendBytes(bytes(data), dst))

    def send_json(self, obj: Any, dst: PathLike) -> "Batch":
        """Write ``obj`` as JSON to ``dst`` on the provider."""
        return self.add(SendJson.of(obj, dst))

    def send_url(self, url: str, dst: PathLike) -> "Batch":
        """Have the provider download the http(s) ``url`` into ``dst``: data you host
        yourself goes straight to the provider, never through this machine's uplink
        (on Golem the URL must be reachable from the provider)."""
        return self.add(SendUrl(url, dst))

    def upload_url(self, src: PathLike, url: str) -> "Batch":
        """Have the provider upload ``src`` to the http(s) ``url`` with a PUT, for
        example a pre-signed object-store URL."""
        return self.add(UploadUrl(src, url))

    def download_file(self, src: PathLike, dst: PathLike) -> "Batch":
        """Copy ``src`` on the provider to the local path ``dst``."""
        return self.add(DownloadFile(src, dst))

    def download_bytes(self, src: PathLike, limit: int = DEFAULT_DOWNLOAD_LIMIT) -> "Batch":
        """Read ``src`` on the provider; the result's ``data`` holds the bytes."""
        return self.add(DownloadBytes(src, limit))

    def download_json(self, src: PathLike, limit: int = DEFAULT_DOWNLOAD_LIMIT) -> "Batch":
        """Read ``src`` on the provider; the result's ``data`` holds the parsed JSON."""
        return self.add(DownloadJson(src, limit))

    def __len__(self) -> int:
        return len(self._commands)

    def __repr__(self) -> str:
        inner = "; ".join(c.describe() for c in self._commands)
        return f"<Batch [{inner}] timeout={self.timeout}>"


def _remote_paths(command: Command) -> Tuple[str, ...]:
    if isinstance(command, (SendFile, SendBytes, SendUrl)):
        return (command.dst,)
    if isinstance(command, (DownloadFile, DownloadBytes, UploadUrl)):
        return (command.src,)
    return ()


def _check_path(command: Command, volumes: Sequence[str]) -> None:
    for path in _remote_paths(command):
        if not any(path == v or path.startswith(v.rstrip("/") + "/") for v in volumes):
            where = posixpath.dirname(path) or "/"
            raise ConfigurationError(
                f"{command.describe()}: {path} is not in a volume of the provider ({', '.join(volumes)}); "
                f"use one of those directories, or declare {where} as a volume "
                f"(LocalProvider(volumes=[{where!r}]) locally, a VOLUME in the image on Golem)"
            )
