"""ActivityApi: activities, exec, polled and streamed results, state, destroy."""

import io
import json

import pytest
from responses import matchers

from golem_tasks.errors import ApiError
from golem_tasks.providers.yagna import NotFound, NotYagna, TransportError
from golem_tasks.providers.yagna.activity.exescript import deploy_command, start_command
from golem_tasks.providers.yagna.activity.models import ActivityState

from .yagna_samples import ACTIVITY, exe_result, runtime_event, sse_frame

SCRIPT = [deploy_command(), start_command()]


def test_create_activity(client, rsps):
    rsps.post(ACTIVITY + "/activity", json={"activityId": "AC"},
              match=[matchers.json_params_matcher({"agreementId": "AG"}),
                     matchers.query_param_matcher({"timeout": "30.0"})])
    assert client.activity.create_activity("AG") == "AC"


def test_create_activity_accepts_the_string_answer(client, rsps):
    rsps.post(ACTIVITY + "/activity", json="AC", match=[matchers.query_param_matcher({"timeout": "60"})])
    assert client.activity.create_activity("AG", timeout=60) == "AC"


def test_exec_sends_the_script_as_text(client, rsps):
    text = '[{"deploy":{}},{"start":{"args":[]}}]'
    rsps.post(ACTIVITY + "/activity/AC/exec", json="BA", match=[matchers.json_params_matcher({"text": text})])
    assert client.activity.exec_script("AC", SCRIPT) == "BA"


def test_exec_refused_by_the_daemon(client, rsps):
    rsps.post(ACTIVITY + "/activity/AC/exec", status=400, json={"message": "manifest violation: inet"})
    with pytest.raises(ApiError, match="manifest violation") as info:
        client.activity.exec_script("AC", SCRIPT)
    assert info.value.status == 400


def test_results_of_a_finished_batch(client, rsps):
    rsps.get(ACTIVITY + "/activity/AC/exec/BA", match=[matchers.query_param_matcher({"timeout": "20"})],
             json=[exe_result(0), exe_result(1, stdout="hi\n", stderr="", finished=True)])
    first, second = client.activity.get_exec_batch_results("AC", "BA", timeout=20)
    assert first.ok and first.stdout is None and not first.is_batch_finished
    assert second.stdout == "hi\n" and second.is_batch_finished and second.exit_code == 0


def test_results_of_a_failed_run(client, rsps):
    message = "ExeScript command exited with code 3"
    rsps.get(ACTIVITY + "/activity/AC/exec/BA",
             json=[exe_result(0, "Error", finished=True, stderr="boom\n", message=message)])
    [result] = client.activity.get_exec_batch_results("AC", "BA")
    assert not result.ok and result.exit_code == 3 and result.stderr == "boom\n"


def test_results_up_to_a_command_index(client, rsps):
    rsps.get(ACTIVITY + "/activity/AC/exec/BA", json=[exe_result(0), exe_result(1, stdout="x", finished=True)],
             match=[matchers.query_param_matcher({"timeout": "5.0", "commandIndex": "1"})])
    assert len(client.activity.get_exec_batch_results("AC", "BA", command_index=1)) == 2


def test_results_of_an_unknown_batch(client, rsps):
    rsps.get(ACTIVITY + "/activity/AC/exec/XX", status=404, json={"message": "batch XX not found"})
    with pytest.raises(NotFound):
        client.activity.get_exec_batch_results("AC", "XX")


def test_results_when_the_exe_unit_died(client, rsps, waits):
    for _ in range(4):
        rsps.get(ACTIVITY + "/activity/AC/exec/BA", status=500,
                 json={"message": "GSB error: GSB failure: Bad request: endpoint address not found"})
    with pytest.raises(ApiError, match="endpoint address not found") as info:
        client.activity.get_exec_batch_results("AC", "BA")
    assert info.value.status == 500 and len(waits) == 3


