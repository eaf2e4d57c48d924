"""golem_tasks.testing: FakeProvider, run_worker and the fake_provider pytest fixture."""

from __future__ import annotations

import functools
import re
import sys
import threading

import pytest

from golem_tasks.commands import CommandResult, DownloadJson, Run, SendBytes, SendJson
from golem_tasks.errors import (BatchCancelled, BatchTimeoutError, CommandExecutionError,
                                ConfigurationError, ProviderError, ProviderLost, UnexpectedCommand,
                                WorkerError)
from golem_tasks.testing import BatchCall, Call, FakeProvider, RunOutput, run_worker

pytest_plugins = ["pytester"]

JOB = "python3 /golem/input/job.py"


# -- workers -----------------------------------------------------------------------------

def run_job(ctx, *args, check=True):
    """Runs the job once; returns (exit code, stdout, stderr)."""
    results = yield ctx.run("python3", "/golem/input/job.py", *args, check=check)
    return results[0].exit_code, results[0].stdout, results[0].stderr


unchecked_job = functools.partial(run_job, check=False)


def run_line(ctx, *argv):
    results = yield ctx.run(*argv)
    return results[0].stdout


def compute(ctx, word):
    """The typical worker: upload input, run, download the output."""
    batch = ctx.batch()
    batch.send_json({"word": word}, "/golem/input/task.json")
    batch.run("python3", "/golem/input/job.py")
    batch.download_json("/golem/output/result.json")
    results = yield batch
    return results[-1].data


def run_twice(ctx):
    """Runs two batches; catches the first error and says which batch it hit."""
    outcomes = []
    for _ in range(2):
        try:
            yield ctx.run("python3", "/golem/input/job.py")
            outcomes.append("ok")
        except Exception as exc:  # the fake's errors arrive at the yield
            outcomes.append(type(exc).__name__)
    return outcomes


@pytest.fixture
def fake():
    with FakeProvider(assert_all_used=False) as provider:
        yield provider


def run_in_thread(target, *args, **kwargs):
    """Start ``target`` in a thread; returns (thread, outcome) where outcome gets
    'result' or 'error'."""
    outcome = {}

    def body():
        try:
            outcome["result"] = target(*args, **kwargs)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, outcome


# -- scripting runs ----------------------------------------------------------------------

def test_scripted_stdout_stderr_and_exit_code(fake):
    fake.on_run(JOB, stdout="out", stderr="err", exit_code=0)
    assert run_worker(run_job, provider=fake) == (0, "out", "err")


def test_nonzero_exit_of_checked_run_raises_at_the_yield(fake):
    fake.on_run(JOB, stdout="partial", stderr="boom", exit_code=3)
    with pytest.raises(CommandExecutionError) as info:
        run_worker(run_job, provider=fake)
    error = info.value
    assert (error.exit_code, error.stderr, error.index, error.provider) == (3, "boom", 0, "fake-1")
    assert error.command == Run(("python3", "/golem/input/job.py"))
    # The Call keeps both what the program printed and the error the worker got.
    call = fake.calls[0]
    assert call.result.stdout == "partial" and call.error is error


def test_nonzero_exit_with_check_false_is_a_plain_result(fake):
    fake.on_run(JOB, stdout="x", exit_code=2)
    assert run_worker(unchecked_job, provider=fake) == (2, "x", "")
    assert fake.calls[0].error is None


def test_regex_rule_must_match_the_whole_command_line(fake):
    fake.on_run(re.compile(r"python3 .*job\.py"), stdout="regex")
    assert run_worker(run_job, provider=fake)[1] == "regex"
    with pytest.raises(UnexpectedCommand, match=r"add '\.\*' to allow more"):
        run_worker(run_job, "--fast", provider=fake)


def test_callable_rule_gets_the_command_line(fake):
    seen = []
    fake.on_run(lambda line: seen.append(line) or line.endswith("--fast"), stdout="fast")
    assert run_worker(run_job, "--fast", provider=fake)[1] == "fast"
    assert seen == [JOB + " --fast"]


