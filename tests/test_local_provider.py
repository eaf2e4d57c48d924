"""LocalProvider: sandbox choice, runs, transfers, path safety, timeouts, cancel, cleanup.

Most tests run against both sandbox kinds. Scripts refer to the sandbox through
$GOLEM_INPUT/$GOLEM_OUTPUT/$GOLEM_WORK, which works in both (the host kind does not
rewrite paths written inside scripts).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import marshal
import os
import random
import select
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, List, Optional

import pytest

from golem_tasks.commands import (
    DownloadBytes,
    DownloadFile,
    DownloadJson,
    Run,
    SendBytes,
    SendFile,
    SendJson,
)
from golem_tasks.errors import (
    BatchCancelled,
    BatchTimeoutError,
    CommandExecutionError,
    ConfigurationError,
    ProviderError,
)
from golem_tasks.providers import _process, _sandbox, local
from golem_tasks.providers.local import LocalProvider, LocalSession


@functools.lru_cache(maxsize=None)
def bwrap_problem() -> Optional[str]:
    """Why bwrap cannot be used here, or None when it can."""
    bwrap, reason = _sandbox.probe_bwrap(network=False)
    return None if bwrap else reason


@pytest.fixture(params=["host", "bwrap"])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "bwrap" and bwrap_problem():
        pytest.skip(f"bwrap sandbox unavailable: {bwrap_problem()}")
    return request.param


@pytest.fixture
def bwrap_only() -> None:
    if bwrap_problem():
        pytest.skip(f"bwrap sandbox unavailable: {bwrap_problem()}")


@pytest.fixture(params=["pidfd", "sigchld"])
def waiting(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How the agent learns that a command exited: a pidfd where the kernel has one, a
    SIGCHLD handler elsewhere. Both must behave the same."""
    if request.param == "pidfd" and not _pidfd_works():
        pytest.skip("pidfd_open is not available here")
    monkeypatch.setattr(local, "_AGENT_OVERRIDES", {"pidfd": request.param == "pidfd"})
    return str(request.param)


def _pidfd_works() -> bool:
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


@pytest.fixture
def provider(kind: str, waiting: str, tmp_path: Path):
    with LocalProvider(tmp_path / "root", sandbox=kind, volumes=("/golem/resource",)) as provider:
        yield provider


@pytest.fixture
def session(provider: LocalProvider):
    session = provider.engage()
    yield session
    session.release()


#: The interpreter outside any venv: a venv under /tmp is hidden by the sandbox's private /tmp.
PYTHON = os.path.realpath(sys.executable)


def sh(script: str, *args: str, check: bool = True, env: Optional[dict] = None) -> Run:
    return Run(("/bin/sh", "-c", script, "sh", *args), env=env, check=check)


