"""ExeScript: the JSON commands a batch sends to ``POST /activity/{id}/exec``.

The body is ``{"text": json.dumps([command, ...])}``; each command is an object whose
only key is the command name (yagna-protocol.md §3.3)::

    {"deploy": {}}
    {"start": {"args": []}}
    {"run": {"entry_point": "/bin/sh", "args": ["-c", "..."],
             "capture": {"stdout": {"atEnd": {"format": "string"}}, "stderr": {...}}}}
    {"transfer": {"from": "<url>", "to": "container:/golem/input/x"}}

``entry_point`` is snake_case; capture keys are camelCase. Output must be captured or
the daemon discards it. ``"string"`` is the spec's name of the text format and an
alias the exe-unit has accepted since 2020 (it calls it ``"str"``).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import shlex
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence

from ....commands import (
    Command,
    DownloadBytes,
    DownloadFile,
    Run,
    SendBytes,
    SendFile,
)
from ....errors import ConfigurationError

#: Capture everything a program prints, as text, returned with the command's result.
CAPTURE_AT_END: Mapping[str, Any] = {
    "stdout": {"atEnd": {"format": "string"}},
    "stderr": {"atEnd": {"format": "string"}},
}

#: Capture everything as text and also send it as runtime events (SSE) while the
#: program runs; the result still holds the whole output (yagna-protocol.md §3.3).
CAPTURE_STREAM: Mapping[str, Any] = {
    "stdout": {"stream": {"format": "string"}},
    "stderr": {"stream": {"format": "string"}},
}

#: The shell used to set environment variables and to find programs on ``PATH``
#: (the VM runtime needs an absolute ``entry_point`` and ignores ``deploy.env``).
SHELL = "/bin/sh"

#: Inline transfers put the data on a command line: each argument is at most 128 KiB
#: (Linux MAX_ARG_STRLEN), the whole request at most ~2 MiB (actix's JSON limit).
INLINE_LIMIT = 512 * 1024
_INLINE_CHUNK = 96 * 1024

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def deploy_command(**options: Any) -> Dict[str, Any]:
    """``{"deploy": {...}}``; options (``volumes``, ``net``, ``hosts``, ``hostname``,
    ``progress``) are passed as given, None ones left out."""
    return {"deploy": {key: value for key, value in options.items() if value is not None}}


def start_command(args: Iterable[str] = ()) -> Dict[str, Any]:
    return {"start": {"args": list(args)}}


def run_command(entry_point: str, args: Iterable[str] = (), *, capture: bool = True) -> Dict[str, Any]:
    """``{"run": ...}`` of an absolute ``entry_point``; output captured unless told not to."""
    if not entry_point.startswith("/"):
        raise ConfigurationError(f"entry_point must be an absolute path in the image, got {entry_point!r}")
    body: Dict[str, Any] = {"entry_point": entry_point, "args": list(args)}
    if capture:
        body["capture"] = copy.deepcopy(dict(CAPTURE_AT_END))
    return {"run": body}


def transfer_command(from_url: str, to_url: str) -> Dict[str, Any]:
    """``{"transfer": {"from", "to"}}``; one side is usually :func:`container_url`."""
    return {"transfer": {"from": from_url, "to": to_url}}


def terminate_command() -> Dict[str, Any]:
    return {"terminate": {}}


def container_url(path: str) -> str:
    """``container:/abs/path``: a path inside the VM (it must lie in an image volume)."""
    if not path.startswith("/"):
        raise ConfigurationError(f"container paths must be absolute, got {path!r}")
    return "container:" + path


def script_text(commands: Sequence[Mapping[str, Any]]) -> str:
    """The ``text`` of an exec request: the command list as compact JSON."""
    return json.dumps(list(commands), separators=(",", ":"))


def command_json(command: Command, *, url: Optional[str] = None) -> Dict[str, Any]:
    """The ExeScript command for a golem_tasks :class:`~golem_tasks.commands.Command`.

    ``Run`` becomes ``run`` (through :data:`SHELL` when it needs environment variables
    or a ``PATH`` lookup). A send becomes a transfer from ``url`` into the container,
    a download a transfer from the container to ``url``; the caller publishes the data
    (GFTP, HTTP) and passes the URL.

    Raises:
        ConfigurationError: a transfer without ``url``, or an invalid env name.
    """
    if isinstance(command, Run):
        return _run_json(command)
    if isinstance(command, (SendFile, SendBytes)):
        return transfer_command(_need_url(command, url), container_url(command.dst))
    if isinstance(command, (DownloadFile, DownloadBytes)):
        return transfer_command(container_url(command.src), _need_url(command, url))
    raise ConfigurationError(f"{type(command).__name__} has no ExeScript form")


def _need_url(command: Command, url: Optional[str]) -> str:
    if not url:
        raise ConfigurationError(f"{command} needs the URL its data is published at (url=...)")
    return url


def _run_json(command: Run) -> Dict[str, Any]:
    program, *args = command.args
    if not command.env and program.startswith("/"):
        return run_command(program, args)
    exports = []
    for name, value in command.env:
        if not _ENV_NAME.fullmatch(name):
            raise ConfigurationError(f"run(env=...) name {name!r} is not a shell variable name")
        exports.append(f"export {name}={shlex.quote(value)}; ")
    # sh -c SCRIPT NAME ARGS...: "$@" is the program and its arguments, unquoted by nobody.
    return run_command(SHELL, ["-c", "".join(exports) + 'exec "$@"', "sh", program, *args])


def inline_send_command(data: bytes, dst: str, *, limit: int = INLINE_LIMIT) -> Dict[str, Any]:
    """A ``run`` that writes ``data`` to ``dst`` without any file transfer: the data
    rides in the request as base64 arguments (needs ``base64`` in the image).

    Raises:
        ConfigurationError: ``data`` is larger than ``limit``; use a transfer instead.
    """
    if len(data) > limit:
        raise ConfigurationError(
            f"{len(data)} bytes are too many to send inline (limit {limit}); use a transfer")
    encoded = base64.b64encode(data).decode("ascii")
    chunks = [encoded[i:i + _INLINE_CHUNK] for i in range(0, len(encoded), _INLINE_CHUNK)] or [""]
    return run_command(SHELL, ["-c", 'printf %s "$@" | base64 -d > "$0"', dst, *chunks])


def inline_read_command(src: str) -> Dict[str, Any]:
    """A ``run`` whose stdout is ``src`` in base64; decode it with :func:`decode_inline_read`."""
    return run_command(SHELL, ["-c", 'base64 "$0"', src])


def decode_inline_read(stdout: str) -> bytes:
    return base64.b64decode("".join(stdout.split()), validate=True)
