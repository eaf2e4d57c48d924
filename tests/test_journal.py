"""Resumable jobs: ``journal=PATH`` records delivered results; a rerun hands them back
without running them and runs only the rest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golem_tasks import Task
from golem_tasks import events as ev
from golem_tasks.journal import Journal, JobSignature, JournalError, recorded_values, stable_hash
from golem_tasks.testing import FakeProvider

from .helpers import make_golem


def square(ctx, n):
    results = yield ctx.run("echo", str(n))
    return int(results[0].stdout) ** 2


def square_tasks(ctx, tasks):
    for task in tasks:
        results = yield ctx.run("echo", str(task.data))
        task.accept_result(int(results[0].stdout) ** 2)


def unpicklable(ctx, n):
    yield ctx.run("echo", str(n))
    return threading.Lock()


def echo_fake(**kwargs) -> FakeProvider:
    fake = FakeProvider(assert_all_used=False, **kwargs)
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda command, session: command.args[1])
    return fake


def ran(fake: FakeProvider) -> list:
    """The items the fake ran, sorted."""
    return sorted(int(line.split()[1]) for line in fake.runs)


def signature_of(worker, kind="map", key=None) -> JobSignature:
    return JobSignature.of(worker, kind, key)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "job.journal"


# ------------------------------------------------------------------ resuming
def test_rerun_yields_recorded_results_in_order_and_runs_only_the_rest(path):
    fake = echo_fake()
    with make_golem(fake, max_workers=2) as golem:
        results = golem.map(square, range(10), journal=path)
        assert [next(results) for _ in range(4)] == [0, 1, 4, 9]
        results.close()
    recorded = {index for index, _ in recorded_values(path)}
    assert set(range(4)) <= recorded

    fake = echo_fake()
    with make_golem(fake, max_workers=2) as golem:
        assert list(golem.map(square, range(10), journal=path)) == [n * n for n in range(10)]
    assert ran(fake) == sorted(set(range(10)) - recorded)

    fake = echo_fake()
    with make_golem(fake, max_workers=2) as golem:
        assert list(golem.map(square, range(10), journal=path)) == [n * n for n in range(10)]
    assert fake.runs == []


def test_as_completed_and_for_each_share_the_journal_of_map(path):
    with make_golem(echo_fake()) as golem:
        assert list(golem.map(square, range(5), journal=path)) == [0, 1, 4, 9, 16]
    fake = echo_fake()
    with make_golem(fake) as golem:
        results = sorted(golem.as_completed(square, range(7), journal=path))
        assert [(r.index, r.item, r.value) for r in results] == [(n, n, n * n) for n in range(7)]
        golem.for_each(square, range(8), journal=path)
    assert ran(fake) == [5, 6, 7]


def test_execute_tasks_yields_recorded_tasks_accepted(path):
    with make_golem(echo_fake()) as golem:
        first = list(golem.execute_tasks(square_tasks, [Task(n) for n in range(3)], journal=path))
    assert sorted(t.result for t in first) == [0, 1, 4]
    fake = echo_fake()
    with make_golem(fake) as golem:
        tasks = list(golem.execute_tasks(square_tasks, range(5), journal=path))
    assert sorted((t.data, t.result, t.status.value) for t in tasks) == \
        [(n, n * n, "accepted") for n in range(5)]
    assert ran(fake) == [3, 4]


def test_failures_are_not_recorded_and_run_again(path):
    fake = FakeProvider(assert_all_used=False)
    fake.on_run("echo 2", exit_code=1, stderr="broken")  # the first rule that matches wins
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda command, session: command.args[1])
    with make_golem(fake, max_retries=0) as golem:
        values = list(golem.map(square, range(4), journal=path, return_exceptions=True))
    assert isinstance(values[2], Exception) and values[:2] == [0, 1] and values[3] == 9
    fake = echo_fake()
    with make_golem(fake) as golem:
        assert list(golem.map(square, range(4), journal=path)) == [0, 1, 4, 9]
    assert ran(fake) == [2]


def test_replayed_fragments_are_reported_as_events(path):
    with make_golem(echo_fake()) as golem:
        list(golem.map(square, range(3), journal=path))
    seen: list = []
    with make_golem(echo_fake(), events=seen.append) as golem:
        list(golem.map(square, range(4), journal=path))
    assert sorted(e.index for e in seen if isinstance(e, ev.FragmentReplayed)) == [0, 1, 2]
    finished = [e for e in seen if isinstance(e, ev.JobFinished)]
    assert finished[-1].done == 4 and finished[-1].error is None


def test_key_function_matches_items_by_their_own_id(path):
    words = ["ant", "bee", "cat"]

    def length(ctx, word):
        results = yield ctx.run("echo", str(len(word)))
        return int(results[0].stdout)

    fake = FakeProvider(assert_all_used=False)
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda command, session: command.args[1])
    with make_golem(fake) as golem:
        assert list(golem.map(length, words, journal=path, key=str)) == [3, 3, 3]
    fake = FakeProvider(assert_all_used=False)
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda command, session: command.args[1])
    with make_golem(fake) as golem:  # reordered and extended: only the new word runs
        assert list(golem.map(length, ["horse", "cat", "ant"], journal=path, key=str)) == [5, 3, 3]
    assert fake.runs == ["echo 5"]


# --------------------------------------------------------------------- errors
def test_a_changed_input_under_the_same_index_is_an_error(path):
    with make_golem(echo_fake()) as golem:
        list(golem.map(square, [1, 2, 3], journal=path))
    fake = echo_fake()
    with make_golem(fake) as golem:
        with pytest.raises(JournalError, match="item 1 is not the item recorded.*input changed"):
            list(golem.map(square, [1, 5, 3], journal=path))


def test_a_journal_of_another_job_is_refused_at_the_call(path):
    with make_golem(echo_fake()) as golem:
        list(golem.map(square, [1], journal=path))
        with pytest.raises(JournalError, match="belongs to another job.*unpicklable"):
            golem.map(unpicklable, [1], journal=path)  # raises before iterating
        with pytest.raises(JournalError, match="execute_tasks"):
            golem.execute_tasks(square_tasks, [1], journal=path)
        with pytest.raises(JournalError, match="keyed by key="):
            golem.map(square, [1], journal=path, key=str)


def test_a_file_that_is_not_a_journal_is_refused(tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("not a database, just some text that is long enough " * 20)
    with make_golem(echo_fake()) as golem:
        with pytest.raises(JournalError, match="not a golem_tasks journal"):
            golem.map(square, [1], journal=other)
        with pytest.raises(JournalError, match="is a directory"):
            golem.map(square, [1], journal=tmp_path)
        with pytest.raises(JournalError, match="pass journal=PATH too"):
            golem.map(square, [1], key=str)


def test_a_result_that_cannot_be_stored_names_the_fragment_and_the_fix(path):
    with make_golem(echo_fake()) as golem:
        with pytest.raises(JournalError, match=r"result of fragment 0 cannot be stored.*picklable"):
            list(golem.map(unpicklable, [7], journal=path))


def test_an_item_that_cannot_be_hashed_asks_for_a_key(path):
    def takes_lock(ctx, item):
        yield ctx.run("echo", "1")
        return 1

    with make_golem(echo_fake()) as golem:
        with pytest.raises(JournalError, match=r"item 0 cannot be hashed.*key="):
            list(golem.map(takes_lock, [threading.Lock()], journal=path))
        assert list(golem.map(takes_lock, [threading.Lock()], journal=path.with_suffix(".k"),
                              key=lambda lock: "the lock")) == [1]


def test_duplicate_keys_are_an_error(path):
    with make_golem(echo_fake()) as golem:
        with pytest.raises(JournalError, match="same key"):
            list(golem.map(square, [1, 2, 1], journal=path, key=str))


# ------------------------------------------------------------------ hashing
def test_stable_hash_ignores_set_and_dict_order_and_tells_types_apart():
    assert stable_hash({"b": 1, "a": 2}) == stable_hash({"a": 2, "b": 1})
    assert stable_hash(frozenset(["x", "y"])) == stable_hash(frozenset(["y", "x"]))
    assert len({stable_hash(v) for v in (1, 1.0, "1", b"1", (1,), [1], True, None)}) == 8


@pytest.mark.slow
def test_stable_hash_is_the_same_in_another_process():
    code = ("from golem_tasks.journal import stable_hash; "
            "print(stable_hash({'s': {'a', 'b', 'c'}, 'n': [1, 2.5]}).hex())")
    outputs = {subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed},
                              capture_output=True, text=True, check=True).stdout for seed in ("1", "2")}
    assert outputs == {stable_hash({"s": {"a", "b", "c"}, "n": [1, 2.5]}).hex() + "\n"}


# ----------------------------------------------------------------- property
@settings(max_examples=40)
@given(n=st.integers(min_value=0, max_value=30), data=st.data(),
       kind=st.sampled_from(["map", "as_completed", "execute_tasks"]))
def test_any_journaled_subset_reruns_exactly_the_missing_fragments(tmp_path_factory, n, data, kind):
    done = data.draw(st.sets(st.integers(min_value=0, max_value=max(0, n - 1)), max_size=n) if n else st.just(set()))
    path = tmp_path_factory.mktemp("j") / "job.journal"
    worker = square_tasks if kind == "execute_tasks" else square
    with Journal.open(path, signature_of(worker, kind)) as journal:
        for index in done:
            journal.record(journal.key_of(index, index), index * index)
    fake = echo_fake()
    with make_golem(fake, max_workers=3) as golem:
        if kind == "map":
            values = list(golem.map(square, range(n), journal=path))
        elif kind == "as_completed":
            values = [r.value for r in sorted(golem.as_completed(square, range(n), journal=path))]
        else:
            tasks = golem.execute_tasks(square_tasks, range(n), journal=path)
            values = [t.result for t in sorted(tasks, key=lambda t: t.data)]
    assert values == [i * i for i in range(n)]
    assert ran(fake) == sorted(set(range(n)) - done)
    assert [index for index, _ in recorded_values(path)] == list(range(n))


# ----------------------------------------------------------------- SIGKILL
CHILD = textwrap.dedent("""
    import json, sys
    from golem_tasks import Golem
    from golem_tasks.testing import FakeProvider

    def square(ctx, n):
        results = yield ctx.run("echo", str(n))
        return int(results[0].stdout) ** 2

    journal, mode = sys.argv[1], sys.argv[2]
    fake = FakeProvider(assert_all_used=False)
    if mode == "first":  # items from 10 on hang: they are in flight when the process is killed
        fake.on_run(lambda line: int(line.split()[1]) >= 10, hang=True)
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda command, session: command.args[1])
    with Golem(fake, max_workers=3, progress=False) as golem:
        values = []
        for index, value in enumerate(golem.map(square, range(20), journal=journal)):
            values.append(value)
            print(index, value, flush=True)
            if mode == "first" and index == 9:
                print("ready", flush=True)
    print(json.dumps({"values": values, "runs": fake.runs}), flush=True)
