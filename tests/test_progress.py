"""Progress bar, end-of-job summary and events: what a person watching a run sees."""

from __future__ import annotations

import io
import logging

from golem_tasks import events
from golem_tasks.progress import ProgressBar, format_summary, progress_wanted
from golem_tasks.testing import FakeProvider

from .helpers import echo, echo_provider, make_golem


def test_progress_bar_counts_done_failed_and_retried():
    out = io.StringIO()
    fake = FakeProvider(assert_all_used=False)
    fake.on_run("echo 1", exit_code=1, times=1)      # retried, then fine
    fake.on_run("echo 2", exit_code=1)               # fails for good
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda c, s: c.args[1])
    with make_golem(fake, max_workers=1, max_retries=1, events=ProgressBar(file=out)) as golem:
        list(golem.map(echo, range(4), return_exceptions=True))
    text = out.getvalue()
    assert "map #" in text and "4/4" in text
    assert "done=3" in text and "failed=1" in text and "retried=2" in text
    assert "job " in text and "3 done, 1 failed, 2 retried" in text  # the summary follows the bar


def test_summary_is_logged_per_provider(caplog):
    caplog.set_level(logging.INFO, logger="golem_tasks.summary")
    with make_golem(echo_provider(), max_workers=2) as golem:
        list(golem.map(echo, range(10)))
    (record,) = [r for r in caplog.records if r.name == "golem_tasks.summary"]
    lines = record.getMessage().splitlines()
    assert "10 done, 0 failed, 0 retried" in lines[0]
    provider_lines = lines[1:]
    assert provider_lines and all("done" in line and "busy" in line for line in provider_lines)
    assert sum(int(line.split(": ")[1].split(" done")[0]) for line in provider_lines) == 10


def test_events_tell_the_story_of_a_run():
    seen = []
    with make_golem(echo_provider(), max_workers=1, events=seen.append) as golem:
        golem.run(echo, "x")
    kinds = [type(e).__name__ for e in seen]
    assert kinds[:1] == ["JobStarted"]
    assert kinds.index("ProviderEngaged") < kinds.index("FragmentStarted") < kinds.index("FragmentFinished")
    assert "JobFinished" in kinds and "ProviderReleased" in kinds
    timestamps = [e.timestamp for e in seen]
    assert timestamps == sorted(timestamps) and len(set(timestamps)) > 1  # yapapi froze them


def test_a_failing_consumer_is_logged_not_raised(caplog):
    def broken(event):
        raise RuntimeError("consumer bug")

    with make_golem(echo_provider(), max_workers=1, events=broken) as golem:
        assert golem.run(echo, "x")[1] == "x"
    assert "consumer bug" in caplog.text