def marker_pids(marker: str) -> List[int]:
    """Pids of live (non-zombie) processes whose command line contains ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != "Z":
            found.append(int(entry))
    return found


def sleep_count(pids: List[int]) -> int:
    """How many of ``pids`` are `sleep` processes (argv[0] ends in 'sleep')."""
    count = 0
    for pid in pids:
        try:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        count += argv0.endswith(b"sleep")
    return count


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    # Polling is the only way to observe processes outside our control.
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def unique_sleep() -> str:
    """A sleep duration (~30 s) nobody else uses: it marks our processes in /proc."""
    return f"30.{random.randrange(10**8):08d}"


class Background:
    """Runs ``session.execute`` in a thread and keeps what it returned or raised."""

    def __init__(self, session: LocalSession, commands: list, timeout: Optional[float] = None) -> None:
        self.error: Optional[BaseException] = None
        self.result = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(session, commands, timeout))
        self.thread.start()

    def _run(self, session: LocalSession, commands: list, timeout: Optional[float]) -> None:
        try:
            self.result = session.execute(commands, timeout=timeout)
        except BaseException as exc:  # noqa: B902 - handed to the test thread
            self.error = exc
        finally:
            self.done.set()


# -- running programs ----------------------------------------------------------------


def test_date_runs(session: LocalSession) -> None:
    [result] = session.execute([Run(("date", "+%Y"))], timeout=30)
    assert result.exit_code == 0
    assert result.stdout.strip() == time.strftime("%Y")


def test_failing_run_raises_and_stops_the_batch(session: LocalSession) -> None:
    commands = [sh("echo first"), sh("echo oops >&2; exit 3"), sh('touch "$GOLEM_WORK/after"')]
    with pytest.raises(CommandExecutionError) as caught:
        session.execute(commands, timeout=30)
    error = caught.value
    assert (error.exit_code, error.index, error.provider) == (3, 1, session.info.id)
    assert error.stderr == "oops\n"
    assert [r.stdout for r in error.results] == ["first\n"]
    assert not Path(session.directory, "work", "after").exists()


def test_check_false_returns_the_exit_code(session: LocalSession) -> None:
    results = session.execute([sh("exit 5", check=False), sh("echo next")], timeout=30)
    assert [r.exit_code for r in results] == [5, 0]
    assert not results[0].success


def test_stdout_and_stderr_are_captured_and_decoded(session: LocalSession) -> None:
    [result] = session.execute([sh(r"printf 'out\377\n'; printf 'err\n' >&2")], timeout=30)
    assert result.stdout == "out\ufffd\n"
    assert result.stderr == "err\n"


def test_output_keeps_only_the_last_bytes(session: LocalSession, monkeypatch, caplog) -> None:
    monkeypatch.setattr(_process, "OUTPUT_CAP", 1000)
    script = "import sys; sys.stdout.write('a' * 5000 + 'b' * 1000)"
    with caplog.at_level(logging.WARNING, logger=local.__name__):
        [result] = session.execute([Run((PYTHON, "-c", script))], timeout=30)
    assert result.stdout == "b" * 1000
    assert "dropped the first 5000 bytes of stdout" in caplog.text


def test_environment_is_the_vms_not_the_requestors(session: LocalSession, kind: str, monkeypatch) -> None:
    monkeypatch.setenv("YAGNA_APPKEY", "secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("PATH", "/opt/shims:" + os.environ["PATH"])
    [result] = session.execute([Run(("env",), env={"FOO": "bar"})], timeout=30)
    seen = dict(line.split("=", 1) for line in result.stdout.splitlines())
    base = "/golem" if kind == "bwrap" else session.directory
    home = "/root" if kind == "bwrap" else os.path.join(session.directory, "home")
    assert seen == {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": home, "LANG": "C.UTF-8",
        "GOLEM_INPUT": f"{base}/input", "GOLEM_OUTPUT": f"{base}/output", "GOLEM_WORK": f"{base}/work",
        "PWD": f"{base}/work", "FOO": "bar"}
    [result] = session.execute([sh('pwd; touch "$HOME/written"')], timeout=30)
    assert result.stdout.strip() == f"{base}/work"


def test_pass_env_passes_named_variables_only(kind: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    with LocalProvider(tmp_path, sandbox=kind, pass_env=("HTTP_PROXY", "NOT_SET_ANYWHERE")) as provider:
        script = 'echo "$HTTP_PROXY|$AWS_SECRET_ACCESS_KEY|${NOT_SET_ANYWHERE-unset}"'
        [result] = provider.engage().execute([sh(script)], timeout=30)
    assert result.stdout.strip() == "http://proxy.invalid:3128||unset"


def test_program_not_found(session: LocalSession) -> None:
    with pytest.raises(CommandExecutionError) as caught:
        session.execute([Run(("golem-tasks-no-such-program", "x"))], timeout=30)
    assert caught.value.exit_code == 127
    assert "golem-tasks-no-such-program" in str(caught.value)


def test_program_not_executable(session: LocalSession) -> None:
    commands = [SendBytes(b"#!/bin/sh\necho hi\n", "/golem/work/job.sh"), Run(("/golem/work/job.sh",))]
    with pytest.raises(CommandExecutionError) as caught:
        session.execute(commands, timeout=30)
    assert caught.value.exit_code == 127
    assert "/golem/work/job.sh" in str(caught.value) and "Permission denied" in str(caught.value)


def test_leftover_background_process_is_killed(session: LocalSession) -> None:
    marker = unique_sleep()
    # Waiting for the 30 s sleep that holds the pipe would end in the 20 s batch timeout.
    [result] = session.execute([sh(f"sleep {marker} & echo started")], timeout=20)
    assert result.stdout == "started\n"
    assert wait_for(lambda: not marker_pids(marker)), marker_pids(marker)


def test_a_setsid_child_is_killed_when_the_run_ends(session: LocalSession) -> None:
    """A program that left its session (and process group) still belongs to the command."""
    marker = unique_sleep()
    [result] = session.execute([sh(f"setsid sleep {marker} & sleep 0.2; echo started")], timeout=20)
    assert result.stdout == "started\n"
    assert wait_for(lambda: not marker_pids(marker)), marker_pids(marker)


def test_the_sandbox_lasts_for_the_session(session: LocalSession, kind: str) -> None:
    """One sandbox per session: /tmp (bwrap) and the agent survive between commands."""
    first, second = (session.execute([sh("echo $PPID; ls /tmp")], timeout=30)[0] for _ in range(2))
    assert first.stdout.split()[0] == second.stdout.split()[0]  # the same agent started both
    if kind == "bwrap":
        session.execute([sh("touch /tmp/kept")], timeout=30)
        [result] = session.execute([Run(("ls", "/tmp"))], timeout=30)
        assert result.stdout == "kept\n"


def test_release_tears_the_sandbox_down(bwrap_only, tmp_path: Path) -> None:
    with LocalProvider(tmp_path, sandbox="bwrap") as provider:
        session = provider.engage()
        session.execute([sh("true")], timeout=30)
        assert marker_pids(session.directory)  # bwrap, holding the session directory
        session.release()
        assert not marker_pids(session.directory)


REQUESTOR = """
import sys
from golem_tasks.commands import Run
from golem_tasks.providers.local import LocalProvider
provider = LocalProvider(sys.argv[1], sandbox=sys.argv[2])
session = provider.engage()
session.execute([Run(("/bin/sh", "-c", f"setsid sleep {sys.argv[3]} & sleep {sys.argv[3]} & echo started; wait"),
                     on_output=lambda stream, text: print(text, flush=True))])