def test_callable_rule_may_give_its_reason(fake):
    def is_render(line):
        return "render" in line, "no 'render' in it"

    fake.on_run(is_render, stdout="r")
    assert run_worker(run_line, "/bin/render", provider=fake) == "r"
    with pytest.raises(UnexpectedCommand, match="is_render\\(\\): no 'render' in it"):
        run_worker(run_job, provider=fake)


def test_first_matching_rule_wins(fake):
    first = fake.on_run(re.compile("python3 .*"), stdout="first")
    second = fake.on_run(JOB, stdout="second")
    assert run_worker(run_job, provider=fake)[1] == "first"
    assert (first.call_count, second.call_count) == (1, 0)


def test_times_limits_a_rule_then_the_next_one_answers(fake):
    flaky = fake.on_run(JOB, exit_code=1, stderr="flaky", times=2)
    fine = fake.on_run(JOB, stdout="ok")
    outcomes = [run_worker(unchecked_job, provider=fake)[0] for _ in range(4)]
    assert outcomes == [1, 1, 0, 0]
    assert (flaky.call_count, fine.call_count) == (2, 2)


def test_a_used_up_rule_is_reported_as_used_up(fake):
    fake.on_run(JOB, times=1)
    run_worker(run_job, provider=fake)
    with pytest.raises(UnexpectedCommand, match=r"used up \(answered 1 of times=1\)"):
        run_worker(run_job, provider=fake)


def test_files_written_by_a_run_can_be_downloaded(fake):
    fake.on_run(JOB, files={"/golem/output/result.json": {"n": 5}})
    assert run_worker(compute, "hi", provider=fake) == {"n": 5}
    session = fake.sessions[0]
    assert session.read_json("/golem/input/task.json") == {"word": "hi"}
    assert session.read("/golem/output/result.json") == b'{"n": 5}'


def test_file_contents_may_be_bytes_str_or_json(fake):
    fake.on_run(JOB, files={"/o/b": b"\x00\x01", "/o/s": "text \u00e9", "/o/j": [1, "a"]})

    def worker(ctx):
        batch = ctx.batch().run("python3", "/golem/input/job.py")
        batch.download_bytes("/o/b").download_bytes("/o/s").download_json("/o/j")
        results = yield batch
        return [r.data for r in results[1:]]

    assert run_worker(worker, provider=fake) == [b"\x00\x01", "text \u00e9".encode(), [1, "a"]]


def test_upload_download_round_trip_needs_no_script(tmp_path):
    local = tmp_path / "in.bin"
    local.write_bytes(b"file content")
    out = tmp_path / "out.bin"

    def worker(ctx):
        batch = ctx.batch()
        batch.send_file(local, "/golem/input/a").send_bytes(b"raw", "/golem/input/b")
        batch.send_json({"k": [1]}, "/golem/input/c")
        batch.download_file("/golem/input/a", out)
        batch.download_bytes("/golem/input/b").download_json("/golem/input/c")
        results = yield batch
        return [r.data for r in results[3:]]

    assert run_worker(worker) == [out, b"raw", {"k": [1]}]
    assert out.read_bytes() == b"file content"


def test_missing_download_names_the_path_and_the_worker_can_recover(fake):
    def worker(ctx):
        try:
            batch = ctx.batch().send_bytes(b"x", "/golem/input/there")
            yield batch.download_bytes("/golem/output/missing")
        except CommandExecutionError as exc:
            return str(exc), exc.index, [r.command for r in exc.results]

    message, index, done = run_worker(worker, provider=fake)
    assert "/golem/output/missing does not exist on fake-1 (it has: /golem/input/there)" in message
    assert index == 1 and done == [SendBytes(b"x", "/golem/input/there")]


def test_missing_local_file_to_send_is_refused_where_the_batch_is_built(fake, tmp_path):
    # issue 8: the requestor's own mistake is raised in the worker, never sent to a provider
    def worker(ctx):
        yield ctx.batch().send_file(tmp_path / "nope", "/golem/input/a")

    with pytest.raises(FileNotFoundError, match="local file .*nope.* does not exist"):
        run_worker(worker, provider=fake)
    assert fake.batches == []


