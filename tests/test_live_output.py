"""Live output (issue 3 §4): ``run(..., on_output=callback)`` and the ``CommandOutput``
event, on the fake provider and through the scheduler. The local provider's live
output is tested in test_local_provider.py, Golem's in tests/yagna and tests/localnet."""

from __future__ import annotations

import threading
from typing import Any, List, Tuple

import pytest

from golem_tasks import Batch, CommandExecutionError, Run
from golem_tasks import events as ev
from golem_tasks._output import OutputSink
from golem_tasks.testing import FakeProvider, run_worker

from .helpers import make_golem

Chunks = List[Tuple[str, str]]


# ------------------------------------------------------------------ the command
def test_on_output_is_not_part_of_a_runs_identity() -> None:
    plain = Run(("echo", "hi"))
    watched = Run(("echo", "hi"), on_output=lambda stream, text: None)
    assert watched == plain and hash(watched) == hash(plain) and repr(watched) == repr(plain)


def test_on_output_must_be_callable() -> None:
    with pytest.raises(TypeError, match="on_output"):
        Batch().run("echo", on_output="print")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- the sink
def test_a_character_cut_between_chunks_is_delivered_whole() -> None:
    chunks: Chunks = []
    sink = OutputSink(lambda stream, text: chunks.append((stream, text)), Run(("x",)))
    data = "héllo ✓\n".encode()
    for byte in data:
        sink.feed("stdout", bytes([byte]))
    sink.flush()
    assert "".join(text for _, text in chunks) == "héllo ✓\n"


def test_bad_bytes_are_replaced_as_in_the_result() -> None:
    chunks: Chunks = []
    sink = OutputSink(lambda stream, text: chunks.append((stream, text)), Run(("x",)))
    sink.feed("stderr", b"a\xff")
    sink.feed("stderr", b"\xc3")  # cut off by the end of the program
    sink.flush()
    assert "".join(text for _, text in chunks) == b"a\xff\xc3".decode("utf-8", "replace")


def test_calls_never_overlap_and_none_comes_after_close() -> None:
    inside, overlaps, calls = threading.Lock(), [], []

    def callback(stream: str, text: str) -> None:
        if not inside.acquire(blocking=False):
            overlaps.append(text)
            return
        try:
            calls.append(text)
        finally:
            inside.release()

    sink = OutputSink(callback, Run(("x",)))
    threads = [threading.Thread(target=lambda name=name: [sink.write(name, "x") for _ in range(2000)])
               for name in ("stdout", "stderr")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sink.close()
    sink.write("stdout", "late")
    assert overlaps == [] and len(calls) == 4000


def test_a_failing_callback_is_logged_once_and_dropped(caplog: pytest.LogCaptureFixture) -> None:
    calls: List[str] = []

    def broken(stream: str, text: str) -> None:
        calls.append(text)
        raise ValueError("bug in my callback")

    sink = OutputSink(broken, Run(("x",)))
    sink.write("stdout", "a")
    sink.write("stdout", "b")
    assert calls == ["a"] and len([r for r in caplog.records if "on_output callback" in r.getMessage()]) == 1


# ----------------------------------------------------------------- the fake
def test_the_fake_plays_scripted_output_line_by_line(fake_provider: FakeProvider) -> None:
    fake_provider.on_run("sh -c build", stdout="compiling\nlinking\n", stderr="warning\n")
    chunks: Chunks = []

    def worker(ctx: Any) -> Any:
        results = yield ctx.run("sh", "-c", "build", on_output=lambda s, t: chunks.append((s, t)))
        return results[0].stdout

    assert run_worker(worker, provider=fake_provider) == "compiling\nlinking\n"
    assert chunks == [("stdout", "compiling\n"), ("stdout", "linking\n"), ("stderr", "warning\n")]


def test_a_failing_run_still_streams_what_it_printed(fake_provider: FakeProvider) -> None:
    fake_provider.on_run("make", stderr="error: no rule\n", exit_code=2)
    chunks: Chunks = []

    def worker(ctx: Any) -> Any:
        try:
            yield ctx.run("make", on_output=lambda s, t: chunks.append((s, t)))
        except CommandExecutionError as exc:
            return exc.exit_code

    assert run_worker(worker, provider=fake_provider) == 2
    assert chunks == [("stderr", "error: no rule\n")]


# ------------------------------------------------------------- the event
def live_provider() -> FakeProvider:
    fake = FakeProvider(assert_all_used=False)
    fake.on_run(lambda line: line.startswith("count"), handler=lambda command, session: "1\n2\n")
    return fake


def counter(ctx: Any, item: int) -> Any:
    batch = ctx.batch()
    batch.send_bytes(b"x", "/golem/input/x")
    batch.run("count", str(item))
    results = yield batch
    return results[1]


def test_command_output_events_carry_where_the_output_came_from() -> None:
    seen: List[ev.CommandOutput] = []
    fake = live_provider()
    with make_golem(fake, max_workers=1) as golem:
        golem.add_event_consumer(seen.append, kinds=(ev.CommandOutput,))
        list(golem.map(counter, [7, 8]))
    assert sorted((e.index, e.command_index, e.stream, e.text) for e in seen) == [
        (0, 1, "stdout", "1\n"), (0, 1, "stdout", "2\n"), (1, 1, "stdout", "1\n"), (1, 1, "stdout", "2\n")]
    assert {e.provider_id for e in seen} == {fake.sessions[0].id} and all(e.job_id is not None for e in seen)


def test_the_event_and_the_workers_callback_both_get_the_output() -> None:
    seen: List[ev.Event] = []
    mine: Chunks = []

    def worker(ctx: Any) -> Any:
        results = yield ctx.run("count", "1", on_output=lambda s, t: mine.append((s, t)))
        return results[0].stdout

    everything: List[ev.Event] = []
    with make_golem(live_provider(), events=everything.append) as golem:
        golem.add_event_consumer(seen.append, kinds=(ev.CommandOutput,))
        assert golem.run(worker) == "1\n2\n"
    assert mine == [("stdout", "1\n"), ("stdout", "2\n")]
    assert [e.text for e in seen if isinstance(e, ev.CommandOutput)] == ["1\n", "2\n"]
    # Output is opt-in: a consumer of every event does not get it (on Golem, watching
    # output costs a live stream per batch).
    assert not any(isinstance(e, ev.CommandOutput) for e in everything)
    assert any(isinstance(e, ev.FragmentFinished) for e in everything)


def test_results_point_at_the_workers_own_commands_when_output_is_reported() -> None:
    mine: List[Any] = []

    def worker(ctx: Any) -> Any:
        batch = ctx.batch().run("count", "1")
        mine.append(batch.commands[0])
        results = yield batch
        return results[0].command

    with make_golem(live_provider(), events=lambda event: None) as golem:
        assert golem.run(worker) is mine[0]


def test_no_command_output_is_made_when_nobody_takes_it() -> None:
    fake = live_provider()
    with make_golem(fake) as golem:
        golem.add_event_consumer(lambda event: None, kinds=(ev.JobEvent,))
        assert [r.stdout for r in golem.map(counter, [1])] == ["1\n2\n"]
    # The commands reached the provider untouched: no per-chunk work was set up.
    assert all(getattr(call.command, "on_output", None) is None for call in fake.calls)
