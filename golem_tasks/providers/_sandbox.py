"""The local sandbox: where a session's /golem lives on this machine, and the command
lines that run a program in it.

Two kinds:

``bwrap``
    bubblewrap builds a private root: every top-level entry of the host's ``/`` is
    bound read-only; ``/proc`` and ``/dev`` are fresh; ``/tmp`` and ``/run`` are private
    tmpfs (so the host's /tmp, including venvs there, is not visible, and neither are the
    daemon sockets in /run); the session directory is bound read-write at ``/golem``
    (each writable directory also as its own mount point, as on a Golem VM). New pid
    and IPC namespaces, and no network unless asked for. This keeps mistakes away from
    the host; it is not a hardened boundary for hostile code (the host's files stay
    readable).
``host``
    The program runs on the host, in the session's work directory. Arguments (and
    ``Run.env`` values) that start with ``/golem/`` are rewritten to the session
    directory; paths written *inside* scripts or config files are not, and the program
    can reach the whole host and the network.

A session directory is laid out like ``/golem``: ``<session>/input`` is ``/golem/input``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import shutil
import stat
import subprocess
import tempfile
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ..commands import GOLEM_DIRS
from ..errors import ConfigurationError

logger = logging.getLogger(__name__)

KINDS = ("bwrap", "host")

#: The sandbox directory as programs see it.
GOLEM_ROOT = "/golem"

#: Host top-level entries the bwrap sandbox replaces with its own.
_NOT_BOUND = frozenset({"proc", "dev", "tmp", "run", "golem"})

#: Environment variables kept from the requestor's environment only in part:
#: credentials and settings of golem_tasks itself do not belong to the program, and
#: the working directory variables would name the requestor's directory.
_DROPPED_PREFIXES = ("YAGNA_", "GOLEM_")
_DROPPED_NAMES = frozenset({"PWD", "OLDPWD"})

_BWRAP_INSTALL = "install bubblewrap (apt-get install bubblewrap)"
_BWRAP_FIX = f"{_BWRAP_INSTALL} or use LocalProvider(sandbox='host')"


def check_volumes(volumes: Iterable[str]) -> Tuple[str, ...]:
    """Validate declared volumes; return the writable directories (the /golem ones first).

    Volumes must lie under /golem, as in Golem VM images (``VOLUME /golem/resource``),
    so that one session directory holds everything the program may write.
    """
    if isinstance(volumes, str):
        raise ConfigurationError(f"volumes must be a sequence of paths, got the string {volumes!r}: "
                                 f"use volumes=({volumes!r},)")
    found: List[str] = list(GOLEM_DIRS)
    for volume in volumes:
        path = os.fspath(volume)
        if not isinstance(path, str) or posixpath.normpath(path) != path or \
                not path.startswith(GOLEM_ROOT + "/"):
            raise ConfigurationError(
                f"volume {volume!r} must be a normalised absolute path under /golem/, "
                f"for example '/golem/resource'")
        if path not in found:
            found.append(path)
    return tuple(found)


def to_host(remote: str, session_dir: str) -> Optional[str]:
    """The host path of ``remote`` (a normalised /golem path), None when it is not under /golem."""
    if remote == GOLEM_ROOT:
        return session_dir
    if not remote.startswith(GOLEM_ROOT + "/"):
        return None
    return os.path.join(session_dir, remote[len(GOLEM_ROOT) + 1:])


def _rewrite(value: str, session_dir: str) -> str:
    # Only values that are /golem paths: '/golemish' or '--out=/golem/x' are left alone.
    host = to_host(value, session_dir)
    return value if host is None else host


def _host_root() -> List[str]:
    """bwrap arguments that show the host's / read-only, entry by entry.

    ``--ro-bind / /`` would make the new root read-only, and the /golem mount point could
    then not be created; binding each entry keeps the root a private tmpfs instead.
    """
    argv: List[str] = []
    for name in sorted(os.listdir("/")):
        if name in _NOT_BOUND:
            continue
        path = "/" + name
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        else:
            # -try: an entry that vanished since listdir() is not an error.
            argv += ["--ro-bind-try", path, path]
    return argv


def bwrap_prefix(bwrap: str, session_dir: str, writable: Sequence[str], network: bool) -> List[str]:
    """The bwrap command line, up to and including ``--``; the program's argv follows."""
    argv = [bwrap, "--unshare-pid", "--unshare-ipc", "--die-with-parent"]
    if not network:
        argv.append("--unshare-net")
    argv += _host_root()
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run"]
    if network:
        # /etc/resolv.conf often links to systemd-resolved's file: keep name lookups working.
        argv += ["--ro-bind-try", "/run/systemd/resolve", "/run/systemd/resolve"]
    argv += ["--bind", session_dir, GOLEM_ROOT]
    for remote in sorted(writable):  # sorted: a parent is mounted before a volume inside it
        argv += ["--bind", str(to_host(remote, session_dir)), remote]
    return argv + ["--chdir", GOLEM_ROOT + "/work", "--"]


