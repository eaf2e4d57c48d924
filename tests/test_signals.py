"""SIGTERM and SIGHUP during a job (issue 9 item 3): cleaned up exactly as Ctrl-C, then
the process ends with the signal's conventional status; the handlers exist only while
a job runs in the main thread; a Golem left open at exit is shut down.

The child-process tests run a small script with the local provider and synchronise on
its output ("running" once a fragment's command started), never on sleeps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from golem_tasks import Golem
from golem_tasks._signals import Terminated, job_signals
from golem_tasks.testing import FakeProvider

ROOT = Path(__file__).resolve().parents[1]
HANG = 120  # only to catch a hang

JOB = textwrap.dedent("""
    import sys
    from golem_tasks import Golem
    from golem_tasks.events import FragmentStarted

    pids = sys.argv[1]

    def slow(ctx, i):
        # The shell records its pid, then becomes `sleep`: the parent checks it was killed.
        yield ctx.run("/bin/sh", "-c", f"echo $$ >> {pids}; exec sleep 300")

    def report(event):
        if isinstance(event, FragmentStarted):
            sys.stdout.write("running\\n")  # one write: two workers may report at once
            sys.stdout.flush()

    try:
        with Golem(provider="local", max_workers=2, progress=False, events=report) as golem:
            for _ in golem.map(slow, range(4)):
                pass
    finally:
        print("cleaned up", flush=True)
""")


def child_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YAGNA_", "GOLEM_TASKS_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env["GOLEM_TASKS_SANDBOX"] = "host"
    return env


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead for our purpose
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


#: A job starts with the signals' default actions, as from a terminal: under nohup (or as a
#: background job of a CI script) the suite itself may have inherited SIGHUP ignored, which
#: the library rightly leaves alone.
DEFAULT_ACTIONS = ("import signal\nfor _signum in (signal.SIGTERM, signal.SIGHUP):\n"
                   "    signal.signal(_signum, signal.SIG_DFL)\n")


def run_and_signal(tmp_path, script: str, signum: int, *args: str):
    path = tmp_path / "job.py"
    path.write_text(DEFAULT_ACTIONS + script)
    pids = tmp_path / "pids"
    pids.touch()
    child = subprocess.Popen([sys.executable, str(path), str(pids), *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=child_env(), cwd=tmp_path)
    try:
        first = child.stdout.readline()
        assert first.startswith("running"), (first, child.stderr.read() if child.poll() is not None else "")
        # The fragment's shell writes its pid before `exec sleep`: wait for the line.
        while not pids.read_text().strip():
            if child.poll() is not None:
                break
            threading.Event().wait(0.01)
        child.send_signal(signum)
        out, err = child.communicate(timeout=HANG)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return child.returncode, first + out, err, [int(p) for p in pids.read_text().split()]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_cleans_up_like_ctrl_c_and_the_exit_status_says_which(tmp_path, signum):
    code, out, err, pids = run_and_signal(tmp_path, JOB, signum)
    assert code == -signum, (code, err[-2000:])
    assert "cleaned up" in out  # finally blocks ran: it was an exception, not a sudden death
    assert f"Terminated: terminated by {signal.Signals(signum).name}" in err
    assert pids and not any(alive(pid) for pid in pids)  # the running commands were killed


def test_a_handler_of_the_program_is_left_alone(tmp_path):
    script = textwrap.dedent("""
        import signal, sys
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))
    """) + JOB
    code, out, _, pids = run_and_signal(tmp_path, script, signal.SIGTERM)
    assert code == 7 and "cleaned up" in out  # the program's own SystemExit, cleaned up too
    assert not any(alive(pid) for pid in pids)


def test_an_open_golem_is_shut_down_at_exit(tmp_path):
    script = textwrap.dedent("""
        import logging
        logging.basicConfig()
        from golem_tasks import Golem
        golem = Golem(provider="local", max_workers=2, progress=False)
        print(list(golem.map(lambda ctx, i: (yield ctx.run("/bin/echo", str(i)))[0].stdout.strip(), range(3))))
        # no shutdown: without the exit hook the interpreter waits forever for the pool's threads
    """)
    path = tmp_path / "open.py"
    path.write_text(script)
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, env=child_env(),
                          timeout=HANG, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "['0', '1', '2']" in done.stdout
    assert "still open at exit" in done.stderr


def test_the_handlers_exist_only_while_a_job_runs_in_the_main_thread():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    fake = FakeProvider()
    fake.on_run("/bin/true")
    during = []
    with Golem(fake, max_workers=1, progress=False) as golem:
        for _ in golem.map(lambda ctx, i: (yield ctx.run("/bin/true")), range(2)):
            during.append(signal.getsignal(signal.SIGTERM))
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == before
    if before[0] == signal.SIG_DFL:  # else the test runner has its own handler, left alone
        assert during and all(callable(handler) for handler in during)


def test_no_handler_outside_the_main_thread():
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def other():
        with job_signals():
            seen.append(signal.getsignal(signal.SIGTERM))
    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen == [before]


def test_a_signal_in_the_main_thread_raises_terminated_once():
    if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        pytest.skip("the test runner handles SIGTERM itself")
    with pytest.raises(Terminated) as caught:
        with job_signals():
            signal.raise_signal(signal.SIGTERM)
    assert caught.value.signum == signal.SIGTERM and isinstance(caught.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_the_signal_is_delivered_again_only_when_terminated_ended_a_script(monkeypatch):
    from golem_tasks import _signals
    kills = []
    monkeypatch.setattr(_signals.os, "kill", lambda pid, signum: kills.append(signum))
    monkeypatch.setattr(_signals.signal, "signal", lambda signum, handler: None)
    monkeypatch.setattr(_signals.logging, "shutdown", lambda: None)  # pytest's own handlers stay
    for name in ("last_exc", "last_value"):  # 3.12+ reads last_exc
        monkeypatch.setattr(sys, name, Terminated(signal.SIGTERM), raising=False)
    monkeypatch.setattr(sys, "ps1", ">>> ", raising=False)
    _signals._redeliver()
    assert kills == []  # a REPL showed the error and went on
    monkeypatch.delattr(sys, "ps1")
    monkeypatch.setattr(_signals, "_interactive", lambda: False)
    _signals._redeliver()
    assert kills == [signal.SIGTERM]
    for name in ("last_exc", "last_value"):
        monkeypatch.setattr(sys, name, ValueError("not a signal"), raising=False)
    _signals._redeliver()
    assert kills == [signal.SIGTERM]