def test_download_over_its_limit_fails(fake):
    def worker(ctx):
        yield ctx.batch().send_bytes(b"12345", "/f").download_bytes("/f", limit=4)

    with pytest.raises(CommandExecutionError, match="5 bytes, over the limit of 4"):
        run_worker(worker, provider=fake)


def test_download_json_of_invalid_json_fails(fake):
    def worker(ctx):
        yield ctx.batch().send_bytes(b"{nope", "/f").download_json("/f")

    with pytest.raises(CommandExecutionError, match="is not valid JSON"):
        run_worker(worker, provider=fake)


def test_sessions_start_with_the_provider_files_and_do_not_share_them():
    fake = FakeProvider(files={"/golem/input/job.py": "print(1)"})

    def worker(ctx, value):
        batch = ctx.batch().download_bytes("/golem/input/job.py")
        results = yield batch.send_bytes(value, "/golem/work/v")
        return results[0].data

    assert run_worker(worker, b"1", provider=fake) == b"print(1)"
    assert run_worker(worker, b"2", provider=fake) == b"print(1)"
    assert [s.files["/golem/work/v"] for s in fake.sessions] == [b"1", b"2"]


# -- handlers ----------------------------------------------------------------------------

def test_rule_handler_computes_the_answer_from_the_session(fake):
    def square(command, session):
        n = session.read_json("/golem/input/task.json")["word"]
        session.write("/golem/output/result.json", {"square": n * n})
        return RunOutput(stdout=f"squared {n}", exit_code=0)

    fake.on_run(JOB, handler=square)
    assert run_worker(compute, 7, provider=fake) == {"square": 49}
    assert fake.calls[1].result.stdout == "squared 7"


def test_provider_handler_answers_every_unmatched_run():
    fake = FakeProvider(lambda command, session: " ".join(reversed(command.args)))
    fake.on_run(JOB + " --scripted", stdout="rule")
    assert run_worker(run_job, "--scripted", provider=fake)[1] == "rule"
    assert run_worker(run_line, "echo", "hi", provider=fake) == "hi echo"


def test_handler_may_return_none_or_a_command_result(fake):
    fake.on_run("a", handler=lambda command, session: None)
    fake.on_run("b", handler=lambda command, session: CommandResult(command=command, index=0,
                                                                    exit_code=4))
    assert run_worker(run_line, "a", provider=fake) == ""
    with pytest.raises(CommandExecutionError) as info:
        run_worker(run_line, "b", provider=fake)
    assert info.value.exit_code == 4


def test_handler_returning_nonsense_is_a_type_error(fake):
    fake.on_run("a", handler=lambda command, session: 42)
    with pytest.raises(TypeError, match="returned int; return None, a str"):
        run_worker(run_line, "a", provider=fake)


def test_unscripted_runs_succeed_when_not_strict():
    fake = FakeProvider(strict=False)
    assert run_worker(run_job, provider=fake) == (0, "", "")
    assert fake.runs == [JOB]


# -- unexpected commands -----------------------------------------------------------------

def test_unexpected_command_lists_every_rule_and_why_it_did_not_match(fake):
    def is_render(line):
        return False

    fake.on_run("python3 /golem/input/job.py --slow")
    fake.on_run(re.compile("ffmpeg .*"))
    fake.on_run(is_render)
    fake.on_run(JOB, times=1)
    run_worker(run_job, provider=fake)
    with pytest.raises(UnexpectedCommand) as info:
        run_worker(run_job, "--fast", provider=fake)
    message = str(info.value)
    assert message == (
        "FakeProvider got a run command that no rule matches:\n"
        "  python3 /golem/input/job.py --fast    (session fake-2, batch 2, command #0)\n"
        "Rules (matched against the command line; the first match wins):\n"
        "  1. 'python3 /golem/input/job.py --slow': differs at character 30: "
        "rule has 'slow', command has 'fast'\n"
        "  2. re.compile('ffmpeg .*'): regex does not match the whole command line\n"
        "  3. test_unexpected_command_lists_every_rule_and_why_it_did_not_match"
        ".<locals>.is_render(): "
        "returned False\n"
        "  4. 'python3 /golem/input/job.py' (times=1, used 1): used up (answered 1 of times=1)\n"
        "Script it with fake.on_run(...), or build FakeProvider(strict=False) "
        "to answer unscripted runs with exit code 0."
    )
    assert info.value.command == Run(("python3", "/golem/input/job.py", "--fast"))
    assert len(info.value.reasons) == 4
    assert isinstance(fake.calls[-1].error, UnexpectedCommand)


