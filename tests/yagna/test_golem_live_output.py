"""Live output on Golem (issue 3 §4): the batch's SSE stream feeds ``on_output``, the
polled results stay the authority, and the stream never outlives its batch."""

from __future__ import annotations

import http.server
import json
import threading
from typing import Any, Dict, List, Tuple

import pytest

from golem_tasks.commands import Run
from golem_tasks.errors import ApiError
from golem_tasks.providers.yagna._client import YagnaClient
from golem_tasks.providers.yagna.activity.models import ExeScriptCommandResult
from golem_tasks.providers.yagna.activity.api import ActivityApi
from golem_tasks.providers.yagna.activity.live import ExitMarkFilter, LiveOutput
from golem_tasks.providers.yagna.activity.plan import EXIT_MARK, plan, split_exit_code

from .golem_helpers import make_provider
from .yagna_samples import ACTIVITY, APP_KEY, exe_result, runtime_event, sse_frame

Chunks = List[Tuple[str, str]]


def recorder(chunks: Chunks, until: str = "") -> Tuple[Any, threading.Event]:
    """A callback appending to ``chunks``; the event is set once ``until`` was received."""
    seen = threading.Event()

    def on_output(stream: str, text: str) -> None:
        chunks.append((stream, text))
        if until and until in "".join(t for _, t in chunks):
            seen.set()
    return on_output, seen


def results(*items: Dict[str, Any]) -> Dict[int, ExeScriptCommandResult]:
    return {item["index"]: ExeScriptCommandResult.from_json(item) for item in items}


def stream_body(*kinds: Tuple[int, Dict[str, Any]]) -> str:
    return ":ping\n\n" + "".join(sse_frame(runtime_event(index, kind), frame_id=n)
                                 for n, (index, kind) in enumerate(kinds, 1))


def test_chunks_reach_the_callback_as_streamed(client, rsps, contract):
    chunks: Chunks = []
    on_output, seen = recorder(chunks, until="two")
    steps = plan([Run(("/bin/sh", "-c", "x"), on_output=on_output)], storage=None).steps
    body = stream_body((0, {"started": {"command": steps[0].exe}}), (0, {"stdout": "one\n"}),
                       (0, {"stderr": "warn\n"}), (0, {"stdout": "two\n"}),
                       (0, {"finished": {"return_code": 0, "message": None}}))
    rsps.get(ACTIVITY + "/activity/AC/exec/BA", body=body, content_type="text/event-stream")
    live = LiveOutput.watch(client.activity, "AC", "BA", steps, provider="p1")
    assert seen.wait(10)
    live.finish(results(exe_result(0, finished=True, stdout="one\ntwo\n", stderr="warn\n")))
    # Everything came live; the results add nothing twice.
    assert chunks == [("stdout", "one\n"), ("stderr", "warn\n"), ("stdout", "two\n")]
    if contract is not None:
        for line in body.splitlines():
            if line.startswith("data: "):
                assert contract.check_runtime_event(json.loads(line[6:])) == []


def test_runs_with_on_output_are_captured_as_a_stream():
    steps = plan([Run(("/bin/sh", "-c", "a"), on_output=print), Run(("/bin/sh", "-c", "b")),
                  Run(("/bin/sh", "-c", "c"), check=False, on_output=print)], storage=None).steps
    captures = [step.exe["run"]["capture"] for step in steps]
    assert captures[0] == captures[2] == {"stdout": {"stream": {"format": "string"}},
                                          "stderr": {"stream": {"format": "string"}}}
    assert captures[1]["stdout"] == {"atEnd": {"format": "string"}}


def test_output_the_stream_missed_comes_with_the_results(client, rsps):
    """The daemon does not replay: a command done before the subscription streams nothing."""
    chunks: Chunks = []
    on_output, _ = recorder(chunks)
    steps = plan([Run(("/bin/sh", "-c", "x"), check=False, on_output=on_output)], storage=None).steps
    rsps.get(ACTIVITY + "/activity/AC/exec/BA", body=":ping\n\n", content_type="text/event-stream")
    live = LiveOutput.watch(client.activity, "AC", "BA", steps, provider="p1")
    stderr = f"oops\n\n{EXIT_MARK}3\n"  # what the check=False wrapper reports
    live.finish(results(exe_result(0, finished=True, stdout="hello\n", stderr=stderr)))
    assert chunks == [("stdout", "hello\n"), ("stderr", "oops\n")]


def test_the_exit_code_report_of_an_unchecked_run_is_never_streamed(client, rsps):
    chunks: Chunks = []
    on_output, seen = recorder(chunks, until="bye")
    steps = plan([Run(("/bin/sh", "-c", "x"), check=False, on_output=on_output)], storage=None).steps
    body = stream_body((0, {"stderr": "e1\n"}), (0, {"stdout": "bye"}), (0, {"stderr": f"\n{EXIT_MARK}"}),
                       (0, {"stderr": "0\n"}), (0, {"finished": {"return_code": 0, "message": None}}))
    rsps.get(ACTIVITY + "/activity/AC/exec/BA", body=body, content_type="text/event-stream")
    live = LiveOutput.watch(client.activity, "AC", "BA", steps, provider="p1")
    assert seen.wait(10)
    live.finish(results(exe_result(0, finished=True, stdout="bye", stderr=f"e1\n\n{EXIT_MARK}0\n")))
    assert "".join(t for s, t in chunks if s == "stderr") == "e1\n"
    assert EXIT_MARK not in "".join(t for _, t in chunks)


