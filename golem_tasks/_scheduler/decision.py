"""What happens to a fragment after an attempt: a pure function of the outcome and
the policy, so retries can be reasoned about (and tested) without threads.

Future features plug in here: a backup copy of a straggler is one more kind of
decision, a journal records what :class:`Deliver` hands out.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import attrs

from ..errors import BatchCancelled, FragmentFailed, TaskRejected
from ..policy import INFRASTRUCTURE_ERRORS, RetryPolicy


@attrs.frozen
class Deliver:
    value: Any


@attrs.frozen
class Retry:
    delay: float
    cause: BaseException


@attrs.frozen
class Fail:
    error: BaseException
    #: False for a cancellation: not the fragment's failure, not counted or reported.
    counted: bool = True


Decision = Union[Deliver, Retry, Fail]


def after_error(error: BaseException, *, causes: Sequence[BaseException], policy: RetryPolicy,
                cancelled: bool, index: int, item: Any) -> Decision:
    """Decide after an attempt that raised ``error``; ``causes`` already include it."""
    if cancelled or isinstance(error, BatchCancelled):
        return Fail(error if isinstance(error, BatchCancelled) else BatchCancelled(str(error)), counted=False)
    if not policy.should_retry(error):
        return Fail(error)
    if len(causes) <= policy.max_retries:
        return Retry(policy.delay(len(causes)), error)
    failed = FragmentFailed(f"fragment {index} failed on every one of its {len(causes)} attempts",
                            item=item, index=index, attempts=list(causes))
    failed.__cause__ = error
    return Fail(failed)


def after_rejection(rejection: TaskRejected, retry: bool, *, causes: Sequence[BaseException],
                    policy: RetryPolicy, index: int, item: Any) -> Decision:
    """Decide after ``Task.reject_result``; ``causes`` already include ``rejection``."""
    if not retry:
        rejection.attempts = list(causes[:-1])  # the earlier attempts; this one is the error itself
        return Fail(rejection)
    if len(causes) <= policy.max_retries:
        return Retry(policy.delay(len(causes)), rejection)
    return Fail(FragmentFailed(f"task {index} was rejected on every one of its {len(causes)} attempts",
                               item=item, index=index, attempts=list(causes)))


def provider_at_fault(error: Optional[BaseException], policy: RetryPolicy) -> bool:
    """Whether a failed attempt counts against the provider that ran it: only the
    infrastructure's errors do; the requestor's own mistakes and bugs never do."""
    if error is None or isinstance(error, BatchCancelled):
        return False
    return isinstance(error, INFRASTRUCTURE_ERRORS)