def test_unexpected_command_without_rules_says_so(fake):
    with pytest.raises(UnexpectedCommand, match="No rules are scripted"):
        run_worker(run_job, provider=fake)


def test_unexpected_command_is_thrown_into_the_worker(fake):
    assert run_worker(run_twice, provider=fake) == ["UnexpectedCommand", "UnexpectedCommand"]


# -- scripted and injected errors --------------------------------------------------------

def test_rule_error_class_and_instance(fake):
    fake.on_run("a", error=CommandExecutionError)
    fake.on_run("b", error=ProviderError("yagna said no", provider="elsewhere"))
    with pytest.raises(CommandExecutionError, match="scripted failure of run a") as info:
        run_worker(run_line, "a", provider=fake)
    assert info.value.provider == "fake-1"
    errors = []
    for _ in range(2):  # each use raises a fresh copy
        with pytest.raises(ProviderError, match="yagna said no") as info:
            run_worker(run_line, "b", provider=fake)
        errors.append(info.value)
    assert errors[0] is not errors[1] and errors[0].provider == "elsewhere"


def test_rule_raising_provider_lost_loses_the_session(fake):
    fake.on_run(JOB, error=ProviderLost, times=1)
    fake.on_run(JOB)
    assert run_worker(run_twice, provider=fake) == ["ProviderLost", "ProviderLost"]
    assert fake.sessions[0].lost
    assert fake.rules[1].call_count == 0


def test_fail_nth_command_counts_across_the_provider(fake):
    fake.on_run(JOB)
    fake.fail_command(3)
    fake.fail_command(6, ValueError("not infrastructure"))
    assert run_worker(run_twice, provider=fake) == ["ok", "ok"]
    assert run_worker(run_twice, provider=fake) == ["CommandExecutionError", "ok"]
    with pytest.raises(ValueError, match="not infrastructure"):
        run_worker(run_twice, provider=fake)  # not a GolemTasksError: not thrown into the worker
    failed = [(c.session_id, c.index, type(c.error).__name__) for c in fake.calls if c.error]
    assert failed == [("fake-2", 0, "CommandExecutionError"), ("fake-3", 0, "ValueError")]
    assert fake.rules[0].call_count == 4  # an injected failure does not consume a rule


def test_fail_command_of_one_session(fake):
    fake.on_run(JOB)
    fake.fail_command(2, BatchTimeoutError, session="fake-2")
    assert run_worker(run_twice, provider=fake) == ["ok", "ok"]
    assert run_worker(run_twice, provider=fake) == ["ok", "BatchTimeoutError"]


def test_lose_a_session_after_some_commands(fake):
    fake.on_run(JOB)
    fake.lose_provider("fake-1", after_commands=1)
    assert run_worker(run_twice, provider=fake) == ["ok", "ProviderLost"]
    assert fake.sessions[0].lost
    assert run_worker(run_twice, provider=fake) == ["ok", "ok"]


def test_lose_a_session_by_number_before_it_is_engaged(fake):
    fake.on_run(JOB)
    fake.lose_provider(2)
    assert run_worker(run_twice, provider=fake) == ["ok", "ok"]
    with pytest.raises(ProviderLost, match="fake provider fake-2 is lost"):
        fake.engage().execute([])  # even an empty batch fails on a lost machine


def test_lose_an_engaged_idle_session_at_once(fake):
    session = fake.engage()
    fake.lose_provider(session)
    assert session.lost
    with pytest.raises(ProviderLost):
        session.execute([SendBytes(b"x", "/a")])
    assert fake.batches[0].error.provider == "fake-1"


