"""GolemSession: batches as one ExeScript, results by long polling (failures at once),
timeouts and cancellation that stop the work, lost providers, inline transfers and the
storage seam."""

import inspect
import math
import os
import stat
import threading
from pathlib import Path
from typing import Optional, Union

import pytest

from golem_tasks.commands import (
    Command,
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
    ProviderLost,
)
from golem_tasks.providers.yagna import Download, GolemProvider, SendUrl, Storage, Upload, UploadUrl

from .golem_helpers import make_provider

RESULTS = "GET /activity-api/v1/activity/(?P<id>[^/]+)/exec/(?P<batch>[^/]+)"
EXEC = "POST /activity-api/v1/activity/(?P<id>[^/]+)/exec"


def sh(line: str, check: bool = True) -> Run:
    return Run(("/bin/sh", "-c", line), check=check)


def hanging(args):
    """Fake provider programs: ``hang`` never ends, ``slow`` takes 0.5 s."""
    if "hang" in args:
        return 0, "", "", math.inf
    if "slow" in args:
        return 0, "done\n", "", 0.5
    return None


@pytest.fixture
def session(daemon):
    for provider_node in daemon.nodes.values():
        provider_node.handler = hanging
    with make_provider() as provider:
        engaged = provider.engage()
        yield engaged
        engaged.release()


def round_trips(daemon) -> int:
    return daemon.count(EXEC) + daemon.count(RESULTS)


def test_a_quick_one_command_batch_takes_two_round_trips(daemon, session):
    before = round_trips(daemon)
    [result] = session.execute([sh("echo hello")], timeout=10)
    assert result.stdout == "hello\n" and result.exit_code == 0
    assert round_trips(daemon) - before == 2


def test_deploy_and_start_are_sent_once_per_provider(daemon, session):
    for _ in range(3):
        session.execute([sh("true")])
    scripts = daemon.exeunit(session.activity_id).scripts
    assert [list(c) for c in scripts[0]] == [["deploy"], ["start"]]
    assert sum("deploy" in c for script in scripts for c in script) == 1


def test_every_result_keeps_its_own_output(session):
    results = session.execute([sh("echo one"), sh("echo two >&2"), sh("echo three")])
    assert [(r.index, r.stdout, r.stderr) for r in results] == [(0, "one\n", ""), (1, "", "two\n"),
                                                                (2, "three\n", "")]


def test_a_failed_command_is_reported_as_soon_as_the_batch_stops(daemon, session):
    before = daemon.count(RESULTS)
    with pytest.raises(CommandExecutionError) as info:
        session.execute([sh("echo ok"), sh("echo bad >&2; exit 3"), sh("echo never")], timeout=30)
    # One poll per finished command, none that ran out waiting for the never-run third
    # (the latency itself: benchmarks/bench_latency.py).
    assert daemon.count(RESULTS) - before == 2
    error = info.value
    assert (error.index, error.exit_code, error.stderr) == (1, 3, "bad\n")
    assert [r.stdout for r in error.results] == ["ok\n"]
    assert "program exited with code 3" in str(error)
    assert f"on provider {session.info.name} (0x" in str(error) and "…" in str(error)  # name, short id
    assert error.provider == session.info.id
    assert session.usable
    assert session.execute([sh("echo again")])[0].stdout == "again\n"


def test_check_false_reports_the_exit_code_and_goes_on(session):
    first, second = session.execute([sh("echo out; echo err >&2; exit 7", check=False), sh("echo next")])
    assert (first.exit_code, first.stdout, first.stderr) == (7, "out\n", "err\n")
    assert second.stdout == "next\n"


def test_environment_and_path_lookup(session):
    checked, unchecked = session.execute([Run(("printenv", "GREETING"), env={"GREETING": "hi 'there'"}),
                                          Run(("printenv", "MISSING"), check=False)])
    assert checked.stdout == "hi 'there'\n"
    assert unchecked.exit_code == 1


