"""The real yagna daemon starts offline on loopback, answers, and is always stopped."""

from __future__ import annotations

import os
import signal
import socket
from typing import Iterator

import pytest
import requests

from golem_tasks.localnet.daemon.ports import free_port
from golem_tasks.localnet.daemon.process import YagnaDaemon, find_yagna
from golem_tasks.localnet.errors import DaemonNotInstalled, LocalNetError

from .conftest import assert_no_daemon_left, assert_no_dns_attempts, sockets_of

pytestmark = pytest.mark.slow


@pytest.fixture
def daemon(yagna_binary: str, tmp_path: "os.PathLike[str]") -> Iterator[YagnaDaemon]:
    d = YagnaDaemon(str(tmp_path), binary=yagna_binary)
    try:
        yield d.start()
    finally:
        d.close()
        assert_no_daemon_left(d.settings.data_dir)


def _get(daemon: YagnaDaemon, path: str, key: str = "") -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with requests.Session() as http:
        http.trust_env = False
        return http.get(daemon.settings.api_url + path, headers=headers, timeout=10)


def test_starts_offline_answers_and_stops(daemon: YagnaDaemon) -> None:
    assert daemon.startup_seconds is not None  # its figure: benchmarks/bench_latency.py
    me = _get(daemon, "/me", daemon.settings.app_key)
    assert me.status_code == 200 and me.json()["identity"].startswith("0x")
    assert _get(daemon, "/me").status_code == 401
    assert _get(daemon, "/me", "wrong-key").status_code == 401
    assert _get(daemon, "/version/get").status_code == 200

    tcp, udp = sockets_of(daemon.pid or 0)
    loopback = "0100007F"  # 127.0.0.1 in /proc/net/tcp byte order
    assert tcp and all(address.split(":")[0] == loopback for address in tcp), tcp
    assert udp == [], f"UDP sockets (DNS look-ups?) {udp}"
    assert_no_dns_attempts(daemon.log_path)

    pid, port = daemon.pid, daemon.settings.api_port
    daemon.stop()
    assert not daemon.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid or 0, 0)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_identities_and_app_keys_survive_a_restart(daemon: YagnaDaemon) -> None:
    node = daemon.create_identity("provider-x")
    key = daemon.create_app_key("provider-x", node)
    first_pid = daemon.pid
    daemon.restart()
    assert daemon.pid != first_pid
    me = _get(daemon, "/me", key)
    assert me.status_code == 200 and me.json()["identity"] == node


def test_sigkill_when_sigterm_is_not_enough(daemon: YagnaDaemon) -> None:
    # A stopped process cannot act on SIGTERM; stop() must escalate to SIGKILL.
    os.kill(daemon.pid or 0, signal.SIGSTOP)
    daemon.stop(timeout=0.5)
    assert not daemon.running  # a stopped process ignores SIGTERM: only SIGKILL ended it


def test_start_failure_is_reported_with_the_log(
    yagna_binary: str, tmp_path: "os.PathLike[str]"
) -> None:
    # Occupy the REST port: the daemon cannot bind it and must fail clearly, not hang.
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        daemon = YagnaDaemon(
            str(tmp_path),
            binary=yagna_binary,
            api_port=port,
            gsb_port=free_port(),
            startup_timeout=20,
        )
        with pytest.raises(LocalNetError, match="yagna"):
            daemon.start()
    assert not daemon.running
    assert_no_daemon_left(daemon.settings.data_dir)


def test_missing_binary_is_a_clear_error() -> None:
    with pytest.raises(DaemonNotInstalled, match="not an executable"):
        find_yagna("/nonexistent/yagna")