def test_lose_a_session_while_its_command_hangs(fake):
    fake.on_run(JOB, hang=True)
    thread, outcome = run_in_thread(run_worker, run_job, provider=fake)
    assert fake.wait_for_commands(1)
    fake.lose_provider("fake-1")
    thread.join(5)
    assert isinstance(outcome["error"], ProviderLost)


# -- latency, hang, timeout and cancel ---------------------------------------------------

def test_latency_applies_to_every_command():
    # Measured by the batch timeout, not a clock: two 0.05 s commands do not fit in 0.08 s.
    def sends(count):
        def worker(ctx):
            batch = ctx.batch()
            for n in range(count):
                batch.send_bytes(b"", f"/{n}")
            yield batch
        return worker

    with pytest.raises(BatchTimeoutError):
        run_worker(sends(2), provider=FakeProvider(latency=0.05), batch_timeout=0.08)
    run_worker(sends(1), provider=FakeProvider(latency=0.05), batch_timeout=60)


def test_rule_latency_adds_to_its_runs(fake):
    fake.on_run(JOB, latency=0.1)
    with pytest.raises(BatchTimeoutError, match="during run python3"):
        run_worker(run_job, provider=fake, batch_timeout=0.05)
    run_worker(run_job, provider=fake, batch_timeout=60)


def test_cancel_from_another_thread_interrupts_latency():
    fake = FakeProvider(latency=60, strict=False)
    thread, outcome = run_in_thread(run_worker, run_job, provider=fake)
    assert fake.wait_for_commands(1)
    fake.sessions[0].cancel()
    thread.join(30)  # the latency is 60 s: only the cancel ends it within the join
    assert isinstance(outcome.get("error"), BatchCancelled)
    assert fake.sessions[0].released


def test_hang_ends_with_the_batch_timeout(fake):
    fake.on_run(JOB, hang=True)
    thread, outcome = run_in_thread(run_worker, run_job, provider=fake, batch_timeout=0.1)
    thread.join(5)  # in a thread, so a broken timeout fails the test instead of hanging it
    assert isinstance(outcome["error"], BatchTimeoutError)
    assert "timed out after 0.1 s during run python3" in str(outcome["error"])


def test_latency_longer_than_the_batch_timeout_times_out():
    fake = FakeProvider(latency=60)

    def worker(ctx):
        yield ctx.batch(timeout=0.05).send_bytes(b"", "/a")

    thread, outcome = run_in_thread(run_worker, worker, provider=fake)
    thread.join(5)
    assert isinstance(outcome["error"], BatchTimeoutError)
    assert isinstance(fake.batches[0].error, BatchTimeoutError) and fake.batches[0].timeout == 0.05


def test_hang_ends_when_cancelled(fake):
    fake.on_run(JOB, hang=True)
    thread, outcome = run_in_thread(run_worker, run_job, provider=fake)
    assert fake.wait_for_commands(1)
    fake.sessions[0].cancel()
    thread.join(5)
    assert isinstance(outcome["error"], BatchCancelled)


def test_close_ends_a_hanging_command(fake):
    fake.on_run(JOB, hang=True)
    thread, outcome = run_in_thread(run_worker, run_job, provider=fake)
    assert fake.wait_for_commands(1)
    fake.close()
    thread.join(5)
    assert isinstance(outcome["error"], ProviderLost)
    assert "the FakeProvider is closed (during run python3" in str(outcome["error"])


def test_sessions_stop_working_when_the_provider_closes():
    fake = FakeProvider()  # no latency: nothing to interrupt, the next command fails
    session = fake.engage()
    session.execute([SendBytes(b"1", "/x")])
    fake.close()
    with pytest.raises(ProviderLost, match="the FakeProvider is closed"):
        session.execute([SendBytes(b"2", "/x")])
    assert session.files == {"/x": b"1"}


def test_wait_for_commands_times_out(fake):
    assert fake.wait_for_commands(1, timeout=0.01) is False


# -- engage ------------------------------------------------------------------------------