def test_progress_default_follows_the_terminal(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert progress_wanted(None) is False
    monkeypatch.setattr("sys.stderr", Tty())
    assert progress_wanted(None) is True
    assert progress_wanted(False) is False


def test_format_summary_names_the_error():
    event = events.JobFinished(job_id=3, done=1, failed=2, retried=0, elapsed=1.5, error="JobTimeoutError: x")
    assert format_summary(event).startswith("job 3: 1 done, 2 failed, 0 retried in 1.50 s (JobTimeoutError: x)")


def test_a_backend_events_reach_the_golem_consumers_and_the_bill_is_logged(caplog):
    from decimal import Decimal

    class BillingFake(FakeProvider):
        def __init__(self):
            super().__init__(assert_all_used=False)
            self.on_run(lambda line: True, handler=lambda c, s: c.args[1])
            self.consumers = []

        def add_event_consumer(self, consumer):
            self.consumers.append(consumer)

        def close(self):
            super().close()
            for consumer in self.consumers:
                consumer(events.CostsSettled(costs={"fake-1": "0.25", "fake-2": Decimal("0.5")},
                                             total=Decimal("0.75"), unpaid=("agreement-9",)))

    caplog.set_level(logging.INFO, logger="golem_tasks.summary")
    seen = []
    fake = BillingFake()
    with make_golem(fake, max_workers=1, events=seen.append) as golem:
        golem.run(echo, "x")
    fake.close()
    (bill,) = [e for e in seen if isinstance(e, events.CostsSettled)]
    assert bill.costs == (("fake-1", Decimal("0.25")), ("fake-2", Decimal("0.5")))
    assert "cost: 0.75 GLM in total" in caplog.text and "fake-2: 0.5 GLM" in caplog.text
    assert "no invoice in time for 1 agreement(s): agreement-9" in caplog.text


def test_the_bar_counts_in_fragments_with_its_postfix_in_step():
    out = io.StringIO()
    with make_golem(echo_provider(), max_workers=1, events=ProgressBar(file=out)) as golem:
        list(golem.map(echo, range(3)))
    frames = out.getvalue().replace("\r", "\n").splitlines()
    assert any("3/3" in frame and "fragments" in frame for frame in frames)
    for frame in frames:  # every drawn frame: the done= count is the bar's own count
        if "/3 [" in frame and "done=" in frame:
            assert frame.split("/3 [")[0].split()[-1] == frame.split("done=")[1].split(",")[0], frame


def test_the_summary_names_providers_once_and_the_bill_is_rounded_with_its_token():
    from decimal import Decimal

    from golem_tasks.progress import format_costs

    finished = events.JobFinished(job_id=1, done=2, failed=0, retried=0, elapsed=1.0, providers=(
        events.ProviderSummary(provider_id="local-1", provider_name="local-1 (bwrap)", done=1),
        events.ProviderSummary(provider_id="0xaaaa1111bbbb2222", provider_name="alice", done=1),
        events.ProviderSummary(provider_id="0xcccc3333dddd4444", provider_name="alice"),
        events.ProviderSummary(provider_id="0xeeee5555ffff6666", provider_name=""),
    ))
    lines = format_summary(finished).splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == [
        "local-1 (bwrap)", "alice (0xaaaa1111)", "alice (0xcccc3333)", "0xeeee5555"]
    bill = events.CostsSettled(costs={"0xaaaa1111bbbb2222": Decimal("0.000123456789012345678"),
                                      "0xeeee5555ffff6666": Decimal("2")},
                               total=Decimal("2.000123456789012345678"), names={"0xaaaa1111bbbb2222": "alice"},
                               token="tGLM")
    assert format_costs(bill).splitlines() == [
        "cost: 2.00012 tGLM in total", "  alice: 0.000123457 tGLM", "  0xeeee5555: 2 tGLM"]


def test_log_to_stderr_shows_the_summary_once_with_or_without_the_bar(capsys):
    import golem_tasks

    handler = golem_tasks.log_to_stderr(level="INFO")
    try:
        assert golem_tasks.log_to_stderr("info") is not handler  # a second call replaces the first
        with make_golem(echo_provider(), max_workers=1, progress=False) as golem:
            golem.run(echo, "x")
        assert capsys.readouterr().err.count("0 retried in") == 1
        with make_golem(echo_provider(), max_workers=1, progress=True) as golem:
            golem.run(echo, "x")
        assert capsys.readouterr().err.count("0 retried in") == 1  # the bar's, not the log's too
    finally:
        logger = logging.getLogger("golem_tasks")
        for h in list(logger.handlers):
            if not isinstance(h, logging.NullHandler):
                logger.removeHandler(h)
        logger.setLevel(logging.NOTSET)


def test_a_failed_fragment_shows_the_first_stderr_line_of_each_attempt():
    from golem_tasks import FragmentFailed

    fake = FakeProvider(assert_all_used=False)
    fake.on_run(lambda line: True, exit_code=1, stderr="\ncat: data.csv: No such file or directory\nmore\n")
    with make_golem(fake, max_workers=1, max_retries=1) as golem:
        try:
            golem.run(echo, "x")
        except FragmentFailed as exc:
            message = str(exc)
    attempts = message.splitlines()[1:]
    assert len(attempts) == 2
    assert all(line.endswith("; stderr: cat: data.csv: No such file or directory") for line in attempts)


def test_a_generator_input_gets_its_total_from_total():
    out = io.StringIO()
    with make_golem(echo_provider(), max_workers=2, events=ProgressBar(file=out)) as golem:
        assert [r[0] for r in golem.map(echo, (i for i in range(5)), total=5)] == list(range(5))
    assert "5/5" in out.getvalue()  # without total= a generator has no length to show


def test_a_bad_total_is_refused_at_the_call():
    import pytest

    from golem_tasks import ConfigurationError

    with make_golem(echo_provider()) as golem:
        with pytest.raises(ConfigurationError, match="total must be a whole number"):
            golem.map(echo, range(3), total=-1)


def test_the_summary_counts_backup_copies():
    event = events.JobFinished(job_id=4, done=10, failed=0, retried=0, elapsed=2.0, backups=2, backups_won=1)
    assert "2 backup copies of stragglers (1 finished first)" in format_summary(event)


def test_the_bar_shows_spent_projected_and_budget():
    from decimal import Decimal

    out = io.StringIO()
    bar = ProgressBar(file=out)
    bar(events.JobStarted(job_id=7, kind="map", total=3))
    bar(events.SpendUpdated(spent=Decimal("0.0312345678"), projected=Decimal("0.45"), budget=Decimal(1),
                            token="tGLM"))
    line = out.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    assert "done=0, failed=0, retried=0, spent=0.0312346 tGLM, projected=0.45 tGLM, budget=1 tGLM" in line
    bar(events.JobFinished(job_id=7, done=1, failed=0, retried=0, elapsed=1.0))


def test_a_golem_bar_takes_the_providers_spend(capsys):
    from decimal import Decimal

    class Paid(FakeProvider):
        def add_event_consumer(self, consumer):
            self.report = consumer

    fake = Paid(assert_all_used=False)
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda c, s: c.args[1])
    with make_golem(fake, max_workers=1, progress=True) as golem:  # the default bar, on stderr
        def spend_then_echo(ctx, i):
            fake.report(events.SpendUpdated(spent=Decimal("0.2"), projected=Decimal("0.3"), budget=Decimal("0.5"),
                                            token="GLM"))
            return (yield from echo(ctx, i))

        list(golem.map(spend_then_echo, range(2)))
    assert "spent=0.2 GLM, projected=0.3 GLM, budget=0.5 GLM" in capsys.readouterr().err
