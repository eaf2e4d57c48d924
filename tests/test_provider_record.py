"""provider_record=: per-provider outcomes kept across runs, the market's skip and
score, and `golem-tasks providers`."""

from __future__ import annotations

import pytest

from golem_tasks import ConfigurationError, ProviderLost
from golem_tasks import events as ev
from golem_tasks.cli import main
from golem_tasks.provider_record import ProviderRecord, classify, default_path, open_record
from golem_tasks.testing import FakeProvider

from .helpers import make_golem


def square(ctx, n):
    results = yield ctx.run("echo", str(n))
    return int(results[0].stdout) ** 2


def buggy(ctx, n):
    yield ctx.run("echo", str(n))
    raise ValueError("a bug in the worker")


def echo_fake(**kwargs) -> FakeProvider:
    fake = FakeProvider(assert_all_used=False, **kwargs)
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda command, session: command.args[1])
    return fake


def run_events(record: ProviderRecord, provider: str, done: int = 0, failed: int = 0, lost: int = 0,
               job_id: int = 1) -> None:
    """Feed ``record`` one job's worth of events for ``provider``."""
    record(ev.ProviderEngaged(provider_id=provider, provider_name=f"name-{provider}"))
    for index in range(done):
        record(ev.FragmentFinished(job_id=job_id, index=index, provider_id=provider, attempt=1, duration=2.0))
    for index in range(failed):
        record(ev.FragmentRetried(job_id=job_id, index=index, provider_id=provider, attempt=1,
                                  reason="CommandExecutionError: exit 1", delay=0))
    for index in range(lost):
        record(ev.FragmentRetried(job_id=job_id, index=index, provider_id=provider, attempt=1,
                                  reason="ProviderLost: gone", delay=0))
    record(ev.JobFinished(job_id=job_id, done=done, failed=0, retried=failed + lost, elapsed=1.0))


def test_counts_come_from_a_real_run_and_survive_it(tmp_path):
    path = tmp_path / "providers.sqlite"
    fake = echo_fake()
    fake.lose_provider(1, after_commands=1)  # fake-1 does one fragment, then is lost
    with ProviderRecord(path) as record, make_golem(fake, max_workers=1, events=[record]) as golem:
        assert list(golem.map(square, range(4))) == [0, 1, 4, 9]
    with ProviderRecord(path) as again:
        stats = {s.provider_id: s for s in again.stats()}
    assert (stats["fake-1"].done, stats["fake-1"].lost, stats["fake-1"].failed) == (1, 1, 0)
    assert (stats["fake-2"].done, stats["fake-2"].failed, stats["fake-2"].runs) == (3, 0, 1)
    assert stats["fake-2"].mean_duration is not None and stats["fake-2"].mean_duration >= 0


def test_the_workers_own_bugs_do_not_count_against_the_provider(tmp_path):
    with ProviderRecord(tmp_path / "p") as record, make_golem(echo_fake(), events=[record]) as golem:
        list(golem.map(buggy, [1, 2], return_exceptions=True))
        assert [(s.done, s.failed, s.lost) for s in record.stats()] == []


def test_classify_by_error_class():
    assert classify("ProviderLost: the VM died") == "lost"
    assert classify("CommandExecutionError: exit 2") == "failed"
    assert classify("FragmentTimeoutError: ran past 5 s") == "failed"
    assert classify("FragmentFailed: fragment 3 failed on every one of its 4 attempts") == "failed"
    assert classify("TaskRejected: task rejected: bad output") == "failed"
    assert classify("ValueError: a bug") is None
    assert classify("BatchCancelled: the job was cancelled") is None


