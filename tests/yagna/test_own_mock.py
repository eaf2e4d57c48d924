"""The HTTP mocks of these tests answer only their own hosts: a thread left by another
test (a shared local network's provider agent) that calls its own daemon on this machine
neither breaks an ordered mock nor is refused."""

import threading

import pytest
import requests

from ..web import web_servers
from .yagna_samples import API_URL

STATE = f"{API_URL}/activity-api/v1/activity/AC/state"


@pytest.mark.ordered
@pytest.mark.not_yagna
def test_another_threads_call_to_another_local_port_leaves_the_ordered_mock_alone(rsps):
    rsps.get(STATE, json={"state": ["Ready", None]})
    rsps.get(STATE, json={"state": ["Unresponsive", None]})
    answers = []
    with web_servers(1) as (port,):
        assert requests.get(STATE).json()["state"][0] == "Ready"
        stranger = threading.Thread(target=lambda: answers.append(requests.get(f"http://127.0.0.1:{port}/x").text))
        stranger.start()
        stranger.join()
        assert requests.get(STATE).json()["state"][0] == "Unresponsive"
    assert answers == [f"hello from {port} /x"]
    assert [call.request.url for call in rsps.calls] == [STATE, STATE]


@pytest.mark.not_yagna
def test_a_call_to_another_machine_is_still_refused(rsps):
    rsps.get(STATE, json={"state": ["Ready", None]})
    with pytest.raises(requests.ConnectionError, match="Connection refused by Responses"):
        requests.get("https://yagna.example/activity-api/v1/activity/AC/state")
    requests.get(STATE)
