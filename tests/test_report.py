"""golem.report(): one row per fragment, CSV, pandas, and a timeline picture."""

from __future__ import annotations

import csv
import io
import sys
from decimal import Decimal

import pytest

from golem_tasks import ProviderLost
from golem_tasks import events as ev
from golem_tasks.report import Recorder, Report
from golem_tasks.testing import FakeProvider

from .helpers import make_golem


def square(ctx, n):
    results = yield ctx.run("echo", str(n))
    return int(results[0].stdout) ** 2


def echo_fake(**kwargs) -> FakeProvider:
    fake = FakeProvider(assert_all_used=False, **kwargs)
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda command, session: command.args[1])
    return fake


def test_one_row_per_fragment_with_its_provider_and_times():
    with make_golem(echo_fake(), max_workers=2) as golem:
        assert list(golem.map(square, range(6))) == [0, 1, 4, 9, 16, 25]
    report = golem.report()
    assert [(r.index, r.status, r.kind) for r in report] == [(i, "done", "map") for i in range(6)]
    for row in report:
        assert row.provider_id in ("fake-1", "fake-2") and row.provider_name == row.provider_id
        assert len(row.attempts) == 1 and row.attempts[0].outcome == "done" and row.causes == ()
        assert row.start is not None and row.end is not None and row.start <= row.end
        assert row.cost is None  # the fake charges nothing
    assert "6 done" in repr(report)


def test_retries_are_attempts_with_their_causes():
    fake = echo_fake()
    fake.lose_provider(1, after_commands=0)
    with make_golem(fake, max_workers=1) as golem:
        assert list(golem.map(square, [3])) == [9]
    (row,) = golem.report()
    assert row.status == "done" and row.retries == 1 and row.provider_id == "fake-2"
    assert [(a.provider_id, a.outcome) for a in row.attempts] == [("fake-1", "retried"), ("fake-2", "done")]
    assert row.causes[0].startswith(ProviderLost.__name__)


def test_a_failed_fragment_has_its_reason():
    fake = FakeProvider(assert_all_used=False)
    fake.on_run("echo 1", exit_code=2, stderr="no")
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda command, session: command.args[1])
    with make_golem(fake, max_retries=1) as golem:
        values = list(golem.map(square, [0, 1], return_exceptions=True))
    assert values[0] == 0 and isinstance(values[1], Exception)
    rows = {row.index: row for row in golem.report()}
    assert rows[1].status == "failed" and len(rows[1].attempts) == 2
    assert [a.outcome for a in rows[1].attempts] == ["retried", "failed"]
    assert "CommandExecutionError" in rows[1].causes[0]


def test_results_from_the_journal_are_rows_too(tmp_path):
    path = tmp_path / "j"
    with make_golem(echo_fake()) as golem:
        list(golem.map(square, range(2), journal=path))
        list(golem.map(square, range(3), journal=path))
    second = golem.report().job(max(r.job_id for r in golem.report()))
    assert [r.status for r in second] == ["journal", "journal", "done"]


def test_costs_are_shared_by_busy_time():
    recorder = Recorder()
    events = [ev.JobStarted(job_id=1, kind="map", timestamp=0.0),
              ev.ProviderEngaged(provider_id="0xa", provider_name="alpha", timestamp=0.0)]
    for index, (start, end) in enumerate([(0.0, 1.0), (1.0, 4.0)]):
        events += [ev.FragmentStarted(job_id=1, index=index, provider_id="0xa", attempt=1, timestamp=start),
                   ev.FragmentFinished(job_id=1, index=index, provider_id="0xa", attempt=1, duration=end - start,
                                       timestamp=end)]
    events += [ev.JobFinished(job_id=1, done=2, failed=0, retried=0, elapsed=4.0, timestamp=4.0),
               ev.CostsSettled(costs={"0xa": Decimal("0.8")}, total=Decimal("0.8"))]
    for event in events:
        recorder(event)
    rows = recorder.report()
    assert [row.cost for row in rows] == [Decimal("0.2"), Decimal("0.6")]
    assert rows[0].provider_name == "alpha"