def test_session_ids_count_up_and_skip_excluded(fake):
    ids = [fake.engage().info.id, fake.engage(exclude={"fake-2"}).info.id, fake.engage().info.id]
    assert ids == ["fake-1", "fake-3", "fake-4"]
    assert fake.sessions[0].info.properties["fake"] is True


def test_worker_sees_the_session_info():
    fake = FakeProvider(properties={"cpu": 4})

    def worker(ctx):
        return ctx.provider_id, ctx.provider_name, dict(ctx.provider.properties)
        yield  # pragma: no cover

    assert run_worker(worker, provider=fake) == ("fake-1", "fake-1", {"fake": True, "cpu": 4})


def test_fail_the_nth_engage(fake):
    fake.fail_engage(2)
    fake.fail_engage(3, error=ProviderLost("gone"))
    assert fake.engage().info.id == "fake-1"
    with pytest.raises(ProviderError, match=r"engage #2 failed"):
        fake.engage()
    with pytest.raises(ProviderLost, match="gone"):
        fake.engage()
    assert fake.engage().info.id == "fake-2"
    assert fake.engage_attempts == 4


def test_fail_every_later_engage(fake):
    fake.engage()
    fake.fail_engage()
    for _ in range(3):
        with pytest.raises(ProviderError):
            fake.engage()
    assert len(fake.sessions) == 1


def test_engage_refuses_when_aborted_closed_or_out_of_machines():
    fake = FakeProvider(max_sessions=1)
    aborted = threading.Event()
    aborted.set()
    with pytest.raises(ProviderError, match="aborted"):
        fake.engage(abort=aborted)
    fake.engage()
    with pytest.raises(ProviderError, match="max_sessions=1"):
        fake.engage()
    fake.close()
    fake.close()
    with pytest.raises(ProviderError, match="closed"):
        fake.engage()


# -- recording ---------------------------------------------------------------------------

def test_calls_batches_and_sessions_are_recorded(fake):
    fake.on_run(JOB, files={"/golem/output/result.json": 1})
    run_worker(compute, "a", provider=fake)
    with pytest.raises(UnexpectedCommand):
        run_worker(run_job, "--x", provider=fake)
    commands = (SendJson.of({"word": "a"}, "/golem/input/task.json"),
                Run(("python3", "/golem/input/job.py")),
                DownloadJson("/golem/output/result.json"))
    calls = fake.calls
    assert [c[:4] for c in calls] == [
        ("fake-1", 1, 0, commands[0]), ("fake-1", 1, 1, commands[1]), ("fake-1", 1, 2, commands[2]),
        ("fake-2", 2, 0, Run(("python3", "/golem/input/job.py", "--x"))),
    ]
    assert all(isinstance(c, Call) for c in calls)
    assert [c.result.data for c in calls[:3]] == [None, None, 1]
    first, second = fake.batches
    assert isinstance(first, BatchCall)
    assert first == BatchCall(1, "fake-1", commands, None, tuple(c.result for c in calls[:3]), None)
    assert (second.number, second.session_id, second.results) == (2, "fake-2", ())
    assert second.error is calls[3].error
    assert [(s.id, s.released) for s in fake.sessions] == [("fake-1", True), ("fake-2", True)]
    assert fake.runs == [JOB, JOB + " --x"]
    assert fake.commands(SendJson) == [commands[0]]
    assert len(fake.commands()) == 4


def test_records_are_snapshots(fake):
    calls = fake.calls
    run_worker(lambda ctx: (yield ctx.batch().send_bytes(b"", "/a")), provider=fake)
    assert calls == [] and len(fake.calls) == 1


def test_a_scenario_replays_identically():
    def scenario():
        fake = FakeProvider(latency=0.001)
        fake.on_run(JOB, exit_code=1, times=1)
        fake.on_run(JOB, files={"/golem/output/result.json": [1]})
        fake.fail_command(5)
        outcomes = []
        for word in "abc":
            try:
                outcomes.append(run_worker(compute, word, provider=fake))
            except CommandExecutionError as exc:
                outcomes.append(str(exc))
        calls = [(c[:5], type(c.error).__name__) for c in fake.calls]
        return outcomes, calls

    first = scenario()
    assert first[0][2] == [1]
    assert scenario() == first