"""


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_nothing_outlives_the_requestor(kind: str, tmp_path: Path, how: str) -> None:
    marker = unique_sleep()
    requestor = subprocess.Popen([sys.executable, "-c", REQUESTOR, str(tmp_path), kind, marker],
                                 stdout=subprocess.PIPE, text=True)
    try:
        assert requestor.stdout is not None and "started" in requestor.stdout.readline()
        assert wait_for(lambda: sleep_count(marker_pids(marker)) == 2)
        requestor.send_signal(getattr(signal, how))
        requestor.wait(timeout=30)
        assert wait_for(lambda: not marker_pids(marker)), marker_pids(marker)
    finally:
        requestor.kill()
        requestor.wait()
        requestor.stdout.close()  # type: ignore[union-attr]


# -- transfers -------------------------------------------------------------------------


def test_send_run_download_round_trip(session: LocalSession, tmp_path: Path) -> None:
    local_file = tmp_path / "job.txt"
    local_file.write_text("from a file")
    script = ('cat "$GOLEM_INPUT/task.json" > "$GOLEM_OUTPUT/result.json"; '
              'cat "$GOLEM_INPUT/raw.bin" "$GOLEM_INPUT/../resource/sub/job.txt" > "$GOLEM_OUTPUT/raw.bin"')
    results = session.execute([
        SendJson.of({"word": "hello"}, "/golem/input/task.json"),
        SendBytes(b"\x00\x01", "/golem/input/raw.bin"),
        SendFile(local_file, "/golem/resource/sub/job.txt"),
        sh(script),
        DownloadJson("/golem/output/result.json"),
        DownloadBytes("/golem/output/raw.bin"),
        DownloadFile("/golem/output/raw.bin", tmp_path / "new" / "dir" / "raw.bin"),
    ], timeout=30)
    assert results[4].data == {"word": "hello"}
    assert results[5].data == b"\x00\x01from a file"
    assert results[6].data == tmp_path / "new" / "dir" / "raw.bin"
    assert results[6].data.read_bytes() == b"\x00\x01from a file"


def test_download_json_parse_error(session: LocalSession) -> None:
    commands = [SendBytes(b"not json", "/golem/output/bad.json"), DownloadJson("/golem/output/bad.json")]
    with pytest.raises(CommandExecutionError, match="not valid JSON") as caught:
        session.execute(commands, timeout=30)
    assert caught.value.index == 1


def test_download_limit(session: LocalSession) -> None:
    session.execute([SendBytes(b"x" * 100, "/golem/output/big")], timeout=30)
    [result] = session.execute([DownloadBytes("/golem/output/big", limit=100)], timeout=30)
    assert result.data == b"x" * 100
    with pytest.raises(CommandExecutionError, match="larger than the download limit of 99 bytes"):
        session.execute([DownloadBytes("/golem/output/big", limit=99)], timeout=30)


def test_missing_files_are_named(session: LocalSession, tmp_path: Path) -> None:
    with pytest.raises(CommandExecutionError, match="/golem/output/nothing does not exist"):
        session.execute([DownloadBytes("/golem/output/nothing")], timeout=30)
    missing = tmp_path / "missing.txt"
    with pytest.raises(CommandExecutionError, match=f"cannot read the local file {missing}"):
        session.execute([SendFile(missing, "/golem/input/x")], timeout=30)


@pytest.mark.parametrize("dst", ["/golem/elsewhere/x", "/etc/x", "/golem/input"])
def test_send_outside_writable_dirs_is_refused(session: LocalSession, dst: str) -> None:
    writable = "/golem/input, /golem/output, /golem/work, /golem/resource"
    with pytest.raises(CommandExecutionError, match=writable):
        session.execute([SendBytes(b"x", dst)], timeout=30)
    assert not Path(session.directory, "elsewhere").exists()


def test_download_through_symlink_out_of_sandbox_is_refused(session: LocalSession, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("host secret")
    session.execute([Run(("ln", "-s", str(secret), "/golem/output/link"))], timeout=30)
    Path(session.directory, "output", "link2").symlink_to("/etc/passwd")
    for name in ("link", "link2"):
        with pytest.raises(CommandExecutionError, match="outside the sandbox"):
            session.execute([DownloadBytes(f"/golem/output/{name}")], timeout=30)


def test_send_through_symlinks_never_writes_outside(session: LocalSession, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("original")
    outside = tmp_path / "outside"
    outside.mkdir()
    Path(session.directory, "input", "file-link").symlink_to(victim)
    Path(session.directory, "input", "dir-link").symlink_to(outside)
    session.execute([SendBytes(b"new", "/golem/input/file-link")], timeout=30)
    assert victim.read_text() == "original"  # the link itself was replaced
    assert Path(session.directory, "input", "file-link").read_bytes() == b"new"
    with pytest.raises(CommandExecutionError, match="outside the sandbox"):
        session.execute([SendBytes(b"new", "/golem/input/dir-link/x")], timeout=30)
    assert list(outside.iterdir()) == []


def test_download_file_replaces_a_local_symlink(session: LocalSession, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("original")
    dst = tmp_path / "dst"
    dst.symlink_to(victim)
    session.execute([SendBytes(b"downloaded", "/golem/output/f"), DownloadFile("/golem/output/f", dst)],
                    timeout=30)
    assert victim.read_text() == "original"
    assert not dst.is_symlink() and dst.read_bytes() == b"downloaded"


def test_download_file_relative_dst(session: LocalSession, tmp_path: Path, monkeypatch) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    session.execute([SendBytes(b"data", "/golem/output/f")], timeout=30)
    [result] = session.execute([DownloadFile("/golem/output/f", "sub/../inside")], timeout=30)
    assert (cwd / "inside").read_bytes() == b"data"
    assert result.data == Path("sub/../inside")
    with pytest.raises(CommandExecutionError, match="leaves the current directory"):
        session.execute([DownloadFile("/golem/output/f", "sub/../../escaped")], timeout=30)
    assert not (tmp_path / "escaped").exists()


# -- timeout and cancel ----------------------------------------------------------------


@pytest.mark.slow
def test_batch_timeout_kills_the_process_group(session: LocalSession) -> None:
    marker = unique_sleep()
    # The subshell exits at once, so its sleep is an orphan: only the group reaches it.
    run = Background(session, [sh(f"(sleep {marker} &); sleep {marker}")], timeout=1.0)
    assert wait_for(lambda: sleep_count(marker_pids(marker)) == 2)
    pids = marker_pids(marker)
    assert run.done.wait(10)
    assert isinstance(run.error, BatchTimeoutError)
    assert wait_for(lambda: not any(pid in marker_pids(marker) for pid in pids)), marker_pids(marker)


def test_cancel_from_another_thread_stops_the_run(session: LocalSession) -> None:
    marker = unique_sleep()
    run = Background(session, [sh(f"(sleep {marker} &); sleep {marker}"), sh("echo never")])
    assert wait_for(lambda: sleep_count(marker_pids(marker)) == 2)
    session.cancel()
    assert run.done.wait(10)  # the sleeps take 30 s: only the cancel ends the run this soon
    assert isinstance(run.error, BatchCancelled)
    assert wait_for(lambda: not marker_pids(marker)), marker_pids(marker)


def test_interrupted_wait_still_kills_the_program(session: LocalSession) -> None:
    """Ctrl-C while a command runs: it and what it started (setsid too) die before the
    KeyboardInterrupt goes on, and the session still works."""
    marker = unique_sleep()
    script = f"setsid sleep {marker} & echo started; sleep {marker}"

    def interrupt(stream: str, text: str) -> None:
        if "started" in text:
            raise KeyboardInterrupt  # as if the user hit Ctrl-C while output arrives

    # on_output's errors are logged and dropped, so interrupt from the output tail itself.
    real_feed = _process.Tail.feed

    def feed(self, chunk: bytes) -> None:
        real_feed(self, chunk)
        if b"started" in chunk:
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_process.Tail, "feed", feed)
        with pytest.raises(KeyboardInterrupt):
            session.execute([sh(script)], timeout=30)
    assert wait_for(lambda: not marker_pids(marker)), marker_pids(marker)
    [result] = session.execute([sh("echo still works")], timeout=30)
    assert result.stdout == "still works\n"


def test_output_of_an_interrupted_command_never_reaches_the_next_one(session: LocalSession) -> None:
    """The session's output pipes outlive its commands: what an interrupted command
    left in them is dropped, not handed to the next command's result."""
    # Less than a pipe holds, so the writes end without a reader; then a file says so.
    script = ("echo started; head -c 30000 /dev/zero | tr '\\0' x; head -c 20000 /dev/zero | tr '\\0' y >&2; "
              'touch "$GOLEM_WORK/written"; sleep 30')
    written = Path(session.directory, "work", "written")
    real_feed = _process.Tail.feed

    def feed(self, chunk: bytes) -> None:
        real_feed(self, chunk)
        if b"started" in chunk:
            assert wait_for(written.exists)  # the x's and y's wait in the pipes, unread
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_process.Tail, "feed", feed)
        with pytest.raises(KeyboardInterrupt):
            session.execute([sh(script)], timeout=30)
    [result] = session.execute([sh("echo next; echo other >&2")], timeout=30)
    assert (result.stdout, result.stderr) == ("next\n", "other\n")