def test_a_backup_copy_and_the_copy_it_beat_are_marked():
    recorder = Recorder()
    for event in [ev.JobStarted(job_id=1, kind="map", timestamp=0.0),
                  ev.FragmentStarted(job_id=1, index=0, provider_id="slow", attempt=1, timestamp=0.0),
                  ev.FragmentStarted(job_id=1, index=0, provider_id="fast", attempt=1, timestamp=5.0),
                  ev.FragmentFinished(job_id=1, index=0, provider_id="fast", attempt=1, duration=1.0,
                                      timestamp=6.0),
                  ev.JobFinished(job_id=1, done=1, failed=0, retried=0, elapsed=6.0, timestamp=6.5)]:
        recorder(event)
    (row,) = recorder.report()
    assert row.status == "done" and row.provider_id == "fast" and row.backups == 1
    assert [(a.provider_id, a.outcome, a.backup) for a in row.attempts] == \
        [("slow", "cancelled", False), ("fast", "done", True)]


def test_memory_is_bounded_by_dropping_the_oldest_jobs():
    recorder = Recorder(limit=3)
    for job_id in (1, 2):
        recorder(ev.JobStarted(job_id=job_id, kind="map"))
        for index in range(2):
            recorder(ev.FragmentStarted(job_id=job_id, index=index, provider_id="p", attempt=1))
            recorder(ev.FragmentFinished(job_id=job_id, index=index, provider_id="p", attempt=1, duration=0.1))
        recorder(ev.JobFinished(job_id=job_id, done=2, failed=0, retried=0, elapsed=1.0))
    report = recorder.report()
    assert [(r.job_id, r.index) for r in report] == [(2, 0), (2, 1)] and report.dropped == 2


def test_csv_has_a_header_and_a_row_per_fragment(tmp_path):
    with make_golem(echo_fake()) as golem:
        list(golem.map(square, range(3)))
    out = io.StringIO()
    golem.report().to_csv(out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["index"], r["status"], r["attempts"]) for r in rows] == [("0", "done", "1"), ("1", "done", "1"),
                                                                       ("2", "done", "1")]
    assert rows[0]["start"].endswith("+00:00")
    path = tmp_path / "report.csv"
    golem.report().to_csv(path)
    assert path.read_text().splitlines()[0].startswith("job_id,kind,index,status")


def test_to_pandas_gives_a_dataframe():
    pd = pytest.importorskip("pandas")
    with make_golem(echo_fake()) as golem:
        list(golem.map(square, range(3)))
    frame = golem.report().to_pandas()
    assert list(frame["index"]) == [0, 1, 2] and str(frame["start"].dt.tz) == "UTC"
    assert isinstance(frame, pd.DataFrame)


def test_to_pandas_without_pandas_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        Report([]).to_pandas()


def test_timeline_draws_a_png_for_notebooks(tmp_path):
    pytest.importorskip("matplotlib")
    fake = echo_fake()
    fake.lose_provider(1, after_commands=1)
    with make_golem(fake, max_workers=2) as golem:
        list(golem.map(square, range(6)))
    picture = golem.report().timeline()
    assert picture._repr_png_().startswith(b"\x89PNG")
    picture.save(tmp_path / "timeline.svg")
    assert (tmp_path / "timeline.svg").read_text().lstrip().startswith("<?xml")
    lanes = [label.get_text() for label in picture.figure.axes[0].get_yticklabels()]
    # one lane per provider that ran an attempt (how many ran one depends on the schedule:
    # engagement follows demand)
    ran = {row.provider_name for row in golem.report() if row.provider_name}
    assert lanes and set(lanes) <= {"fake-1", "fake-2", "fake-3"} and ran <= set(lanes)


def test_timeline_without_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"golem_tasks\[report\]"):
        Report([]).timeline()
