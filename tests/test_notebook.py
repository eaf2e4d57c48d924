"""In a real Jupyter kernel: a job runs in a cell with its progress shown, and the
notebook's interrupt button (the kernel gets SIGINT) stops it: the cell ends with
KeyboardInterrupt, every program the job started is killed, every sandbox removed,
and the kernel stays usable for the next cell."""

from __future__ import annotations

import os
import queue
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

jupyter_client = pytest.importorskip("jupyter_client", reason="the notebook test needs jupyter_client")
pytest.importorskip("ipykernel", reason="the notebook test needs ipykernel")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def kernel() -> Iterator[Any]:
    manager, client = jupyter_client.manager.start_new_kernel(
        kernel_name="python3", cwd=str(ROOT), startup_timeout=60)
    try:
        yield manager, client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def run_cell(client: Any, code: str, timeout: float = 60.0) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """Execute ``code``; the execute_reply content and the iopub messages of the cell."""
    msg_id = client.execute(code)
    messages = []
    deadline = time.monotonic() + timeout
    while True:
        msg = client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    return shell_reply(client, msg_id, timeout), messages


def shell_reply(client: Any, msg_id: str, timeout: float) -> Dict[str, Any]:
    """The execute_reply to ``msg_id`` (skipping replies to earlier requests, such as the
    kernel_info of start-up)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]


def wait_for_cell_output(client: Any, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = client.get_iopub_msg(timeout=0.5)
        except queue.Empty:
            continue
        if msg["msg_type"] == "stream" and text in msg["content"]["text"]:
            return
    raise AssertionError(f"the cell never printed {text!r}")


def sleepers(root: Path) -> List[int]:
    """Pids of processes whose working directory is inside ``root`` (the job's programs)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd.startswith(str(root)):
            found.append(int(entry))
    return found


def test_interrupting_a_cell_stops_the_job_and_keeps_the_kernel(kernel, tmp_path):
    manager, client = kernel
    root = tmp_path / "sandboxes"
    root.mkdir()
    code = textwrap.dedent(f"""
        from golem_tasks import Golem, LocalProvider

        def slow(ctx, i):
            yield ctx.batch().run("/bin/sleep", "60")
            return i

        def announce(event):
            if type(event).__name__ == "FragmentStarted":
                print("fragment started", flush=True)

        with Golem(LocalProvider(root={str(root)!r}, sandbox="host"), max_workers=2) as golem:
            golem.add_event_consumer(announce)
            results = list(golem.map(slow, range(4)))
    """)
    msg_id = client.execute(code)
    wait_for_cell_output(client, "fragment started", timeout=60)
    deadline = time.monotonic() + 30  # a hang guard, not a speed bound
    while not sleepers(root) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sleepers(root), "the job's programs never started"

    manager.interrupt_kernel()  # what the notebook's stop button does: SIGINT to the kernel

    reply = shell_reply(client, msg_id, timeout=30)
    assert reply["status"] == "error"
    assert reply["ename"] == "KeyboardInterrupt"
    deadline = time.monotonic() + 30  # a hang guard; how fast: benchmarks/bench_latency.py
    while sleepers(root) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sleepers(root), "programs of the interrupted job are still running"
    assert list(root.iterdir()) == [], "sandboxes were left behind"

    # ipykernel aborts requests that arrive within stop_on_error_timeout of an error, as
    # a queued cell would be after a failed one; a person presses run later than that.
    time.sleep(1.0)
    content, messages = run_cell(client, "print(6 * 7)")
    assert content["status"] == "ok"
    assert any(m["content"].get("text") == "42\n" for m in messages if m["msg_type"] == "stream")


def test_progress_shows_in_a_notebook_cell(kernel):
    _, client = kernel
    code = textwrap.dedent("""
        from golem_tasks import Golem
        def square(ctx, n):
            result = yield ctx.batch().run("/bin/sh", "-c", f"echo {n * n}")
            return int(result[0].stdout)
        with Golem(max_workers=2) as golem:
            print(list(golem.map(square, range(6))))
    """)
    content, messages = run_cell(client, code, timeout=120)
    assert content["status"] == "ok", content.get("traceback")
    printed = "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")
    assert "[0, 1, 4, 9, 16, 25]" in printed
    # The notebook widget when ipywidgets is installed (its state travels in comm
    # messages), else the text bar on stderr; either way it reaches 6/6, and no
    # "IProgress not found" warning is printed.
    shown = [m for m in messages if m["msg_type"] in ("display_data", "comm_open", "comm_msg", "stream")]
    rendered = " ".join(str(m["content"]) for m in shown)
    assert "6/6" in rendered, rendered[-2000:]
    assert "IProgress" not in rendered
