"""When a failed fragment is tried again, how long to wait first, and when a
provider is given up on."""

from __future__ import annotations

from typing import Any, Callable, Tuple, Type, Union

import attrs
import tenacity

from .errors import (
    BatchCancelled,
    BatchError,
    ConfigurationError,
    FragmentTimeoutError,
    ProviderError,
)

#: What the infrastructure raises; a worker's own exceptions are not in this list,
#: so a bug in worker code fails its fragment at once instead of burning retries.
INFRASTRUCTURE_ERRORS: Tuple[Type[BaseException], ...] = (BatchError, ProviderError, FragmentTimeoutError)

RetryOn = Union[Type[BaseException], Tuple[Type[BaseException], ...], Callable[[BaseException], bool]]


def _check_retry_on(_: Any, __: Any, value: RetryOn) -> None:
    if isinstance(value, type) and issubclass(value, BaseException):
        return
    if isinstance(value, tuple) and all(isinstance(v, type) and issubclass(v, BaseException) for v in value):
        return
    if callable(value):
        return
    raise ConfigurationError(
        f"retry_on must be an exception class, a tuple of them, or a callable(exc) -> bool; got {value!r}"
    )


def _non_negative_int(name: str) -> Callable[[Any, Any, Any], None]:
    def check(_: Any, __: Any, value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigurationError(f"{name} must be a whole number >= 0, got {value!r}")
    return check


def _wait_strategy(value: Any) -> Any:
    """A number of seconds becomes a fixed wait; a tenacity wait is kept."""
    if isinstance(value, tenacity.wait.wait_base):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return tenacity.wait_fixed(float(value))
    raise ConfigurationError(
        f"retry_wait must be a number of seconds >= 0 or a tenacity wait (e.g. tenacity.wait_exponential()), "
        f"got {value!r}"
    )


def _default_wait() -> Any:
    return tenacity.wait_exponential(multiplier=0.1, min=0.2, max=10) + tenacity.wait_random(0, 0.2)


@attrs.frozen
class RetryPolicy:
    """How the scheduler treats a failed attempt.

    Attributes:
        max_retries: attempts after the first one before a fragment is reported failed.
        retry_on: which exceptions are worth another attempt; by default the
            infrastructure's (:data:`INFRASTRUCTURE_ERRORS`). Pass ``Exception`` to
            retry the worker's own errors too, or a callable ``exc -> bool``.
        wait: seconds, or a tenacity wait strategy, giving the pause before retry n; the default
            backs off exponentially from 0.2 s to 10 s with jitter, so a flapping
            provider is not hammered.
        provider_failure_limit: consecutive failed attempts after which a provider is
            released and not engaged again in this run (0 = never).
    """

    max_retries: int = attrs.field(default=3, validator=_non_negative_int("max_retries"))
    retry_on: RetryOn = attrs.field(default=INFRASTRUCTURE_ERRORS, validator=_check_retry_on)
    wait: Any = attrs.field(factory=_default_wait, converter=_wait_strategy)
    provider_failure_limit: int = attrs.field(default=3, validator=_non_negative_int("provider_failure_limit"))

    def should_retry(self, exc: BaseException) -> bool:
        """True when ``exc`` is worth another attempt (cancellation never is)."""
        if isinstance(exc, BatchCancelled):
            return False
        if isinstance(self.retry_on, (type, tuple)):
            return isinstance(exc, self.retry_on)
        return bool(self.retry_on(exc))

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt + 1`` (``attempt`` >= 1)."""
        state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = attempt
        return max(0.0, float(self.wait(state)))
