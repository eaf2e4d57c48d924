"""When a yagna REST call is repeated: one tenacity policy per kind of call.

Every policy is built from explicit tenacity parts (never its permissive defaults)::

    stop   = stop_after_attempt(n) | stop_after_delay(t)
    wait   = wait_exponential_jitter(initial, max, jitter)
    retry  = retry_if_exception(<predicate of the kind>)
    before_sleep_log(logger, WARNING), reraise=True, sleep=<injectable>

What is retried (yagna-protocol.md §6):

* ``READ``, ``POLL``, ``ACK``, ``CLEANUP``: transient failures only: a broken or
  timed-out connection, 408 (the daemon's activity timeouts), 502/503/504 (504 is the
  payment ack timeout) and 500 ``GSB error`` (a provider unreachable for a moment).
  Reads and long polls are idempotent; accepting a debit note or invoice twice is
  harmless (the second gives 200); repeating a cleanup call at worst answers 404/410.
* ``CREATE`` (subscribe, counter, create/confirm agreement, create activity/allocation,
  exec, GSB bind): never blindly repeated, since a lost answer may hide a success.
  Retried only when the request provably never left (connect timeout).

Connection refused (:class:`YagnaUnreachable`), 400, 401, 404, 409 and 410 are never
retried: they do not heal by waiting.
"""

from __future__ import annotations

import enum
import inspect
import logging
import time
from types import MappingProxyType
from typing import Callable, Mapping

import attrs
import tenacity
from tenacity import (
    before_sleep_log,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from ....errors import ApiError
from ..errors import ApiTimeout, TransportError

logger = logging.getLogger(__name__)

# tenacity 9.2 renamed wait_exponential_jitter's `initial` to `multiplier` (and warns on
# the old name); 8.x only knows `initial`. Use whichever this tenacity has.
_PARAMETERS = inspect.signature(wait_exponential_jitter).parameters
_SCALE = "multiplier" if "multiplier" in _PARAMETERS else "initial"

__all__ = ["CallKind", "DEFAULT_POLICIES", "RetryPolicy", "is_gsb_error", "is_transient", "was_never_sent"]


class CallKind(enum.Enum):
    """What kind of call a request is; it picks the retry policy."""

    READ = "read"          #: idempotent GET
    POLL = "poll"          #: long poll: events, batch results, wait for approval
    ACK = "ack"            #: accept a debit note or an invoice (idempotent, may 504)
    CLEANUP = "cleanup"    #: terminate, destroy, unsubscribe, release, reject
    CREATE = "create"      #: not idempotent: never repeated once sent


def is_transient(exc: BaseException) -> bool:
    """True for failures that may heal by themselves (see the module docstring)."""
    if isinstance(exc, (TransportError, ApiTimeout)):
        return True
    if not isinstance(exc, ApiError) or exc.status is None:
        return False
    if exc.status in (502, 503, 504):
        return True
    # 500 is also what a broken request gets; only GSB routing errors are worth a retry.
    return is_gsb_error(exc)


def is_gsb_error(exc: BaseException) -> bool:
    """True for the daemon's 500 ``GSB error: ...``: the provider's service did not answer
    (a dead exe-unit gives ``endpoint address not found``; a network hiccup heals)."""
    return isinstance(exc, ApiError) and exc.status == 500 and "gsb" in exc.message.lower()


def was_never_sent(exc: BaseException) -> bool:
    """True when the request provably did not reach the daemon."""
    return isinstance(exc, TransportError) and not exc.request_sent


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How one kind of call is repeated.

    Attributes:
        retry_on: predicate on the raised exception.
        max_attempts: attempts in all, the first one included.
        max_delay: seconds since the first attempt after which no new attempt starts.
        initial_wait, max_wait, jitter: ``wait_exponential_jitter`` arguments: the
            n-th wait is ``min(initial_wait * 2**(n-1) + uniform(0, jitter), max_wait)``.
    """

    retry_on: Callable[[BaseException], bool]
    max_attempts: int = attrs.field(validator=attrs.validators.ge(1))
    max_delay: float = attrs.field(validator=attrs.validators.gt(0))
    initial_wait: float = attrs.field(validator=attrs.validators.ge(0))
    max_wait: float = attrs.field(validator=attrs.validators.ge(0))
    jitter: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))

    def stop(self) -> tenacity.stop.stop_base:
        return stop_after_attempt(self.max_attempts) | stop_after_delay(self.max_delay)

    def wait(self) -> tenacity.wait.wait_base:
        return wait_exponential_jitter(
            **{_SCALE: self.initial_wait}, max=self.max_wait, exp_base=2, jitter=self.jitter
        )

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1 for the first), for
        callers that repeat a call themselves."""
        state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = attempt
        return max(0.0, float(self.wait()(state)))

    def retrying(self, *, sleep: Callable[[float], None] = time.sleep) -> tenacity.Retrying:
        """A fresh ``tenacity.Retrying``; pass ``sleep=waits.append`` in tests."""
        return tenacity.Retrying(
            stop=self.stop(),
            wait=self.wait(),
            retry=retry_if_exception(self.retry_on),
            before_sleep=before_sleep_log(logger, logging.WARNING),
            reraise=True,
            sleep=sleep,
        )


#: The policies a :class:`~golem_tasks.providers.yagna.YagnaClient` uses by default.
#: yapapi retries polls 3x 3 s apart and accepts 5x 1 s apart; these are a bit more
#: patient and back off, because a daemon under load answers 5xx in bursts.
DEFAULT_POLICIES: Mapping[CallKind, RetryPolicy] = MappingProxyType({
    CallKind.READ: RetryPolicy(retry_on=is_transient, max_attempts=5, max_delay=30,
                               initial_wait=0.5, max_wait=8, jitter=0.5),
    CallKind.POLL: RetryPolicy(retry_on=is_transient, max_attempts=4, max_delay=90,
                               initial_wait=1, max_wait=10, jitter=1),
    CallKind.ACK: RetryPolicy(retry_on=is_transient, max_attempts=5, max_delay=120,
                              initial_wait=1, max_wait=10, jitter=1),
    CallKind.CLEANUP: RetryPolicy(retry_on=is_transient, max_attempts=3, max_delay=30,
                                  initial_wait=0.5, max_wait=4, jitter=0.5),
    CallKind.CREATE: RetryPolicy(retry_on=was_never_sent, max_attempts=3, max_delay=15,
                                 initial_wait=0.5, max_wait=4, jitter=0.5),
})