def test_all_output_belongs_to_the_command_that_wrote_it(session: LocalSession) -> None:
    """More than a pipe holds, on both streams, ending at once: each result has all of
    its own command's output and none of another's."""
    big = "head -c 300000 /dev/zero | tr '\\0' o; head -c 200000 /dev/zero | tr '\\0' e >&2"
    results = session.execute([sh(big), sh("echo next"), sh(big)], timeout=60)
    assert [(len(r.stdout), len(r.stderr)) for r in results] == [(300000, 200000), (5, 0), (300000, 200000)]
    assert results[0].stdout == "o" * 300000 and results[0].stderr == "e" * 200000
    assert results[1].stdout == "next\n"


def test_output_still_in_the_pipes_when_a_command_ends_is_all_delivered(session: LocalSession) -> None:
    """A command that widens its stdout pipe, fills it and ends before the requestor has
    read it: every byte reaches the result, though most of it is read after the agent
    said the command ended (the agent tells whether anything is left unread)."""
    widen = "import fcntl; fcntl.fcntl(1, fcntl.F_SETPIPE_SZ, 1 << 20)"
    script = f"{shlex.quote(PYTHON)} -c {shlex.quote(widen)}; echo started; head -c 500000 /dev/zero | tr '\\0' x"
    agent_socket = session._agent._sock
    real_feed = _process.Tail.feed

    def feed(self, chunk: bytes) -> None:
        real_feed(self, chunk)
        if chunk.startswith(b"started"):
            # Read no more until the agent has said the command ended.
            assert select.select([agent_socket], [], [], 60)[0]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_process.Tail, "feed", feed)
        [result] = session.execute([sh(script)], timeout=60)
    assert result.stdout == "started\n" + "x" * 500000