def test_a_provider_that_failed_repeatedly_in_recent_runs_is_skipped(tmp_path):
    path = tmp_path / "p"
    for _ in range(2):  # two runs in which 0xbad failed most fragments
        with ProviderRecord(path) as record:
            run_events(record, "0xbad", done=1, failed=2, lost=1)
            run_events(record, "0xgood", done=5, failed=1)
    with ProviderRecord(path) as record:
        reason = record.skip("0xbad")
        assert reason is not None and "failed 6 of 8 fragments in its last 2 run(s)" in reason
        assert "golem-tasks providers --forget 0xbad" in reason
        assert record.skip("0xgood") is None and record.skip("0xnew") is None
        assert record.score("0xgood") > record.score("0xnew") == 0.5 > record.score("0xbad")
        record.forget("0xbad")
        assert record.skip("0xbad") is None
    with ProviderRecord(path) as record:
        assert record.skip("0xbad") is None  # forgotten in the file too


def test_failures_in_this_run_count_before_they_are_written(tmp_path):
    with ProviderRecord(tmp_path / "p") as record:
        run_events(record, "0xa", lost=3)
        assert record.skip("0xa") is not None


def test_old_runs_no_longer_get_a_provider_skipped(tmp_path):
    path = tmp_path / "p"
    with ProviderRecord(path) as record:
        run_events(record, "0xa", failed=5)
    with ProviderRecord(path, horizon=-1.0) as record:  # every run is older than that
        assert record.skip("0xa") is None
    with ProviderRecord(path, recent_runs=1) as record:
        assert record.skip("0xa") is not None


def test_the_scheduler_feeds_a_record_the_backend_keeps(tmp_path):
    fake = echo_fake()
    fake.provider_record = ProviderRecord(tmp_path / "p")  # as GolemProvider(provider_record=...) does
    with make_golem(fake) as golem:
        list(golem.map(square, range(3)))
    assert sum(s.done for s in fake.provider_record.stats()) == 3
    fake.provider_record.close()


def test_the_option_opens_the_default_file_a_path_or_none(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_path() == tmp_path / "cache" / "golem_tasks" / "providers.sqlite"
    record = open_record(True)
    assert record is not None and record.path == default_path() and default_path().exists()
    record.close()
    assert open_record(False) is None
    with open_record(tmp_path / "mine.sqlite") as mine:  # type: ignore[union-attr]
        assert open_record(mine) is mine
    with pytest.raises(ConfigurationError, match="provider_record must be"):
        open_record(3)  # type: ignore[arg-type]
    (tmp_path / "dir").mkdir()
    with pytest.raises(ConfigurationError, match="cannot use the provider record"):
        open_record(tmp_path / "dir")


def test_an_unusable_default_file_only_warns(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert open_record(True) is None
    assert "running without a provider record" in caplog.text


def test_cli_prints_the_record_and_forgets(tmp_path, capsys):
    path = tmp_path / "p"
    with ProviderRecord(path) as record:
        run_events(record, "0xbad", failed=4)
        run_events(record, "0xgood", done=7)
    assert main(["providers", "--record", str(path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:7] == ["provider", "name", "done", "failed", "lost", "mean", "s"]
    assert lines[1].split()[:6] == ["0xgood", "name-0xgood", "7", "0", "0", "2.00"]
    assert lines[2].startswith("0xbad") and "skipped: failed 4 of 4 fragments" in lines[2]
    assert main(["providers", "--record", str(path), "--forget", "0xbad"]) == 0
    assert "forgot 0xbad" in capsys.readouterr().out
    main(["providers", "--record", str(path)])
    assert "0xbad" not in capsys.readouterr().out


def test_cli_on_an_empty_record(tmp_path, capsys):
    assert main(["providers", "--record", str(tmp_path / "none.sqlite")]) == 0
    assert "no providers recorded yet" in capsys.readouterr().out


def test_lost_provider_counts_as_lost_through_the_scheduler(tmp_path):
    fake = echo_fake()
    fake.lose_provider(1)
    with ProviderRecord(tmp_path / "p") as record, make_golem(fake, max_workers=1, events=[record]) as golem:
        assert list(golem.map(square, [5])) == [25]
        stats = {s.provider_id: s for s in record.stats()}
    assert stats["fake-1"].lost == 1 and ProviderLost.__name__ == "ProviderLost"