def host_argv(args: Sequence[str], session_dir: str) -> List[str]:
    """The program's argv for the host sandbox, /golem paths rewritten."""
    return [_rewrite(arg, session_dir) for arg in args]


def environment(kind: str, session_dir: str, extra: Mapping[str, str]) -> Dict[str, str]:
    """The program's environment: the requestor's, cleaned, plus GOLEM_* and ``extra``."""
    env = {key: value for key, value in os.environ.items()
           if key not in _DROPPED_NAMES and not key.startswith(_DROPPED_PREFIXES)}
    if kind == "bwrap":
        # The host's TMPDIR does not exist in the sandbox, whose /tmp is private.
        env.pop("TMPDIR", None)
    base = session_dir if kind == "host" else GOLEM_ROOT
    env.update(GOLEM_INPUT=os.path.join(base, "input"), GOLEM_OUTPUT=os.path.join(base, "output"),
               GOLEM_WORK=os.path.join(base, "work"))
    env["PWD"] = env["GOLEM_WORK"]
    for key, value in extra.items():
        env[key] = _rewrite(value, session_dir) if kind == "host" else value
    return env


def make_session_dir(root: str, name: str, writable: Sequence[str]) -> str:
    """Create a fresh session directory under ``root`` holding every writable directory."""
    # mkdtemp: a kept directory of an earlier run under the same root is never reused.
    session_dir = tempfile.mkdtemp(prefix=name + "-", dir=root)
    for remote in writable:
        os.makedirs(str(to_host(remote, session_dir)), exist_ok=True)
    return session_dir


def remove_tree(path: str) -> None:
    """Delete a session directory (or the root), also when a program made directories
    in it read-only. Logs a warning when that still fails."""
    shutil.rmtree(path, ignore_errors=True)
    if not os.path.lexists(path):
        return
    _make_owner_writable(path)
    for directory, subdirs, _ in os.walk(path):
        for name in subdirs:
            _make_owner_writable(os.path.join(directory, name))
    shutil.rmtree(path, ignore_errors=True)
    if os.path.lexists(path):
        logger.warning("could not remove the sandbox directory %s", path)


def _make_owner_writable(directory: str) -> None:
    # Never chmod through a symlink: it could point at any host directory.
    if not os.path.islink(directory):
        with contextlib.suppress(OSError):
            os.chmod(directory, stat.S_IMODE(os.lstat(directory).st_mode) | stat.S_IRWXU)


def probe_bwrap(network: bool) -> Tuple[Optional[str], str]:
    """Try bwrap with the options sessions will use. Returns (path to bwrap, reason);
    the path is None when bwrap cannot be used here, and the reason says why."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None, "bwrap is not on PATH"
    with tempfile.TemporaryDirectory(prefix="golem_tasks-probe-") as probe_dir:
        session_dir = make_session_dir(probe_dir, "probe", GOLEM_DIRS)
        argv = bwrap_prefix(bwrap, session_dir, GOLEM_DIRS, network) + ["/bin/sh", "-c", "exit 0"]
        try:
            # Containers often forbid the namespaces bwrap needs; only running it tells.
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
                                  check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            return None, f"{bwrap} could not be run ({exc})"
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return None, f"{bwrap} cannot create a sandbox here ({lines[-1] if lines else done.returncode})"
    return bwrap, f"{bwrap} works here"


def choose(requested: Optional[str], network: bool) -> Tuple[str, Optional[str], str]:
    """Pick the sandbox kind. Returns (kind, path to bwrap or None, reason for the log).

    Raises:
        ConfigurationError: ``requested`` is unknown, or is "bwrap" and bwrap does not work.
    """
    if requested not in (None,) + KINDS:
        raise ConfigurationError(f"sandbox must be None (automatic), 'bwrap' or 'host', got {requested!r}")
    if requested == "host":
        return "host", None, "sandbox='host' was asked for"
    bwrap, reason = probe_bwrap(network)
    if bwrap is not None:
        return "bwrap", bwrap, reason
    if requested == "bwrap":
        raise ConfigurationError(f"sandbox='bwrap' was asked for, but {reason}: {_BWRAP_FIX}")
    return "host", None, (f"{reason}; programs run unsandboxed on the host, with network access "
                          f"({_BWRAP_INSTALL} to sandbox them)")