def test_a_batch_timeout_stops_the_work_on_the_provider(daemon, session):
    with pytest.raises(BatchTimeoutError, match="timed out after 0.3 s with 1 of 2 commands done"):
        session.execute([sh("echo ok"), Run(("/bin/sh", "-c", "hang"))], timeout=0.3)
    assert daemon.activities[session.activity_id]["state"] == "Terminated"
    assert not session.usable
    with pytest.raises(ProviderLost, match="ran past its timeout"):
        session.execute([sh("true")])


def hang_seen(daemon, session) -> threading.Event:
    """Set when the session's exe-unit starts a ``hang`` program: the moment to cancel it."""
    seen = threading.Event()

    def handler(args):
        if "hang" in args:
            seen.set()
        return hanging(args)
    daemon.exeunit(session.activity_id).handler = handler
    return seen


def test_cancel_from_another_thread_stops_at_once(daemon, session):
    seen = hang_seen(daemon, session)
    canceller = threading.Thread(target=lambda: seen.wait(30) and session.cancel())
    canceller.start()
    with pytest.raises(BatchCancelled):  # the command hangs: only the cancel ends it
        session.execute([Run(("/bin/sh", "-c", "hang"))])
    canceller.join()
    session.cancel()  # idempotent
    assert daemon.activities[session.activity_id]["state"] == "Terminated"
    with pytest.raises(BatchCancelled):
        session.execute([sh("true")])


def test_a_dead_exe_unit_is_a_lost_provider(daemon, session):
    seen = hang_seen(daemon, session)
    killer = threading.Thread(target=lambda: seen.wait(30) and daemon.kill(session.activity_id))
    killer.start()
    with pytest.raises(ProviderLost, match="the activity is Terminated"):
        session.execute([Run(("/bin/sh", "-c", "hang"))])
    killer.join()
    assert not session.usable


def test_gsb_errors_are_retried_while_the_activity_lives(daemon, session):
    gsb = {"message": "GSB error: GSB failure: Bad request: endpoint address not found"}
    daemon.fail("GET", r"/exec/[^/]+$", 500, gsb, times=3)
    before = daemon.count(RESULTS)
    assert session.execute([sh("echo fine")])[0].stdout == "fine\n"
    assert daemon.count(RESULTS) - before == 4


def test_gsb_errors_past_the_retries_check_the_state(daemon, session):
    gsb = {"message": "GSB error: GSB failure: Bad request: endpoint address not found"}
    daemon.fail("GET", r"/exec/[^/]+$", 500, gsb, times=4)
    with pytest.raises(ProviderError, match="could not read the batch results") as info:
        session.execute([sh("echo fine")])
    assert not isinstance(info.value, ProviderLost)  # the activity still lives: not lost
    assert not session.usable  # but the batch may still run there


def test_a_refused_batch_keeps_the_session(daemon, session):
    daemon.fail("POST", r"/exec$", 400, {"message": "manifest violation: inet"})
    with pytest.raises(ProviderError, match="manifest violation"):
        session.execute([sh("true")])
    assert session.usable
    assert session.execute([sh("echo ok")])[0].stdout == "ok\n"


def test_one_batch_at_a_time(daemon, session):
    seen = hang_seen(daemon, session)
    outcome = []

    def first_batch():
        try:
            session.execute([Run(("/bin/sh", "-c", "hang"))])
        except BatchCancelled as exc:
            outcome.append(exc)

    thread = threading.Thread(target=first_batch)
    thread.start()
    assert seen.wait(30)  # the first batch is running on the provider
    with pytest.raises(RuntimeError, match="one batch at a time"):
        session.execute([sh("true")])
    session.cancel()
    thread.join()
    assert len(outcome) == 1


