"""Fixtures for the real-daemon tests: skip without golem-node, and prove cleanup.

Every fixture that starts a daemon checks on teardown that no process started with its
data directory survives (found through ``/proc/<pid>/environ``, so a daemon that lost
track of its pid is found too).
"""

from __future__ import annotations

import os
from typing import Dict, Iterator, List, Set, Tuple

import pytest

from golem_tasks.localnet.daemon.process import find_yagna
from golem_tasks.localnet.errors import DaemonNotInstalled
from golem_tasks.localnet.provider.negotiator import Negotiator
from golem_tasks.localnet.network import LocalNet

from .requestor import PlainRequestor


@pytest.fixture(scope="session")
def yagna_binary() -> str:
    try:
        return find_yagna()
    except DaemonNotInstalled as exc:
        pytest.skip(f"golem-node is not installed ({exc}); pip install 'golem_tasks[localnet]'")


@pytest.fixture(scope="session")
def exeunit_ready(yagna_binary: str) -> str:
    """The yagna binary, when local providers can run too (their exe-units need flatbuffers)."""
    pytest.importorskip(
        "flatbuffers",
        reason="local exe-units need flatbuffers: pip install 'golem_tasks[localnet]'",
    )
    return yagna_binary


def processes_using(data_dir: str) -> List[int]:
    """Pids of live processes whose environment has ``YAGNA_DATADIR=<data_dir>``."""
    needle = f"YAGNA_DATADIR={data_dir}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ and state != b"Z":
            found.append(int(entry))
    return found


#: What the daemon logs when it tries a name look-up (research/yagna-offline.md).
DNS_SIGNS = ("dns entry", "no record found", "host not found", "SRV record", "Failed to resolve")


def assert_no_dns_attempts(log_path: str) -> None:
    with open(log_path, errors="replace") as f:
        suspicious = [line for line in f if any(sign in line for sign in DNS_SIGNS)]
    assert not suspicious, f"the daemon tried name look-ups: {suspicious[:3]}"


def assert_no_daemon_left(data_dir: str) -> None:
    left = processes_using(data_dir)
    assert not left, f"yagna processes survived the fixture: {left}"


def sockets_of(pid: int) -> Tuple[List[str], List[str]]:
    """(local TCP addresses, UDP local addresses) of the sockets ``pid`` holds."""
    inodes: Set[str] = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found: Dict[str, List[str]] = {"tcp": [], "udp": []}
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        with open(f"/proc/{pid}/net/{proto}") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    found[proto[:3]].append(fields[1])
    return found["tcp"], found["udp"]


@pytest.fixture(scope="module")
def localnet(exeunit_ready: str) -> Iterator[LocalNet]:
    """Three providers: ``provider-0`` accepts, ``provider-1`` rejects every proposal,
    ``provider-2`` rejects every agreement."""
    negotiators = [
        Negotiator(),
        Negotiator(reject_proposals="busy with other work"),
        Negotiator(reject_agreements="changed my mind"),
    ]
    net = LocalNet(providers=3, negotiators=negotiators, binary=exeunit_ready)
    net.start()
    data_dir = net.daemon.settings.data_dir if net.daemon else ""
    try:
        yield net
    finally:
        net.stop()
        assert_no_daemon_left(data_dir)


@pytest.fixture
def requestor(localnet: LocalNet) -> Iterator[PlainRequestor]:
    assert localnet.requestor is not None
    with PlainRequestor(localnet.api_url, localnet.requestor.app_key) as client:
        yield client
