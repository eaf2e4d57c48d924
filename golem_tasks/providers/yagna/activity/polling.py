"""Send one ExeScript to an activity and collect its results by long polling.

Results are asked for one command index at a time (``commandIndex=k``), each poll
waiting on the daemon until command k ends. That is the only way to hear of a failure
at once: the daemon wakes a waiting poll only when a command at or past the awaited
index finishes, so a poll for the *last* index answers a batch that stopped on an
earlier failure only when the poll's timeout runs out (yapapi loses 5 s per failed
batch there; yagna-provider-side.md). Each poll returns the moment its command ends,
so a one-command batch costs two HTTP round trips (exec, one poll) and no sleeps.

With ``commandIndex=k`` the daemon fills stdout/stderr only for index k and marks
index k ``isBatchFinished`` even when more commands follow, so the batch is over
only at the last index or at the first ``Error``.

A dead provider is noticed within one poll: the daemon does not wake a pending poll
when the exe-unit dies, so polls last at most ``poll`` seconds (``Timeouts.poll``).
The next poll then gets a 500 ``GSB error`` and the activity state is read at once:
``Terminated``, ``Unresponsive`` or a state that cannot be read either is a lost
provider. A poll that ends with its command still running reads the state too, so a
hung exe-unit (no usage reports: ``Unresponsive`` after 5 s) is noticed as well. GSB
errors on a live activity are retried here, a few times with backoff (the session's
client does not retry them: see ``gsb_errors_not_retried``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ...._format import provider_label
from ....errors import ApiError, ProviderError, ProviderLost
from .models import ExeScriptCommandResult
from .api import ActivityApi
from .._http.retry import DEFAULT_POLICIES, CallKind, RetryPolicy, is_gsb_error

logger = logging.getLogger(__name__)

Results = Dict[int, ExeScriptCommandResult]



class BatchDeadline(Exception):
    """The deadline passed before the batch ended (internal; carries what finished)."""

    def __init__(self, results: Results) -> None:
        super().__init__("deadline")
        self.results = results


class BatchStopped(Exception):
    """The stop event was set while the batch ran (internal)."""


def lost_reason(api: ActivityApi, activity_id: str) -> Optional[str]:
    """Why the activity is gone (``Terminated``, ``Unresponsive``, state unreadable), or
    None when it still looks alive."""
    try:
        state = api.get_state(activity_id)
    except ApiError as exc:
        return f"its state cannot be read ({exc.message})"
    if not state.alive or state.state == "Unresponsive":
        details = "; ".join(text for text in (state.reason, state.error_message) if text)
        return f"the activity is {state.state}" + (f" ({details})" if details else "")
    return None


def send_batch(api: ActivityApi, activity_id: str, exe: Sequence[Mapping[str, Any]], provider: str,
               name: str = "") -> str:
    """Send the ExeScript; return the batch id.

    Raises:
        ProviderLost: the activity is gone.
        ProviderError: the daemon refused the batch.
    """
    try:
        return api.exec_script(activity_id, exe)
    except ApiError as exc:
        raise _translate(api, activity_id, exc, provider, name, "could not send the batch") from exc


def collect(api: ActivityApi, activity_id: str, batch_id: str, count: int, *, deadline: Optional[float],
            poll: float, stop: threading.Event, provider: str, name: str = "",
            gsb_retry: RetryPolicy = DEFAULT_POLICIES[CallKind.POLL]) -> Results:
    """Every result of the batch, up to its last command or its first failure.

    ``provider`` (its id) and ``name`` say in errors where the batch ran.
    ``gsb_retry`` says how often, and after which waits, a poll failing with a GSB
    error is repeated while the activity still looks alive.

    Raises:
        BatchDeadline: ``deadline`` (a ``time.monotonic()`` value) passed first.
        BatchStopped: ``stop`` was set.
        ProviderLost: the activity went away.
        ProviderError: the results could not be read.
    """
    results: Results = {}
    index = 0
    gsb_failures = 0
    while True:
        if stop.is_set():
            raise BatchStopped()
        wait = poll
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BatchDeadline(results)
            wait = min(wait, remaining)
        try:
            answer = _poll(api, activity_id, batch_id, index, wait, stop, provider, name)
        except _AliveGsbError as exc:
            gsb_failures += 1
            if gsb_failures >= gsb_retry.max_attempts:
                raise exc.error from exc.__cause__
            logger.warning("%s; trying again", exc.error.message)
            _pause(gsb_retry.delay(gsb_failures), deadline, stop)
            continue
        gsb_failures = 0
        if not answer:  # the command still runs: is anybody running it?
            _check_alive(api, activity_id, stop, provider, name)
        for result in answer:
            # Output comes only with the awaited index; keep the copy that has it.
            if result.index == index or result.index not in results:
                results[result.index] = result
        for result in answer:
            if result.index == count - 1 or not result.ok:
                return results
        while index in results:
            index += 1


def _poll(api: ActivityApi, activity_id: str, batch_id: str, index: int, wait: float,
          stop: threading.Event, provider: str, name: str) -> List[ExeScriptCommandResult]:
    try:
        return api.get_exec_batch_results(activity_id, batch_id, timeout=round(wait, 3), command_index=index)
    except ApiError as exc:
        if stop.is_set():
            raise BatchStopped() from exc
        error = _translate(api, activity_id, exc, provider, name, "could not read the batch results")
        if is_gsb_error(exc) and not isinstance(error, ProviderLost):
            raise _AliveGsbError(error) from exc
        raise error from exc


class _AliveGsbError(Exception):
    """A results poll failed with a GSB error, but the activity looks alive (internal)."""

    def __init__(self, error: ProviderError) -> None:
        super().__init__(error.message)
        self.error = error


def _pause(seconds: float, deadline: Optional[float], stop: threading.Event) -> None:
    if deadline is not None:
        seconds = min(seconds, max(0.0, deadline - time.monotonic()))
    stop.wait(seconds)


def _check_alive(api: ActivityApi, activity_id: str, stop: threading.Event, provider: str, name: str) -> None:
    """Raise ProviderLost when the activity is gone or hung, BatchStopped when a cancel
    (which destroys the activity) got there first."""
    reason = lost_reason(api, activity_id)
    if stop.is_set():
        raise BatchStopped()
    if reason is not None:
        raise ProviderLost(f"provider {provider_label(name, provider)} is gone: {reason}", provider=provider)


def _translate(api: ActivityApi, activity_id: str, exc: ApiError, provider: str, name: str,
               what: str) -> ProviderError:
    """ProviderLost when the activity is gone (repeated GSB errors and a Terminated
    state, yagna-protocol.md §6), else a ProviderError saying what failed."""
    reason = lost_reason(api, activity_id)
    who = provider_label(name, provider)
    if reason is not None:
        return ProviderLost(f"provider {who} is gone: {reason}; {what}: {exc.message}", provider=provider)
    return ProviderError(f"{what} on provider {who}: {exc.message}", provider=provider)