def test_inline_transfers_both_ways(session, tmp_path):
    script = tmp_path / "tool.sh"
    script.write_text("#!/bin/sh\necho tool ran\n")
    script.chmod(0o755)
    payload = bytes(range(256)) * 10
    results = session.execute([
        SendBytes(payload, "/golem/input/new/dir/blob.bin"),
        SendJson.of({"x": [1, 2]}, "/golem/input/task.json"),
        SendFile(script, "/golem/work/tool.sh"),
        Run(("/golem/work/tool.sh",)),
        DownloadBytes("/golem/input/new/dir/blob.bin"),
        DownloadJson("/golem/input/task.json"),
        DownloadFile("/golem/input/task.json", tmp_path / "out" / "task.json"),
    ])
    assert results[3].stdout == "tool ran\n"
    assert results[4].data == payload
    assert results[5].data == {"x": [1, 2]}
    assert results[6].data == tmp_path / "out" / "task.json"
    assert (tmp_path / "out" / "task.json").read_text() == '{"x": [1, 2]}'


def test_download_failures_say_what_happened(session):
    with pytest.raises(CommandExecutionError, match="cannot read /golem/output/nope on the provider"):
        session.execute([DownloadBytes("/golem/output/nope")])
    session.execute([SendBytes(b"x" * 100, "/golem/output/big")])
    with pytest.raises(CommandExecutionError, match="is 100 bytes, over the limit of 10") as info:
        session.execute([DownloadBytes("/golem/output/big", limit=10)])
    assert info.value.exit_code is None and info.value.index == 0
    session.execute([SendBytes(b"not json", "/golem/output/bad.json")])
    with pytest.raises(CommandExecutionError, match="is not valid JSON"):
        session.execute([DownloadJson("/golem/output/bad.json")])


def test_a_missing_local_file_fails_before_anything_is_sent(daemon, session, tmp_path):
    before = daemon.count(EXEC)
    with pytest.raises(CommandExecutionError, match="cannot read the local file") as info:
        session.execute([sh("true"), SendFile(tmp_path / "missing", "/golem/input/x")])
    assert info.value.index == 1
    assert daemon.count(EXEC) == before


def test_data_too_large_to_go_inline_needs_a_storage(daemon, session):
    before = daemon.count(EXEC)
    with pytest.raises(ConfigurationError, match="too many to send inline .* storage=.gftp."):
        session.execute([SendBytes(b"x" * (600 * 1024), "/golem/input/big")])
    assert daemon.count(EXEC) == before


class Command9(Command):
    pass


def test_an_unknown_command_is_refused(session):
    with pytest.raises(ConfigurationError, match="cannot run Command9"):
        session.execute([Command9()])


def test_url_pass_through(daemon, session):
    daemon.urls["https://data.example/in.txt"] = b"hosted"
    results = session.execute([SendUrl("https://data.example/in.txt", "/golem/input/in.txt"),
                               sh("cat /golem/input/in.txt"),
                               UploadUrl("/golem/input/in.txt", "https://bucket.example/out?sig=1")])
    assert results[1].stdout == "hosted"
    assert daemon.uploads["https://bucket.example/out?sig=1"] == b"hosted"
    with pytest.raises(CommandExecutionError, match="could not download https://data.example/none"):
        session.execute([SendUrl("https://data.example/none", "/golem/input/x")])


class _Published(Upload):
    def __init__(self, storage: "DictStorage", url: str) -> None:
        self.url, self.storage = url, storage

    def close(self) -> None:
        self.storage.closed.append(self.url)


class _Receiving(Download):
    def __init__(self, storage: "DictStorage", url: str, destination: Optional[Path]) -> None:
        self.url, self.storage, self.destination = url, storage, destination

    def result(self, timeout: float) -> Union[bytes, Path]:
        data = self.storage.daemon.uploads[self.url]
        if self.destination is None:
            return data
        self.destination.write_bytes(data)
        return self.destination

    def close(self) -> None:
        self.storage.closed.append(self.url)