""")


@pytest.mark.slow
def test_a_job_killed_with_sigkill_loses_only_the_fragments_in_flight(tmp_path, path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen([sys.executable, str(script), str(path), "first"], stdout=subprocess.PIPE, text=True)
    try:
        delivered = []
        for line in child.stdout:  # type: ignore[union-attr]
            if line.strip() == "ready":
                break
            delivered.append(int(line.split()[0]))
        else:
            pytest.fail(f"the child ended early with {child.wait()}")
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()  # type: ignore[union-attr]
    recorded = {index for index, _ in recorded_values(path)}
    assert delivered == list(range(10)) and recorded == set(range(10))

    rerun = subprocess.run([sys.executable, str(script), str(path), "rerun"], capture_output=True, text=True,
                           timeout=120, check=True)
    outcome = json.loads(rerun.stdout.splitlines()[-1])
    assert outcome["values"] == [n * n for n in range(20)]
    assert sorted(outcome["runs"]) == sorted(f"echo {n}" for n in range(10, 20))


def test_lookups_in_any_order_see_every_record(path):
    with Journal.open(path, signature_of(square)) as journal:
        for index in (0, 5, 9):
            journal.record(journal.key_of(index, index), index)
        assert journal.lookup(journal.key_of(7, 7)) is None  # reads a chunk starting at 7
        journal.record(journal.key_of(8, 8), 8)  # inside the chunk read
        found = {i: journal.lookup(journal.key_of(i, i)) for i in (9, 8, 5, 0, 3)}
    assert {i: (r.value if r else None) for i, r in found.items()} == {9: 9, 8: 8, 5: 5, 0: 0, 3: None}