# -- assertions and the context manager --------------------------------------------------

def test_assert_all_rules_used_names_unused_rules(fake):
    fake.on_run("a")
    fake.on_run("b", times=2)
    run_worker(run_line, "b", provider=fake)
    with pytest.raises(AssertionError) as info:
        fake.assert_all_rules_used()
    assert str(info.value) == (
        "2 scripted rule(s) not used up:\n"
        "  'a': answered 0 runs\n"
        "  'b' (times=2, used 1): answered 1 runs"
    )
    run_worker(run_line, "a", provider=fake)
    run_worker(run_line, "b", provider=fake)
    fake.assert_all_rules_used()


def test_context_manager_checks_rules_unless_the_block_failed():
    with pytest.raises(AssertionError, match="'unused'"):
        with FakeProvider() as fake:
            fake.on_run("unused")
    with pytest.raises(KeyError):  # the block's own error is not masked
        with FakeProvider() as fake:
            fake.on_run("unused")
            raise KeyError("x")
    with FakeProvider(assert_all_used=False) as fake:
        fake.on_run("unused")
    with pytest.raises(ProviderError, match="closed"):
        fake.engage()


def test_assert_all_released(fake):
    fake.engage().release()
    held = fake.engage()
    with pytest.raises(AssertionError, match="never released: fake-2"):
        fake.assert_all_released()
    held.release()
    held.release()  # idempotent
    fake.assert_all_released()


# -- run_worker and direct session use ---------------------------------------------------

def test_run_worker_rejects_a_non_generator_worker():
    def not_a_generator(ctx):
        return 1

    with pytest.raises(WorkerError, match="not a generator function"):
        run_worker(not_a_generator)


def test_run_worker_releases_the_session_when_the_worker_fails(fake):
    def broken(ctx):
        yield ctx.batch().send_bytes(b"", "/a")
        raise KeyError("bug in the worker")

    with pytest.raises(KeyError, match="bug in the worker"):
        run_worker(broken, provider=fake)
    assert fake.sessions[0].released


def test_session_execute_directly(fake):
    fake.on_run("echo hi", stdout="hi\n")
    session = fake.engage()
    results = session.execute([Run(("echo", "hi")), SendBytes(b"1", "/x")], timeout=5)
    assert [(r.index, r.stdout) for r in results] == [(0, "hi\n"), (1, "")]
    assert session.files == {"/x": b"1"}
    session.release()
    with pytest.raises(RuntimeError, match="used after release"):
        session.execute([])


def test_session_refuses_two_batches_at_once(fake):
    fake.on_run("sleep", hang=True)
    session = fake.engage()
    thread, outcome = run_in_thread(session.execute, [Run(("sleep",))])
    assert fake.wait_for_commands(1)
    with pytest.raises(RuntimeError, match="two batches at once"):
        session.execute([])
    session.cancel()
    thread.join(5)
    assert isinstance(outcome["error"], BatchCancelled)


@pytest.mark.parametrize("make, error", [
    (lambda: FakeProvider(latency=-1), ConfigurationError),
    (lambda: FakeProvider(handler="nope"), TypeError),
    (lambda: FakeProvider(max_sessions=0), ConfigurationError),
    (lambda: FakeProvider().on_run(42), TypeError),
    (lambda: FakeProvider().on_run("a", times=0), ConfigurationError),
    (lambda: FakeProvider().on_run("a", error="boom"), TypeError),
    (lambda: FakeProvider().on_run("a", stdout="x", handler=print), ConfigurationError),
    (lambda: FakeProvider().on_run("a", files={"relative": b""}), ValueError),
    (lambda: FakeProvider().on_run("a", files={"/a": object()}), TypeError),
    (lambda: FakeProvider().fail_command(0), ConfigurationError),
    (lambda: FakeProvider().lose_provider(1.5), TypeError),
    (lambda: FakeProvider().lose_provider(1, after_commands=-1), ConfigurationError),
])
def test_bad_arguments_are_refused_at_once(make, error):
    with pytest.raises(error):
        make()