def played_agent() -> "tuple[_process.Agent, socket.socket, socket.socket]":
    """An Agent whose other end (the agent process) the test plays: (agent, our end of
    the socket, the test's end)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    theirs.send(marshal.dumps({"ready": True}))
    agent = _process.Agent(ours)
    _, fds, _, _ = socket.recv_fds(theirs, 1 << 20, 2)  # the session's output pipes
    for fd in fds:
        os.close(fd)
    return agent, ours, theirs


def test_a_message_that_finds_the_agents_socket_full_waits_for_room(monkeypatch: pytest.MonkeyPatch) -> None:
    """The requestor's end of the socket never blocks: a kill that finds it full (the
    agent busy, not reading) waits until the agent reads, then goes; the session is
    not lost. The agent is played by this test on the other end of the socket."""
    agent, ours, theirs = played_agent()
    filler = marshal.dumps({"filler": "x" * 4096})
    with contextlib.suppress(BlockingIOError):
        while True:
            ours.send(filler)
    waiting = threading.Event()
    real_select = select.select

    def noting_select(*args: object) -> object:
        waiting.set()
        return real_select(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(select, "select", noting_select)
    received: List[dict] = []

    def play_the_agent() -> None:
        assert waiting.wait(30)  # the kill is waiting for room: now read
        while not received or received[-1] not in ({"kill": True}, {"stop": True}):
            received.append(marshal.loads(theirs.recv(1 << 20)))
        if received[-1] == {"kill": True}:
            assert marshal.loads(theirs.recv(1 << 20)) == {"stop": True}
        theirs.send(marshal.dumps({"stopped": True}))

    player = threading.Thread(target=play_the_agent, daemon=True)
    player.start()
    agent.kill()
    assert waiting.is_set() and agent.alive
    agent.stop()
    player.join(30)
    assert not player.is_alive()
    assert received[-1] == {"kill": True} and {"filler": "x" * 4096} in received
    theirs.close()


def test_execute_after_cancel_is_cancelled(session: LocalSession) -> None:
    session.cancel()
    with pytest.raises(BatchCancelled):
        session.execute([sh('touch "$GOLEM_WORK/ran"')], timeout=30)
    assert not Path(session.directory, "work", "ran").exists()


# -- sandbox kinds -----------------------------------------------------------------------


def test_bwrap_host_filesystem_is_read_only(bwrap_only, tmp_path: Path) -> None:
    with LocalProvider(tmp_path / "root", sandbox="bwrap") as provider:
        session = provider.engage()
        name = f"golem-tasks-test-{random.randrange(10**8)}"
        results = session.execute([
            sh(f"touch /usr/{name}", check=False),
            sh(f"touch /tmp/{name}"),  # /tmp is a private tmpfs: writable, but not the host's
            Run(("ls", "-A", "/run")),  # /run too: no host daemon sockets
        ], timeout=30)
    assert results[0].exit_code != 0 and "Read-only file system" in results[0].stderr
    assert not Path("/usr", name).exists()
    assert results[1].exit_code == 0 and not Path("/tmp", name).exists()
    assert results[2].stdout == ""


@pytest.mark.parametrize("network", [False, True])
def test_bwrap_network(bwrap_only, tmp_path: Path, network: bool) -> None:
    script = "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=5)"
    with socket.socket() as server, LocalProvider(tmp_path, sandbox="bwrap", network=network) as provider:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = str(server.getsockname()[1])
        [result] = provider.engage().execute([Run((PYTHON, "-c", script, port), check=False)],
                                             timeout=30)
    if network:
        assert result.exit_code == 0, result.stderr
    else:
        assert result.exit_code != 0 and "ConnectionRefusedError" in result.stderr


def test_bwrap_golem_dirs_are_mount_points(bwrap_only, tmp_path: Path) -> None:
    with LocalProvider(tmp_path, sandbox="bwrap", volumes=("/golem/resource",)) as provider:
        [result] = provider.engage().execute([Run(("cat", "/proc/self/mountinfo"))], timeout=30)
    mount_points = {line.split()[4] for line in result.stdout.splitlines()}
    expected = {"/golem", "/golem/input", "/golem/output", "/golem/work", "/golem/resource"}
    assert expected <= mount_points


def test_host_rewrites_golem_arguments(tmp_path: Path) -> None:
    with LocalProvider(tmp_path, sandbox="host") as provider:
        session = provider.engage()
        script = 'echo "$1 $2 $3 $X"'
        [result] = session.execute(
            [sh(script, "/golem/input/a", "/golemish", "--out=/golem/x", env={"X": "/golem/output/b"})],
            timeout=30)
    expected = f"{session.directory}/input/a /golemish --out=/golem/x {session.directory}/output/b"
    assert result.stdout.strip() == expected


def test_host_runs_golem_program_paths(tmp_path: Path) -> None:
    with LocalProvider(tmp_path, sandbox="host") as provider:
        session = provider.engage()
        results = session.execute([SendBytes(b"#!/bin/sh\necho ran\n", "/golem/work/job.sh"),
                                   Run(("chmod", "+x", "/golem/work/job.sh")),
                                   Run(("/golem/work/job.sh",))], timeout=30)
    assert results[-1].stdout == "ran\n"


# -- choosing the sandbox ------------------------------------------------------------------


def test_bwrap_missing_is_a_configuration_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigurationError) as caught:
        LocalProvider(tmp_path / "root", sandbox="bwrap")
    assert "apt-get install bubblewrap" in str(caught.value) and "sandbox='host'" in str(caught.value)
    assert not (tmp_path / "root").exists()


def test_automatic_choice_falls_back_to_host_and_says_why(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(local, "_host_warned", False)
    with caplog.at_level(logging.INFO, logger=local.__name__), LocalProvider(tmp_path) as provider:
        assert provider.sandbox == "host"
    assert "host sandbox: bwrap is not on PATH" in caplog.text
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # The reason and the fix, each said once (the fix was said twice, in nested brackets).
    assert "(bwrap is not on PATH)" in warning and warning.count("apt-get install bubblewrap") == 1


def test_automatic_choice_prefers_bwrap(bwrap_only, tmp_path: Path) -> None:
    with LocalProvider(tmp_path) as provider:
        assert provider.sandbox == "bwrap"
        assert provider.engage().info.properties["sandbox"] == "bwrap"


@pytest.mark.parametrize("kwargs, message", [
    ({"sandbox": "docker"}, "sandbox must be None"),
    ({"sandbox": "host", "volumes": ("/data",)}, "under /golem/"),
    ({"sandbox": "host", "volumes": ("/golem/../etc",)}, "normalised"),
    ({"sandbox": "host", "volumes": "/golem/resource"}, "use volumes=\\('/golem/resource',\\)"),
])
def test_bad_arguments(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        LocalProvider(tmp_path, **kwargs)


# -- sessions and cleanup ----------------------------------------------------------------


def test_sessions_get_fresh_ids_and_directories(provider: LocalProvider, kind: str) -> None:
    first = provider.engage()
    second = provider.engage(exclude={"local-3"})
    assert (first.info.id, second.info.id) == ("local-1", "local-2")
    assert provider.engage(exclude={"local-3", "local-4"}).info.id == "local-5"
    props = second.info.properties
    assert props["sandbox"] == kind and props["directory"] == second.directory
    assert Path(second.directory).parent == provider.root
    for sub in ("input", "output", "work", "resource"):
        assert Path(second.directory, sub).is_dir()
    assert provider.default_max_workers == os.cpu_count()


def test_release_removes_the_directory(session: LocalSession) -> None:
    directory = Path(session.directory)
    script = 'mkdir "$GOLEM_WORK/locked"; touch "$GOLEM_WORK/locked/f"; chmod 500 "$GOLEM_WORK/locked"'
    session.execute([sh(script)], timeout=30)
    session.release()
    assert not directory.exists()
    session.release()  # idempotent
    with pytest.raises(BatchCancelled):
        session.execute([sh("true")], timeout=30)


def test_close_releases_sessions_and_is_idempotent(kind: str) -> None:
    provider = LocalProvider(sandbox=kind)
    session = provider.engage()
    root = provider.root
    assert Path(session.directory).is_dir()
    provider.close()
    provider.close()
    assert not root.exists()
    with pytest.raises(ProviderError, match="closed"):
        provider.engage()


def test_keep_leaves_directories(tmp_path: Path) -> None:
    with LocalProvider(tmp_path, sandbox="host", keep=True) as provider:
        session = provider.engage()
        session.execute([SendBytes(b"kept", "/golem/output/f")], timeout=30)
        session.release()
    assert Path(session.directory, "output", "f").read_bytes() == b"kept"


def test_engage_honours_abort(tmp_path: Path) -> None:
    abort = threading.Event()
    abort.set()
    with LocalProvider(tmp_path, sandbox="host") as provider, pytest.raises(ProviderError, match="aborted"):
        provider.engage(abort=abort)



# -- live output (issue 3 §4) -------------------------------------------------------------

def test_output_reaches_on_output_while_the_program_runs(session: LocalSession) -> None:
    """The program waits for a file that only the callback creates, on hearing "one":
    unless "one" arrives while the program runs, the batch times out."""
    go = Path(session.directory, "work", "go")
    chunks: List[tuple] = []

    def on_output(stream: str, text: str) -> None:
        chunks.append((stream, text))
        if "one" in text:
            go.touch()

    script = 'echo one; echo warn >&2; while [ ! -e "$GOLEM_WORK/go" ]; do sleep 0.01; done; echo two'
    [result] = session.execute([Run(("/bin/sh", "-c", script), on_output=on_output)], timeout=60)
    assert result.stdout == "one\ntwo\n" and result.stderr == "warn\n"
    assert "".join(t for s, t in chunks if s == "stdout") == result.stdout
    assert "".join(t for s, t in chunks if s == "stderr") == result.stderr


def test_live_output_is_decoded_like_the_result(session: LocalSession) -> None:
    chunks: List[str] = []
    script = r"printf '\303'; sleep 0.1; printf '\251\377\n'"
    [result] = session.execute([Run(("/bin/sh", "-c", script), on_output=lambda s, t: chunks.append(t))],
                               timeout=60)
    assert "".join(chunks) == result.stdout == "é\ufffd\n"


def test_no_output_is_delivered_after_a_timed_out_run(session: LocalSession) -> None:
    chunks: List[str] = []
    with pytest.raises(BatchTimeoutError):
        session.execute([Run(("/bin/sh", "-c", "echo started; sleep 60"), on_output=lambda s, t: chunks.append(t))],
                        timeout=1)
    seen = list(chunks)
    assert seen == ["started\n"]


def test_a_script_without_a_shebang_runs_with_sh(session: LocalSession) -> None:
    """As execvp() does, and so a Golem VM's exe-unit."""
    results = session.execute([SendBytes(b"echo from sh\n", "/golem/work/plain"),
                               Run(("chmod", "+x", "/golem/work/plain")), Run(("/golem/work/plain",))], timeout=30)
    assert results[-1].stdout == "from sh\n"