@pytest.mark.parametrize("stderr", ["", "plain\n", "no end", "a\nb\n\n", "x\ngolem\n", f"fake {EXIT_MARK}1\n"])
def test_exit_mark_filter_gives_the_program_text_at_any_chunking(stderr):
    reported = stderr + f"\n{EXIT_MARK}-7\n"
    expected = split_exit_code(reported)[1]
    for cut in range(len(reported) + 1):
        mark = ExitMarkFilter()
        given = mark(reported[:cut]) + mark(reported[cut:])
        assert expected.startswith(given)  # held back text is handed over by the results


def test_a_late_subscription_is_not_patched_up(client, rsps):
    """When the stream started mid-output, the results cannot say what is missing:
    the callback keeps what it saw rather than getting text twice."""
    chunks: Chunks = []
    on_output, seen = recorder(chunks, until="two")
    steps = plan([Run(("/bin/sh", "-c", "x"), on_output=on_output)], storage=None).steps
    rsps.get(ACTIVITY + "/activity/AC/exec/BA", body=stream_body((0, {"stdout": "two\n"})),
             content_type="text/event-stream")
    live = LiveOutput.watch(client.activity, "AC", "BA", steps, provider="p1")
    assert seen.wait(10)
    live.finish(results(exe_result(0, finished=True, stdout="one\ntwo\n")))
    assert chunks == [("stdout", "two\n")]


def test_a_failing_callback_is_logged_and_the_batch_goes_on(client, rsps, caplog):
    calls = []

    def broken(stream: str, text: str) -> None:
        calls.append(text)
        raise RuntimeError("callback bug")

    steps = plan([Run(("/bin/sh", "-c", "x"), on_output=broken)], storage=None).steps
    rsps.get(ACTIVITY + "/activity/AC/exec/BA", body=":ping\n\n", content_type="text/event-stream")
    live = LiveOutput.watch(client.activity, "AC", "BA", steps, provider="p1")
    live.finish(results(exe_result(0, finished=True, stdout="a\n", stderr="b\n")))
    assert calls == ["a\n"] and "callback bug" in caplog.text


# ----------------------------------------------------- a stream that stays open
class _HeldStream(http.server.BaseHTTPRequestHandler):
    """Answers one SSE request with one event, then holds the connection open (like the
    daemon, which keeps streams open with pings) until the test releases it."""

    release: threading.Event
    protocol_version = "HTTP/1.1"  # chunked, as the daemon streams

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._chunk(sse_frame(runtime_event(0, {"stdout": "first\n"})))
        self.release.wait(30)
        try:  # after finish(): must never reach the callback
            self._chunk(sse_frame(runtime_event(0, {"stdout": "late\n"})))
        except OSError:
            pass
        self.close_connection = True

    def _chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def held_stream():
    release = threading.Event()
    handler = type("Handler", (_HeldStream,), {"release": release})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", release
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join()


def test_finish_closes_a_stream_blocked_on_a_quiet_daemon(held_stream, session):
    url, release = held_stream
    client = YagnaClient(session, url, APP_KEY)
    chunks: Chunks = []
    on_output, seen = recorder(chunks, until="first")
    steps = plan([Run(("/bin/sh", "-c", "x"), on_output=on_output)], storage=None).steps
    live = LiveOutput.watch(client.activity, "AC", "BA", steps, provider="p1")
    assert seen.wait(10)
    live.finish({})  # the batch failed: no results to catch up from
    assert not live._thread.is_alive()  # the read blocked on the socket was woken
    release.set()
    assert chunks == [("stdout", "first\n")]


# ------------------------------------------------------------ through a session
def test_a_session_hands_the_output_over_even_without_a_stream(daemon, monkeypatch):
    """The fake daemon plays no event streams: when the stream cannot be opened the live
    view is lost, yet the callback still gets the output, from the results."""
    def refused(*args: Any, **kwargs: Any) -> None:
        raise ApiError("GET .../exec/BA answered 500: no event stream here", status=500)

    monkeypatch.setattr(ActivityApi, "open_exec_batch_stream", refused)
    chunks: Chunks = []
    on_output, _ = recorder(chunks)
    with make_provider() as provider:
        session = provider.engage()
        try:
            [result] = session.execute([Run(("/bin/sh", "-c", "echo one; echo two >&2"), on_output=on_output)],
                                       timeout=10)
        finally:
            session.release()
    assert result.stdout == "one\n" and result.stderr == "two\n"
    assert chunks == [("stdout", "one\n"), ("stderr", "two\n")]
    sent = daemon.exeunit(session.activity_id).scripts[-1][-1]["run"]["capture"]
    assert sent["stdout"] == {"stream": {"format": "string"}}
