"""The real yagna daemon (``yagna service run`` from the ``golem-node`` wheel), offline.

Usage::

    with YagnaDaemon(workdir) as daemon:
        print(daemon.settings.client_environ())   # YAGNA_API_URL, YAGNA_APPKEY
        node_id = daemon.create_identity("provider-0")

The daemon runs in its own process group and is always stopped by :meth:`stop` (also
from ``__exit__``): SIGTERM to the group, then SIGKILL after a grace period. If this
Python process dies without stopping it (SIGKILL), the kernel kills the daemon too
(Linux, ``PR_SET_PDEATHSIG``: see :mod:`._parent_death`).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import time
from typing import IO, Any, Optional

import attrs
import requests

from .parent_death import Spawner
from .ports import free_port
from ..errors import DaemonNotInstalled, LocalNetError
from .settings import DEFAULT_NETWORK, DaemonSettings

logger = logging.getLogger(__name__)

#: Poll interval while waiting for the REST API; the daemon is usually up in 0.3-1.2 s.
_POLL_INTERVAL = 0.05


def find_yagna(binary: Optional[str] = None) -> str:
    """Path of the ``yagna`` binary.

    Looked up in order: ``binary``, ``$YAGNA_BIN``, the ``golem-node`` package, ``PATH``.
    ``golem-node`` comes first because ``PATH`` may hold a shell shim (pyenv) that
    costs start-up time.

    Raises:
        DaemonNotInstalled: none found.
    """
    candidate = binary or os.environ.get("YAGNA_BIN")
    if candidate:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
        raise DaemonNotInstalled(f"yagna binary {candidate!r} is not an executable file")
    try:
        # golem-node keeps its finder in __main__ (guarded, safe to import).
        from golem_node.__main__ import find_yagna_bin

        return str(find_yagna_bin())
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("yagna")
    if found:
        return found
    raise DaemonNotInstalled(
        "no yagna binary: pip install 'golem_tasks[localnet]' (installs golem-node)"
    )


def _tail(path: str, lines: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class YagnaDaemon:
    """One ``yagna service run`` process with its data under ``workdir``.

    Args:
        workdir: an existing directory owned by the caller; the daemon keeps ``data/``
            and ``yagna.log`` there and runs with it as cwd (yagna reads ``./.env``).
        rpc_url: Ethereum JSON-RPC for ``network`` (a :class:`ChainStub`); without it
            allocations fail.
        network: the payment network whose RPC is ``rpc_url`` (hoodi by default).
        app_key: the requestor app key; random when omitted.
        api_port, gsb_port: fixed ports; free ones are picked (and re-picked if the
            daemon loses the race for them) when omitted.
        binary: the yagna binary; see :func:`find_yagna`.
        startup_timeout: seconds to wait for the REST API.
        debug: daemon log level debug.
    """

    def __init__(
        self,
        workdir: str,
        *,
        rpc_url: Optional[str] = None,
        network: str = DEFAULT_NETWORK,
        app_key: Optional[str] = None,
        api_port: Optional[int] = None,
        gsb_port: Optional[int] = None,
        binary: Optional[str] = None,
        startup_timeout: float = 30.0,
        debug: bool = False,
    ) -> None:
        if startup_timeout <= 0:
            raise ValueError("startup_timeout must be positive")
        self.binary = find_yagna(binary)
        self.workdir = os.path.abspath(workdir)
        self._fixed_ports = api_port is not None or gsb_port is not None
        gsb = gsb_port or free_port()
        self.settings = DaemonSettings(
            data_dir=os.path.join(self.workdir, "data"),
            api_port=api_port or free_port(avoid={gsb}),
            gsb_port=gsb,
            app_key=app_key or secrets.token_hex(16),
            rpc_url=rpc_url,
            network=network,
            debug=debug,
        )
        self.log_path = os.path.join(self.workdir, "yagna.log")
        self.startup_timeout = startup_timeout
        #: Seconds from spawning the process to the first authorised REST answer.
        self.startup_seconds: Optional[float] = None
        self._process: Optional[subprocess.Popen[bytes]] = None
        self._spawner: Optional[Spawner] = None
        self._log: Optional[IO[bytes]] = None
        self._http = requests.Session()
        self._http.trust_env = False  # a user's HTTP(S)_PROXY must not catch loopback calls

    # -- lifecycle -----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> Optional[int]:
        return self._process.pid if self._process else None

    def start(self) -> "YagnaDaemon":
        """Start the daemon and wait until its REST API accepts the app key.

        Raises:
            LocalNetError: it exited or did not answer within ``startup_timeout``; the
                process has been stopped and the message ends with the log tail.
        """
        if self.running:
            raise RuntimeError("daemon already running")
        attempts = 1 if self._fixed_ports else 3
        for attempt in range(attempts):
            try:
                self._spawn_and_wait()
                return self
            except LocalNetError:
                self.stop()
                lost_port = "Address already in use" in _tail(self.log_path, 40)
                if not lost_port or attempt == attempts - 1:
                    raise
                logger.info("daemon lost its port to another process; retrying with new ports")
                self._repick_ports()
        raise AssertionError("unreachable")  # pragma: no cover

    def _repick_ports(self) -> None:
        gsb = free_port()
        self.settings = attrs.evolve(self.settings, gsb_port=gsb, api_port=free_port(avoid={gsb}))

    def _spawn_and_wait(self) -> None:
        os.makedirs(self.settings.data_dir, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - the daemon writes it until stop()
        started = time.monotonic()
        self._spawner = self._spawner or Spawner("yagna")
        self._process = self._spawner.popen(
            [self.binary, "service", "run", "--disable-metrics-push"],
            cwd=self.workdir,
            env=self.settings.daemon_environ(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop() signals the whole group
        )
        deadline = started + self.startup_timeout
        while True:
            if self._process.poll() is not None:
                raise self._failure(
                    f"yagna exited with code {self._process.returncode} during start-up"
                )
            if self._answers():
                self.startup_seconds = time.monotonic() - started
                logger.info("yagna up on %s in %.2f s", self.settings.api_url, self.startup_seconds)
                return
            if time.monotonic() > deadline:
                raise self._failure(f"yagna REST API not up after {self.startup_timeout:.0f} s")
            time.sleep(_POLL_INTERVAL)

    def _answers(self) -> bool:
        try:
            response = self._http.get(
                f"{self.settings.api_url}/me",
                headers={"Authorization": f"Bearer {self.settings.app_key}"},
                timeout=2,
            )
        except requests.RequestException:
            return False
        # 401 right after start: the autoconfigured key is not stored yet.
        return response.status_code == 200

    def _failure(self, message: str) -> LocalNetError:
        return LocalNetError(f"{message}; log {self.log_path}:\n{_tail(self.log_path, 20)}")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the daemon and wait for it. Idempotent.

        First ``yagna service shutdown`` over GSB (0.05 s, against 0.6 s for SIGTERM),
        then SIGTERM to the process group, then SIGKILL, each after ``timeout`` s.
        SIGKILL is needed when the daemon is still in net init, where yagna ignores
        SIGTERM, or when it is stopped (SIGSTOP).
        """
        process, self._process = self._process, None
        try:
            if process is not None and process.poll() is None:
                self._shut_down(process, timeout)
            if process is not None:
                # Any child left in the group (the daemon starts none today) goes too.
                self._signal_group(process, signal.SIGKILL)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
            if self._spawner is not None and (process is None or process.poll() is not None):
                self._spawner.close()  # its thread dying would kill a daemon still running
                self._spawner = None

    def _shut_down(self, process: "subprocess.Popen[bytes]", timeout: float) -> None:
        try:
            subprocess.run(
                [self.binary, "service", "shutdown"],
                cwd=self.workdir,
                env=self.settings.cli_environ(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
            process.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            logger.info("yagna did not shut down over GSB; sending SIGTERM")
        self._signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("yagna ignored SIGTERM for %.1f s; killing it", timeout)
            self._signal_group(process, signal.SIGKILL)
            process.wait()

    @staticmethod
    def _signal_group(process: "subprocess.Popen[bytes]", sig: int) -> None:
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def restart(self) -> None:
        """Stop and start again, keeping data, ports and keys.

        Needed after :meth:`create_identity`: the net layer binds ``/net/<id>`` for the
        identities that exist at start-up only.
        """
        self.stop()
        self.start()

    def __enter__(self) -> "YagnaDaemon":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def close(self) -> None:
        """Stop the daemon and close the HTTP session."""
        self.stop()
        self._http.close()

    # -- CLI -----------------------------------------------------------------------

    def cli(self, *args: str, timeout: float = 30.0) -> Any:
        """Run ``yagna --json <args>`` against this daemon and return the parsed output.

        Raises:
            LocalNetError: non-zero exit, or an ``{"Err": ...}`` answer.
        """
        result = subprocess.run(  # noqa: PLW1510 - the exit code is checked below, with stderr
            [self.binary, "--json", *args],
            cwd=self.workdir,
            env=self.settings.cli_environ(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise LocalNetError(
                f"yagna {' '.join(args)} exited with {result.returncode}: "
                f"{result.stderr.decode(errors='replace')}"
            )
        out = result.stdout.decode().strip()
        value = json.loads(out) if out else None
        if isinstance(value, dict) and "Err" in value:
            raise LocalNetError(f"yagna {' '.join(args)} failed: {value['Err']}")
        if isinstance(value, dict) and set(value) == {"Ok"}:
            return value["Ok"]
        return value

    def create_identity(self, alias: str, *, private_key: Optional[str] = None) -> str:
        """Create an identity (no password) and return its node id (``0x...``).

        The daemon must be :meth:`restart`-ed before the network routes to it.
        """
        args = ["id", "create", alias, "--no-password"]
        if private_key:
            args += ["--from-private-key", private_key]
        return str(self.cli(*args)["nodeId"])

    def create_app_key(self, name: str, identity: Optional[str] = None) -> str:
        """Create an app key for ``identity`` (default: the default identity)."""
        args = ["app-key", "create", name]
        if identity:
            args += ["--id", identity]
        return str(self.cli(*args))

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the daemon log, for error messages."""
        return _tail(self.log_path, lines)