STREAM = "".join([
    ":ping\n\n",
    sse_frame(runtime_event(0, {"started": {"command": {"run": {"entry_point": "/bin/sh", "args": []}}}}), frame_id=1),
    sse_frame(runtime_event(0, {"stdout": "hello\n"}), frame_id=2),
    sse_frame(runtime_event(0, {"finished": {"return_code": 0, "message": None}}), frame_id=3),
    ":ping\n\n",
])


def test_stream_results(client, rsps, contract):
    rsps.get(ACTIVITY + "/activity/AC/exec/BA", body=STREAM, content_type="text/event-stream",
             match=[matchers.header_matcher({"Accept": "text/event-stream"})])
    events = list(client.activity.stream_exec_batch_results("AC", "BA"))
    assert [event.kind for event in events] == ["started", "stdout", "finished"]
    assert events[1].output == "hello\n" and events[2].return_code == 0
    assert {event.batch_id for event in events} == {"BA"}
    if contract is not None:
        for line in STREAM.splitlines():
            if line.startswith("data: "):
                assert contract.check_runtime_event(json.loads(line[6:])) == []


def test_stream_accept_header_is_exact(client, rsps):
    rsps.get(ACTIVITY + "/activity/AC/exec/BA", body="", content_type="text/event-stream")
    list(client.activity.stream_exec_batch_results("AC", "BA"))
    assert rsps.calls[0].request.headers["Accept"] == "text/event-stream"


def test_stream_is_closed_when_the_consumer_stops(client, rsps):
    rsps.get(ACTIVITY + "/activity/AC/exec/BA", body=STREAM, content_type="text/event-stream")
    events = client.activity.stream_exec_batch_results("AC", "BA")
    assert next(events).kind == "started"
    events.close()
    assert rsps.calls[0].response.raw.closed


def test_stream_errors_surface_when_asked(client, rsps):
    rsps.get(ACTIVITY + "/activity/AC/exec/XX", status=404, json={"message": "batch XX not found"})
    with pytest.raises(NotFound):
        client.activity.stream_exec_batch_results("AC", "XX")  # before any iteration


@pytest.mark.not_yagna
def test_stream_answered_with_json_is_not_yagna(client, rsps):
    rsps.get(ACTIVITY + "/activity/AC/exec/BA", json=[])
    with pytest.raises(NotYagna, match="not an event stream"):
        client.activity.stream_exec_batch_results("AC", "BA")


class _BrokenBody(io.RawIOBase):
    """A body whose connection resets after the first frame."""

    def __init__(self):
        super().__init__()
        self.sent = False

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.sent:
            raise ConnectionResetError("Connection reset by peer")
        self.sent = True
        frame = sse_frame(runtime_event(0, {"stdout": "a"})).encode()
        buffer[:len(frame)] = frame
        return len(frame)


def test_a_stream_that_breaks_is_a_transport_error(client, rsps):
    rsps.get(ACTIVITY + "/activity/AC/exec/BA", body=io.BufferedReader(_BrokenBody()),
             content_type="text/event-stream",
             auto_calculate_content_length=False)
    events = client.activity.stream_exec_batch_results("AC", "BA")
    with pytest.raises(TransportError, match="Connection reset by peer") as info:
        list(events)
    assert info.value.request_sent is True


def test_get_state(client, rsps):
    rsps.get(ACTIVITY + "/activity/AC/state",
             json={"state": ["Terminated", None], "reason": "execution aborted", "errorMessage": "exit code None"})
    state = client.activity.get_state("AC")
    assert state == ActivityState(state="Terminated", reason="execution aborted", error_message="exit code None")
    assert not state.alive and not state.ready


def test_destroy_activity(client, rsps):
    rsps.delete(ACTIVITY + "/activity/AC", json=None, match=[matchers.query_param_matcher({"timeout": "10.0"})])
    assert client.activity.destroy_activity("AC") is None