def test_a_missing_working_directory_is_named(bwrap_only, tmp_path: Path, monkeypatch) -> None:
    with LocalProvider(tmp_path, sandbox="bwrap") as provider:
        monkeypatch.setattr(LocalProvider, "workdir", "/golem/nowhere")
        with pytest.raises(CommandExecutionError, match="cannot enter the working directory /golem/nowhere"):
            provider.engage().execute([Run(("true",))], timeout=30)


def test_a_command_whose_end_is_waiting_when_the_deadline_is_checked_was_in_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A requestor thread starved past a command's deadline finds the command's end
    already waiting: the command ended in time and is not reported as timed out (nor
    killed). The agent is played by this test on the other end of the socket."""
    agent, ours, theirs = played_agent()
    received: List[dict] = []

    def play_the_agent() -> None:
        while True:
            message = marshal.loads(theirs.recv(1 << 20))
            received.append(message)
            if "run" in message:
                theirs.send(marshal.dumps({"exit": 0, "unread": False}))
            elif "stop" in message:
                theirs.send(marshal.dumps({"stopped": True}))
                return

    player = threading.Thread(target=play_the_agent, daemon=True)
    player.start()
    real_send = agent._send

    def send_then_starve(data: bytes) -> None:
        real_send(data)
        if "run" in marshal.loads(data):
            assert select.select([ours], [], [], 30)[0]  # the command ended before we look again

    monkeypatch.setattr(agent, "_send", send_then_starve)
    try:
        outcome = agent.run(["true"], {}, "/", time.monotonic() - 1, _process.Tail(), _process.Tail())
    finally:
        agent.stop()
        player.join(30)
    assert not player.is_alive()
    assert outcome.in_time and outcome.exit_code == 0
    assert not [m for m in received if "kill" in m]