class DictStorage(Storage):
    """A storage whose URLs the fake exe-unit reads and writes (as GFTP will be)."""

    def __init__(self, daemon) -> None:
        self.daemon, self.closed, self.count = daemon, [], 0

    def publish(self, source):
        self.count += 1
        url = f"http://storage.test/{self.count}"
        self.daemon.urls[url] = source if isinstance(source, bytes) else Path(source).read_bytes()
        return _Published(self, url)

    def receive(self, destination=None, *, limit=None):
        self.count += 1
        return _Receiving(self, f"http://storage.test/up/{self.count}", destination)


def test_the_storage_seam_moves_large_data(daemon, tmp_path):
    storage = DictStorage(daemon)
    with make_provider(storage=storage, inline_limit=16) as provider:
        session = provider.engage()
        big = os.urandom(2048)
        results = session.execute([SendBytes(big, "/golem/input/big"), SendBytes(b"tiny", "/golem/input/t"),
                                   sh("wc -c < /golem/input/big"), DownloadBytes("/golem/input/big"),
                                   DownloadFile("/golem/input/t", tmp_path / "t")])
        session.release()
    assert results[2].stdout.strip() == "2048" and results[3].data == big
    assert (tmp_path / "t").read_bytes() == b"tiny"
    kinds = [list(c)[0] for c in daemon.exeunit(session.activity_id).scripts[1]]
    assert kinds == ["transfer", "run", "run", "transfer", "transfer"]  # tiny data went inline
    assert len(storage.closed) == 3


def test_a_sent_executable_keeps_its_mode(daemon, session, tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    plain.chmod(0o644)
    session.execute([SendFile(plain, "/golem/input/plain.txt")])
    mode = (daemon.exeunit(session.activity_id).root / "golem/input/plain.txt").stat().st_mode
    assert not mode & stat.S_IXUSR


def test_storage_gftp_is_made_and_closed_by_the_provider(daemon, monkeypatch):
    from golem_tasks.providers.yagna.transfer import gftp as _gftp

    made = []

    class Recorder(DictStorage):
        def __init__(self, client, *, node_id):
            super().__init__(daemon)
            self.node_id, self.closed_all = node_id, False
            made.append(self)

        def close(self):
            self.closed_all = True

    monkeypatch.setattr(_gftp, "GsbGftpStorage", Recorder)
    with make_provider(storage="gftp", inline_limit=0) as provider:
        session = provider.engage()
        assert session.execute([SendBytes(b"via storage", "/golem/input/s"), sh("cat /golem/input/s")])[1].stdout \
            == "via storage"
        session.release()
    [storage] = made
    assert storage.node_id == provider.identity.identity and storage.closed_all
    with pytest.raises(ConfigurationError, match="storage must be a Storage, 'gftp' or None"):
        make_provider(storage="s3")


def test_gftp_is_the_default_storage_and_small_downloads_stay_inline(daemon, monkeypatch, tmp_path):
    # Without a storage, data over the inline limit would fail mid-job; GFTP over GSB
    # needs no binary and opens nothing until the first large transfer.
    from golem_tasks.providers.yagna.transfer import gftp as _gftp

    made = []

    class Recorder(DictStorage):
        def __init__(self, client, *, node_id):
            super().__init__(daemon)
            made.append(self)

    monkeypatch.setattr(_gftp, "GsbGftpStorage", Recorder)
    settings = dict(storage="gftp")  # what GolemProvider() does when no storage is given
    assert inspect.signature(GolemProvider).parameters["storage"].default == settings["storage"]
    with make_provider(**settings) as provider:
        session = provider.engage()
        session.execute([SendBytes(b"x" * 100, "/golem/input/small"),
                         DownloadBytes("/golem/input/small", limit=1024),  # fits inline
                         DownloadBytes("/golem/input/small")])              # may be 64 MiB: stored
        session.release()
    kinds = [list(c)[0] for c in daemon.exeunit(session.activity_id).scripts[1]]
    assert kinds == ["run", "run", "transfer"]
    assert made and made[0].count == 1