# -- thread safety -----------------------------------------------------------------------

@pytest.fixture
def frequent_thread_switches():
    """Switch threads as often as possible, so a missing lock shows up as a race."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


@pytest.mark.usefixtures("frequent_thread_switches")
def test_many_threads_share_one_provider():
    threads, batches = 8, 200
    fake = FakeProvider()
    limited = fake.on_run(JOB, stdout="limited", times=500)
    fake.on_run(JOB, stdout="rest")
    start = threading.Barrier(threads)
    answers = [[] for _ in range(threads)]
    failures = []

    def body(me):
        try:
            session = fake.engage()
            start.wait()
            for n in range(batches):
                batch = [SendJson.of(n, "/golem/input/n"), Run(("python3", "/golem/input/job.py")),
                         DownloadJson("/golem/input/n")]
                results = session.execute(batch)
                assert results[2].data == n
                answers[me].append(results[1].stdout)
            session.release()
        except BaseException as exc:  # reported below: an assert in a thread is lost
            failures.append(exc)

    workers = [threading.Thread(target=body, args=(me,)) for me in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert failures == []
    total = threads * batches
    assert limited.call_count == 500 and fake.rules[1].call_count == total - 500
    assert sum(a.count("limited") for a in answers) == 500
    assert len(fake.calls) == 3 * total
    assert sorted(b.number for b in fake.batches) == list(range(1, total + 1))
    assert len({s.id for s in fake.sessions}) == threads
    fake.assert_all_released()


# -- the pytest plugin -------------------------------------------------------------------

def test_fixture_comes_from_the_entry_point(pytester):
    pytester.makepyfile(
        """
        import pytest
        from golem_tasks.testing import FakeProvider, run_worker

        def worker(ctx):
            results = yield ctx.run("echo", "hi")
            return results[0].stdout

        def test_fixture(fake_provider):
            assert isinstance(fake_provider, FakeProvider)
            fake_provider.on_run("echo hi", stdout="hi")
            assert run_worker(worker, provider=fake_provider) == "hi"

        @pytest.mark.fake_provider(strict=False, latency=0.01)
        def test_marker(fake_provider):
            assert run_worker(worker, provider=fake_provider) == ""

        def test_unused_rule(fake_provider):
            fake_provider.on_run("never")

        @pytest.mark.fake_provider(assert_all_used=False)
        def test_unused_rule_allowed(fake_provider):
            fake_provider.on_run("never")

        def test_failing_test_gets_one_report(fake_provider):
            fake_provider.on_run("never")
            assert False, "the test's own failure"
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_unused_rule *",
                                 "*'never': answered 0 runs*"])
    # One report each: the allowed rule and the failing test get no teardown error.
    errors = [line for line in result.outlines if "ERROR at teardown" in line]
    assert len(errors) == 1


def test_fixture_is_closed_after_the_test(pytester):
    pytester.makepyfile(
        """
        import pytest
        from golem_tasks.errors import ProviderError

        kept = []

        def test_keep(fake_provider):
            kept.append(fake_provider)

        def test_closed():
            with pytest.raises(ProviderError, match="closed"):
                kept[0].engage()
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_plugin_can_be_disabled_by_its_entry_point_name(pytester):
    pytester.makepyfile("def test_x(fake_provider):\n    pass\n")
    result = pytester.runpytest("-p", "no:golem_tasks", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'fake_provider' not found*"])


def test_record_false_keeps_no_history_but_still_answers():
    fake = FakeProvider(strict=False, record=False, assert_all_used=False)
    fake.on_run("echo", stdout="hi")

    def worker(ctx):
        batch = ctx.batch().run("echo").send_bytes(b"x", "/golem/input/x").download_bytes("/golem/input/x")
        results = yield batch
        return results[0].stdout, results[2].data

    assert run_worker(worker, provider=fake) == ("hi", b"x")
    assert fake.calls == [] and fake.batches == []
