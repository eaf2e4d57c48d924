"""The local sandbox: where a session's /golem lives on this machine, what its commands
see, and the bubblewrap command line that holds a session's agent (see :mod:`._agent`).

Two kinds:

``bwrap``
    One bubblewrap sandbox per session, for the session's whole life. It builds a
    private root: every top-level entry of the host's ``/`` is bound read-only; ``/proc``
    and ``/dev`` are fresh; ``/tmp``, ``/run`` and ``/root`` are private tmpfs (so the
    host's /tmp, including venvs there, is not visible, nor are the daemon sockets in
    /run or the files in root's home); the session directory is bound read-write at
    ``/golem`` (each writable directory also as its own mount point, as on a Golem VM);
    mounts are bind mounts. New pid and IPC namespaces, and no network unless asked
    for. With ``outbound=`` the sandbox has no network either (its own loopback
    only), and its agent forwards a port on that loopback to the requestor's filtering
    proxy (:mod:`._outbound_proxy`): the declared hosts are the only ones reachable,
    whatever a program does. With an image, commands run chrooted in the image's root file system instead
    of the host's. This keeps mistakes away from the host; it is not a hardened boundary
    for hostile code (the host's files stay readable).
``host``
    The program runs on the host, in the session's work directory. Arguments (and
    ``Run.env`` values) that start with ``/golem/`` or a mount's path are rewritten to
    the host directories; paths written *inside* scripts or config files are not, and
    the program can reach the whole host and the network. With ``outbound=`` its
    ``http_proxy``/``https_proxy`` name the filtering proxy, which refuses other hosts,
    but that is advice: a program that ignores the variables connects anywhere.

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
import sys
import tempfile
from typing import AbstractSet, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ..commands import GOLEM_DIRS
from ..errors import ConfigurationError
from .mounts import Mount

logger = logging.getLogger(__name__)

KINDS = ("bwrap", "host")

#: The sandbox directory as programs see it.
GOLEM_ROOT = "/golem"

#: Host top-level entries the bwrap sandbox replaces with its own.
_NOT_BOUND = frozenset({"proc", "dev", "tmp", "run", "golem"})

#: A Golem VM's PATH (Debian's default for root), whatever the requestor's is.
VM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Where an image's root file system is assembled inside the bwrap sandbox; the agent
#: chroots into it, so commands never see this path.
IMAGE_ROOT = "/.golem_tasks-image"

#: Where a sandbox with ``outbound=`` sees the filtering proxy's unix socket (on its
#: private /tmp, so the same path before and after the agent's chroot into an image).
RELAY_SOCKET = "/tmp/.golem_tasks-outbound.sock"

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


class Layout:
    """Where a session's paths live on the host: its /golem directory and its mounts.

    Attributes:
        session_dir: the host directory shown as /golem.
        writable: the /golem directories programs and sends may write.
        mounts: host directories at other paths.
    """

    def __init__(self, session_dir: str, writable: Sequence[str], mounts: Sequence[Mount] = ()) -> None:
        self.session_dir = session_dir
        self.writable = tuple(writable)
        self.mounts = tuple(mounts)
        # Longest target first: a mount inside /golem wins over /golem itself.
        self._roots = sorted([(GOLEM_ROOT, session_dir)] + [(m.target, m.source) for m in self.mounts],
                             key=lambda pair: len(pair[0]), reverse=True)

    def root_of(self, remote: str) -> Optional[Tuple[str, str]]:
        """(sandbox path, host directory) of the /golem or mount that holds ``remote``."""
        for target, source in self._roots:
            if remote == target or remote.startswith(target + "/"):
                return target, source
        return None

    def to_host(self, remote: str) -> Optional[str]:
        """The host path of ``remote``, None when it is neither under /golem nor in a mount."""
        found = self.root_of(remote)
        if found is None:
            return None
        target, source = found
        return source if remote == target else os.path.join(source, remote[len(target) + 1:])

    def rewrite(self, value: str) -> str:
        """``value`` with a leading sandbox path mapped to the host (the host sandbox's
        path mapping); '/golemish' or '--out=/golem/x' are left alone."""
        host = self.to_host(value)
        return value if host is None else host

    def writable_dirs(self) -> Tuple[str, ...]:
        """Every directory a send may target: /golem ones first, then writable mounts."""
        return self.writable + tuple(m.target for m in self.mounts if m.writable)


def _host_root(hidden: AbstractSet[str] = _NOT_BOUND) -> List[str]:
    """bwrap arguments that show the host's / read-only, entry by entry.

    ``--ro-bind / /`` would make the new root read-only, and the /golem mount point could
    then not be created; binding each entry keeps the root a private tmpfs instead.
    """
    return _entries("/", "/", hidden)


def _entries(source_root: str, target_root: str, hidden: AbstractSet[str]) -> List[str]:
    argv: List[str] = []
    for name in sorted(os.listdir(source_root)):
        if name in hidden:
            continue
        path = os.path.join(source_root, name)
        target = posixpath.join(target_root, name)
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), target]
        else:
            # -try: an entry that vanished since listdir() is not an error.
            argv += ["--ro-bind-try", path, target]
    return argv


def _interpreter_binds() -> List[str]:
    """The agent's interpreter, shown again where the sandbox hides its directory
    (pyenv keeps Python under /root, which is a private tmpfs in the sandbox)."""
    prefix = os.path.realpath(sys.base_prefix)
    top = "/" + prefix.strip("/").split("/")[0]
    if top in ("/root", "/tmp", "/run"):
        return ["--ro-bind", prefix, prefix]
    return []


def bwrap_argv(bwrap: str, layout: Layout, network: bool, image_root: Optional[str] = None,
               outbound_socket: Optional[str] = None) -> List[str]:
    """The bwrap command line of a session's sandbox, up to and including ``--``.

    The sandbox root is a private tmpfs showing the host's entries read-only (the agent
    runs the host's Python). With ``image_root`` (an unpacked image on the host), the
    image is assembled at :data:`IMAGE_ROOT` with /golem and the mounts inside it, and
    the agent gets CAP_SYS_CHROOT to enter it (and drops it right after).
    ``outbound_socket`` (the filtering proxy's unix socket) is shown at
    :data:`RELAY_SOCKET`, where the agent's forwarder reaches it.
    """
    argv = [bwrap, "--unshare-pid", "--unshare-ipc"]
    if not network:
        argv.append("--unshare-net")
    argv += _host_root(_NOT_BOUND | {"root"})
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run", "--tmpfs", "/root"]
    argv += _interpreter_binds()
    if network:
        # /etc/resolv.conf often links to systemd-resolved's file: keep name lookups working.
        argv += ["--ro-bind-try", "/run/systemd/resolve", "/run/systemd/resolve"]
    base = ""
    if image_root is not None:
        base = IMAGE_ROOT
        argv += _entries(image_root, IMAGE_ROOT, frozenset({"proc", "dev", "tmp", "golem"}))
        argv += ["--proc", IMAGE_ROOT + "/proc", "--dev", IMAGE_ROOT + "/dev", "--tmpfs", IMAGE_ROOT + "/tmp"]
        if os.getuid() != 0:
            argv.append("--unshare-user")  # capabilities inside a user namespace of our own
        argv += ["--cap-add", "CAP_SYS_CHROOT", "--cap-add", "CAP_SETPCAP"]
    argv += ["--bind", layout.session_dir, base + GOLEM_ROOT]
    for remote in sorted(layout.writable):  # sorted: a parent is mounted before a volume inside it
        argv += ["--bind", str(to_host(remote, layout.session_dir)), base + remote]
    for mount in layout.mounts:
        argv += ["--bind" if mount.writable else "--ro-bind", mount.source, base + mount.target]
    if outbound_socket is not None:
        argv += ["--bind", outbound_socket, base + RELAY_SOCKET]
    return argv + ["--chdir", "/", "--"]


def environment(kind: str, layout: Layout, workdir: str, extra: Mapping[str, str],
                image_env: Optional[Mapping[str, str]] = None, pass_env: Sequence[str] = ()) -> Dict[str, str]:
    """What a command sees: the VM's environment, never the requestor's.

    Without an image: :data:`VM_PATH`, ``HOME``, ``LANG=C.UTF-8``; with one, the
    image's environment. Then the GOLEM_* paths, ``PWD``, the variables named in
    ``pass_env`` taken from the requestor's environment, and ``extra`` (the batch's
    ``env=``) last. In the host sandbox /golem (and mount) paths are host paths.
    """
    host = kind == "host"
    if image_env is not None:
        env = dict(image_env)
    else:
        home = os.path.join(layout.session_dir, "home") if host else "/root"
        env = {"PATH": VM_PATH, "HOME": home, "LANG": "C.UTF-8"}
    base = layout.session_dir if host else GOLEM_ROOT
    env.update(GOLEM_INPUT=os.path.join(base, "input"), GOLEM_OUTPUT=os.path.join(base, "output"),
               GOLEM_WORK=os.path.join(base, "work"), PWD=workdir)
    for name in pass_env:
        if name in os.environ:
            env[name] = os.environ[name]
    for key, value in extra.items():
        env[key] = layout.rewrite(value) if host else value
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
        argv = bwrap_argv(bwrap, Layout(session_dir, GOLEM_DIRS), network) + ["/bin/sh", "-c", "exit 0"]
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
    return "host", None, reason  # what the host sandbox means, and the fix, the provider's warning says
