"""One golem_tasks batch as one ExeScript, and its raw results as ``CommandResult``s.

Every command becomes exactly one ExeScript command, so result ``index`` maps back
one to one:

* ``run`` with ``check=True`` is a plain ``run`` (the daemon stops the batch at the
  first non-zero exit and reports "exited with code N").
* ``run`` with ``check=False`` runs inside ``/bin/sh``, which always exits 0 and
  appends the real exit code to stderr, because the daemon would otherwise stop the
  batch (:data:`EXIT_MARK`; the line is stripped again here).
* sends and downloads go through the :class:`~._storage.Storage` when one is set and
  the data is large; otherwise inline: the data rides base64-encoded on a ``sh``
  command line (at most :data:`INLINE_LIMIT` bytes, the daemon's 2 MiB request limit
  and the kernel's argument limits leave room for that) and comes back base64-encoded
  on stdout. Inline transfers need ``base64``, ``wc``, ``dirname`` and ``mkdir`` in the
  image (busybox and coreutils have them).
"""

from __future__ import annotations

import base64
import copy
import os
import re
import shlex
import stat
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import attrs

from ....commands import Command, CommandResult, DownloadBytes, DownloadFile, Run, SendBytes, SendFile
from ....errors import CommandExecutionError, ConfigurationError
from ...base import decode_download
from .models import ExeScriptCommandResult
from .exescript import (
    CAPTURE_STREAM,
    INLINE_LIMIT,
    SHELL,
    command_json,
    container_url,
    decode_inline_read,
    run_command,
    transfer_command,
)
from ..transfer.storage import Download, SendUrl, Storage, Upload, UploadUrl, source_size

