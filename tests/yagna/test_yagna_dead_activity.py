"""A dead exe-unit is found out on the first sign of it, not after a long poll and its
retries: results polls are short, a GSB error makes the batch read the activity state
at once, and a poll that ends with its command still running reads it too."""

import threading

import pytest
import responses

from golem_tasks.errors import ProviderError, ProviderLost
from golem_tasks.providers.yagna import DEFAULT_POLICIES, CallKind, Timeouts
from golem_tasks.providers.yagna._client import YagnaClient
from golem_tasks.providers.yagna.activity.polling import collect
from golem_tasks.providers.yagna._connect import gsb_errors_not_retried

from .yagna_samples import ACTIVITY, API_URL, APP_KEY, exe_result

GSB_GONE = {"message": "GSB error: Remote service at `/net/0xabc/exeunit/AC` error: GSB failure: Bad request: "
                       "endpoint address not found"}
RESULTS = f"{ACTIVITY}/activity/AC/exec/BA"
STATE = f"{ACTIVITY}/activity/AC/state"
ALIVE = {"state": ["Ready", None]}
TERMINATED = {"state": ["Terminated", None], "reason": "execution aborted", "errorMessage": "exit code None"}
POLL = DEFAULT_POLICIES[CallKind.POLL]


@pytest.fixture
def api(session, waits):
    """The activity API as a Golem session builds it: GSB errors are not retried."""
    return YagnaClient(session, API_URL, APP_KEY, policies=gsb_errors_not_retried(DEFAULT_POLICIES),
                       sleep=waits.append).activity


def run(api, count=1, stop=None):
    return collect(api, "AC", "BA", count, deadline=None, poll=3, stop=stop or threading.Event(), provider="P")


def calls_to(rsps, url):
    return [call for call in rsps.calls if call.request.url.split("?")[0] == url]


def test_the_default_poll_is_short_enough_to_notice_a_dead_exe_unit_within_seconds():
    # The daemon does not end a pending results poll when the exe-unit dies.
    assert Timeouts().poll <= 3


def test_a_gsb_error_reads_the_state_at_once_and_a_terminated_activity_is_lost(rsps, api, waits):
    rsps.get(RESULTS, status=500, json=GSB_GONE)
    rsps.get(STATE, json=TERMINATED)
    with pytest.raises(ProviderLost, match="the activity is Terminated.*execution aborted"):
        run(api)
    assert len(calls_to(rsps, RESULTS)) == 1 and len(calls_to(rsps, STATE)) == 1
    assert waits == []  # no retry, no backoff


def test_an_unresponsive_activity_is_lost_too(rsps, api, waits):
    rsps.get(RESULTS, status=500, json=GSB_GONE)
    rsps.get(STATE, json={"state": ["Unresponsive", None]})
    with pytest.raises(ProviderLost, match="Unresponsive"):
        run(api)
    assert waits == []


def test_a_state_read_failing_with_a_gsb_error_too_means_the_provider_is_gone(rsps, api, waits):
    rsps.get(RESULTS, status=500, json=GSB_GONE)
    rsps.get(STATE, status=500, json=GSB_GONE)
    with pytest.raises(ProviderLost, match="its state cannot be read"):
        run(api)
    assert len(calls_to(rsps, STATE)) == 1  # not retried either
    assert waits == []


@pytest.mark.ordered
def test_gsb_errors_on_a_live_activity_are_retried_with_the_poll_policy_waits(rsps, api):
    pauses = []
    stop = threading.Event()
    stop.wait = pauses.append  # what collect pauses for, without pausing
    for _ in range(2):
        rsps.get(RESULTS, status=500, json=GSB_GONE)
        rsps.get(STATE, json=ALIVE)
    rsps.get(RESULTS, json=[exe_result(0, finished=True, stdout="ok\n")])
    assert run(api, stop=stop)[0].stdout == "ok\n"
    assert len(pauses) == 2
    assert POLL.delay(1) - POLL.jitter <= pauses[0] <= POLL.delay(1) + POLL.jitter


@pytest.mark.ordered
def test_gsb_errors_on_a_live_activity_past_the_policy_fail_the_batch_not_the_provider(rsps, api):
    stop = threading.Event()
    stop.wait = lambda seconds: None
    for _ in range(POLL.max_attempts):
        rsps.get(RESULTS, status=500, json=GSB_GONE)
        rsps.get(STATE, json=ALIVE)
    with pytest.raises(ProviderError, match="could not read the batch results") as caught:
        run(api, stop=stop)
    assert not isinstance(caught.value, ProviderLost)


@pytest.mark.ordered
def test_a_poll_that_ends_with_the_command_running_checks_the_activity(rsps, api):
    rsps.get(RESULTS, status=408, json={"message": "Timeout"})
    rsps.get(STATE, json=ALIVE)
    rsps.get(RESULTS, status=408, json={"message": "Timeout"})
    rsps.get(STATE, json={"state": ["Unresponsive", None]})
    with pytest.raises(ProviderLost, match="Unresponsive"):
        run(api)


@pytest.mark.ordered
def test_a_long_command_on_a_live_activity_is_polled_until_it_ends(rsps, api):
    rsps.get(RESULTS, status=408, json={"message": "Timeout"})
    rsps.get(STATE, json=ALIVE)
    rsps.get(RESULTS, json=[exe_result(0, finished=True, stdout="late\n")])
    assert run(api)[0].stdout == "late\n"


def test_a_quick_batch_reads_no_state(rsps, api):
    """Exec plus one poll stay the only round trips of a quick one-command batch."""
    rsps.get(RESULTS, json=[exe_result(0, finished=True, stdout="hi\n")])
    assert run(api)[0].stdout == "hi\n"
    assert len(rsps.calls) == 1


def test_a_cancel_during_the_state_read_is_a_cancel_not_a_lost_provider(rsps, api):
    from golem_tasks.providers.yagna.activity.polling import BatchStopped
    stop = threading.Event()

    def terminated_by_our_cancel(request):
        stop.set()  # the cancel destroyed the activity while its state was read
        return 200, {}, '{"state": ["Terminated", null]}'

    rsps.get(RESULTS, status=408, json={"message": "Timeout"})
    rsps.add_callback(responses.GET, STATE, callback=terminated_by_our_cancel, content_type="application/json")
    with pytest.raises(BatchStopped):
        run(api, stop=stop)