#: Written to stderr after a ``check=False`` program, followed by its exit code.
EXIT_MARK = "golem_tasks-exit-code:"
_EXIT_LINE = re.compile("\n" + re.escape(EXIT_MARK) + r"(-?\d+)\n\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CHUNK = 96 * 1024  # one argument stays below Linux's 128 KiB MAX_ARG_STRLEN
#: Exit code of the inline read script when the file is over the limit.
TOO_BIG = 3

SEND_SCRIPT = ('set -e; mkdir -p "$(dirname "$0")"; m=$1; shift; printf %s "$@" | base64 -d > "$0"; '
               'if [ "$m" = x ]; then chmod +x "$0"; fi')
READ_SCRIPT = ('n=$(wc -c < "$0") || exit 2; if [ "$n" -gt "$1" ]; then '
               'echo "$0 is $n bytes, over the limit of $1" >&2; exit 3; fi; base64 "$0"')
KEEP_GOING_SCRIPT = "\"$@\"; c=$?; printf '\\n" + EXIT_MARK + "%d\\n' \"$c\" >&2; exit 0"

Finisher = Callable[[ExeScriptCommandResult, int], CommandResult]


@attrs.define
class Step:
    """One command: its ExeScript form, how its raw result becomes a ``CommandResult``,
    how its failure reads, and the storage handle to close afterwards."""

    command: Command
    exe: Dict[str, Any]
    finish: Finisher
    describe_failure: Callable[[ExeScriptCommandResult], str]
    handle: Optional[Union[Upload, Download]] = None


def inline_send(data: bytes, dst: str, *, executable: bool = False) -> Dict[str, Any]:
    """A ``run`` that writes ``data`` to ``dst`` (parents created) with no transfer."""
    encoded = base64.b64encode(data).decode("ascii")
    chunks = [encoded[i:i + _CHUNK] for i in range(0, len(encoded), _CHUNK)] or [""]
    return run_command(SHELL, ["-c", SEND_SCRIPT, dst, "x" if executable else "-", *chunks])


def inline_read(src: str, limit: int) -> Dict[str, Any]:
    """A ``run`` whose stdout is ``src`` in base64; exits :data:`TOO_BIG` past ``limit`` bytes."""
    return run_command(SHELL, ["-c", READ_SCRIPT, src, str(limit)])


def keep_going_run(command: Run) -> Dict[str, Any]:
    """A ``run`` of ``command`` that exits 0 and reports the real code on stderr."""
    for name, _ in command.env:
        if not _ENV_NAME.fullmatch(name):
            raise ConfigurationError(f"run(env=...) name {name!r} is not a shell variable name")
    exports = "".join(f"export {name}={shlex.quote(value)}; " for name, value in command.env)
    return run_command(SHELL, ["-c", exports + KEEP_GOING_SCRIPT, "sh", *command.args])


def split_exit_code(stderr: str) -> "tuple[Optional[int], str]":
    """The exit code a ``check=False`` run reported, and its stderr without the report."""
    match = _EXIT_LINE.search(stderr)
    if match is None:
        return None, stderr
    return int(match.group(1)), stderr[:match.start()]


class Script:
    """The ExeScript of one batch. Build it with :func:`plan`; always :meth:`close` it."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = list(steps)

    @property
    def exe_commands(self) -> List[Dict[str, Any]]:
        return [step.exe for step in self.steps]

    def results(self, raw: Mapping[int, ExeScriptCommandResult], provider: str,
                name: str = "") -> List[CommandResult]:
        """``CommandResult``s of a finished batch, in order.

        Raises:
            CommandExecutionError: the first command that failed, with the results before it.
        """
        done: List[CommandResult] = []
        for index, step in enumerate(self.steps):
            result = raw.get(index)
            if result is None:
                raise CommandExecutionError(f"the provider reported no result for {step.command}",
                                            command=step.command, index=index, provider=provider,
                                            provider_name=name or None, results=done)
            try:
                if not result.ok:
                    raise _failure(step, result, index)
                done.append(step.finish(result, index))
            except CommandExecutionError as exc:
                exc.command, exc.index = exc.command or step.command, index if exc.index is None else exc.index
                exc.provider, exc.results = exc.provider or provider, tuple(done)
                exc.provider_name = exc.provider_name or name or None
                raise
        return done

    def close(self) -> None:
        for step in self.steps:
            if step.handle is not None:
                step.handle.close()


def _failure(step: Step, result: ExeScriptCommandResult, index: int) -> CommandExecutionError:
    exit_code = result.exit_code if isinstance(step.command, Run) else None
    return CommandExecutionError(step.describe_failure(result), command=step.command, index=index,
                                 exit_code=exit_code, stdout=result.stdout or "", stderr=result.stderr or "")


def plan(commands: Sequence[Command], *, storage: Optional[Storage], inline_limit: int = INLINE_LIMIT,
         download_timeout: float = 60.0) -> Script:
    """The :class:`Script` for ``commands``.

    Data up to ``inline_limit`` bytes is sent inline; larger data, and every download
    whose limit is larger, goes through ``storage`` when there is one.

    Raises:
        ConfigurationError: a command this provider cannot run, or data too large to
            send inline when there is no storage.
        CommandExecutionError: a local file to send cannot be read.
    """
    steps: List[Step] = []
    try:
        for index, command in enumerate(commands):
            try:
                steps.append(_step(command, storage, inline_limit, download_timeout))
            except CommandExecutionError as exc:
                exc.command, exc.index = command, index
                raise
    except BaseException:
        Script(steps).close()
        raise
    return Script(steps)


def _step(command: Command, storage: Optional[Storage], inline_limit: int, download_timeout: float) -> Step:
    if isinstance(command, Run):
        return _run_step(command)
    if isinstance(command, (SendBytes, SendFile)):
        return _send_step(command, storage, inline_limit)
    if isinstance(command, (DownloadBytes, DownloadFile)):
        return _download_step(command, storage, inline_limit, download_timeout)
    if isinstance(command, SendUrl):
        return Step(command, transfer_command(command.url, container_url(command.dst)), _done(command),
                    lambda r: f"could not download {command.url}: {_said(r)}")
    if isinstance(command, UploadUrl):
        return Step(command, transfer_command(container_url(command.src), command.url), _done(command),
                    lambda r: f"could not upload {command.src} to {command.url}: {_said(r)}")
    raise ConfigurationError(f"the Golem provider cannot run {type(command).__name__} commands")


def _said(result: ExeScriptCommandResult) -> str:
    text = (result.stderr or "").strip() or (result.message or "").strip()
    return text or "no reason given"


def _done(command: Command) -> Finisher:
    """The finisher of a command that gives back nothing but success."""
    def finish(result: ExeScriptCommandResult, index: int) -> CommandResult:
        return CommandResult(command=command, index=index)
    return finish


def _run_step(command: Run) -> Step:
    def describe(result: ExeScriptCommandResult) -> str:
        code = result.exit_code
        return f"program exited with code {code}" if code is not None else f"program failed: {_said(result)}"

    if command.check:
        def finish(result: ExeScriptCommandResult, index: int) -> CommandResult:
            return CommandResult(command=command, index=index, stdout=result.stdout or "",
                                 stderr=result.stderr or "")
        return Step(command, _live(command, command_json(command)), finish, describe)

    def finish_unchecked(result: ExeScriptCommandResult, index: int) -> CommandResult:
        code, stderr = split_exit_code(result.stderr or "")
        if code is None:
            raise CommandExecutionError("the provider did not report the program's exit code "
                                        "(its stderr was cut short)", stdout=result.stdout or "",
                                        stderr=stderr)
        return CommandResult(command=command, index=index, exit_code=code, stdout=result.stdout or "",
                             stderr=stderr)
    return Step(command, _live(command, keep_going_run(command)), finish_unchecked, describe)


def _live(command: Run, exe: Dict[str, Any]) -> Dict[str, Any]:
    """A run whose output the worker watches live is captured as a stream (SSE events)."""
    if command.on_output is not None:
        exe["run"]["capture"] = copy.deepcopy(dict(CAPTURE_STREAM))
    return exe


def _send_step(command: Union[SendBytes, SendFile], storage: Optional[Storage], inline_limit: int) -> Step:
    source: Union[bytes, Path] = command.data if isinstance(command, SendBytes) else command.src
    try:
        size = source_size(source)
    except OSError as exc:  # only a file can fail here
        raise CommandExecutionError(f"cannot read the local file {source!s}: {exc.strerror}") from exc

    sent = _done(command)

    def describe(result: ExeScriptCommandResult) -> str:
        return f"could not write {command.dst} on the provider: {_said(result)}"

    if storage is not None and size > inline_limit:
        upload = storage.publish(source)
        return Step(command, transfer_command(upload.url, container_url(command.dst)), sent, describe, upload)
    if size > INLINE_LIMIT:
        raise ConfigurationError(
            f"{command} is {size} bytes, too many to send inline (limit {INLINE_LIMIT}): give the "
            f"GolemProvider storage='gftp', or host the data and use batch.send_url()")
    data, executable = source, False
    if not isinstance(source, bytes):
        try:
            data = source.read_bytes()
            executable = bool(os.stat(source).st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
        except OSError as exc:
            raise CommandExecutionError(f"cannot read the local file {source}: {exc.strerror}") from exc
    return Step(command, inline_send(bytes(data), command.dst, executable=executable), sent, describe)


def _download_step(command: Union[DownloadBytes, DownloadFile], storage: Optional[Storage], inline_limit: int,
                   download_timeout: float) -> Step:
    limit = command.limit if isinstance(command, DownloadBytes) else None
    # A download whose limit fits inline costs no transfer set-up; anything that may be
    # larger goes through the storage, as the size is known only on the provider.
    if storage is not None and (limit is None or limit > inline_limit):
        return _stored_download(command, storage, limit, download_timeout)
    cap = INLINE_LIMIT if limit is None else min(limit, INLINE_LIMIT)

    def describe(result: ExeScriptCommandResult) -> str:
        if result.exit_code == TOO_BIG:
            hint = "" if limit is not None and limit <= INLINE_LIMIT else (
                f" (downloads without a storage are limited to {INLINE_LIMIT} bytes: give the "
                f"GolemProvider storage='gftp', or use batch.upload_url())")
            return _said(result) + hint
        return f"cannot read {command.src} on the provider: {_said(result)}"

    def finish(result: ExeScriptCommandResult, index: int) -> CommandResult:
        try:
            raw = decode_inline_read(result.stdout or "")
        except ValueError as exc:
            raise CommandExecutionError(f"{command.src} came back garbled ({exc})") from exc
        return _downloaded(command, index, raw)

    return Step(command, inline_read(command.src, cap), finish, describe)


def _stored_download(command: Union[DownloadBytes, DownloadFile], storage: Storage, limit: Optional[int],
                     download_timeout: float) -> Step:
    destination = command.dst if isinstance(command, DownloadFile) else None
    download = storage.receive(destination, limit=limit)

    def finish(result: ExeScriptCommandResult, index: int) -> CommandResult:
        data = download.result(download_timeout)
        if isinstance(command, DownloadFile):
            return CommandResult(command=command, index=index, data=command.dst)
        return CommandResult(command=command, index=index,
                             data=decode_download(command, index, bytes(data), None))

    def describe(result: ExeScriptCommandResult) -> str:
        return f"could not download {command.src}: {_said(result)}"

    return Step(command, transfer_command(container_url(command.src), download.url), finish, describe, download)


def _downloaded(command: Union[DownloadBytes, DownloadFile], index: int, raw: bytes) -> CommandResult:
    if isinstance(command, DownloadFile):
        destination: Path = command.dst
        try:
            if destination.parent != Path():
                destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(raw)
        except OSError as exc:
            raise CommandExecutionError(f"cannot write the local file {destination}: {exc.strerror}") from exc
        return CommandResult(command=command, index=index, data=destination)
    return CommandResult(command=command, index=index, data=decode_download(command, index, raw, None))
