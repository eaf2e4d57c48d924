"""The Golem provider's settings: how long it waits for what (one frozen record, so
tests and users on slow networks change every wait in one place), and the checks of
its other arguments, made before anything is contacted."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Callable, Optional, Union

import attrs

from ...errors import ConfigurationError
from .market.demand import DEFAULT_EXPIRATION
from .activity.exescript import INLINE_LIMIT
from ._http.json import parse_decimal

#: Debit notes must be accepted within this many seconds (golem-js and
#: golem-core-python use 120; providers accept up to 240). It also lets the demand
#: expire later than 30 minutes ahead.
DEFAULT_ACCEPT_TIMEOUT = 120
#: With an accept timeout, an agreement may last this long before a fresh one is needed.
LONG_EXPIRATION = timedelta(hours=1)


def _positive(_: object, attribute: "attrs.Attribute[float]", value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigurationError(f"Timeouts.{attribute.name} must be a positive number of seconds, got {value!r}")


@attrs.frozen(kw_only=True)
class Timeouts:
    """Seconds the Golem provider waits.

    Attributes:
        negotiation: most time one ``engage`` waits for a provider (offers, agreement,
            activity, deploy included); past it, engage fails with what the market said.
        approval: most time a provider takes to approve an agreement (golem-js: 60).
        activity: most time creating an activity takes (the daemon waits for the exe-unit).
        deploy: most time ``deploy`` and ``start`` take; the first deploy downloads the image.
        poll: longest single long poll for batch results (the daemon caps them at 60 s).
            It bounds how long a dead exe-unit goes unnoticed: the daemon does not end a
            pending poll when the exe-unit dies. A batch that runs longer costs one more
            poll and one state read per ``poll`` seconds.
        market_poll: long poll for offers (withdrawing the demand ends a pending one, so
            ``close`` does not wait it out).
        payment_poll: long poll for payment events (``close`` ends a pending one at once).
        invoices: at ``close``, most time to wait for the invoices of ended agreements
            (yapapi waits 30 s, golem-js 60 s).
        resubscribe: with engage waiting and every offer used, subscribe anew after this
            long, so providers whose agreements ended can offer again.
        allocation: the allocation's lifetime; the daemon releases it then by itself, so
            it must outlive the run and its invoices.
        destroy: the daemon's wait for an activity to end.
        report: while no provider is engaged, seconds between warnings saying what the
            market shows (the ``MarketStatus`` events come at once, on every change).
        cooldown: seconds a provider is not engaged after it failed to start work or
            rejected agreements twice; then it may be engaged again (its offers are
            still answered meanwhile).
    """

    negotiation: float = attrs.field(default=180.0, validator=_positive)
    approval: float = attrs.field(default=60.0, validator=_positive)
    activity: float = attrs.field(default=30.0, validator=_positive)
    deploy: float = attrs.field(default=300.0, validator=_positive)
    poll: float = attrs.field(default=3.0, validator=_positive)
    market_poll: float = attrs.field(default=3.0, validator=_positive)
    payment_poll: float = attrs.field(default=3.0, validator=_positive)
    invoices: float = attrs.field(default=60.0, validator=_positive)
    resubscribe: float = attrs.field(default=30.0, validator=_positive)
    allocation: float = attrs.field(default=24 * 3600.0, validator=_positive)
    destroy: float = attrs.field(default=10.0, validator=_positive)
    report: float = attrs.field(default=15.0, validator=_positive)
    cooldown: float = attrs.field(default=10.0, validator=_positive)


def check_startup_timeout(value: Optional[float]) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigurationError(f"startup_timeout must be a positive number of seconds or None, got {value!r}")
    return float(value)


def check_image(image_hash: Optional[str], image_tag: Optional[str], image_url: Optional[str]) -> None:
    if image_url is not None and (image_tag is not None or image_hash is None):
        raise ConfigurationError("image_url needs image_hash (the image's sha3-224), and no image_tag")
    if image_tag is None and image_hash is None:
        raise ConfigurationError("say which VM image to run: image_tag='golem/alpine:latest', "
                                 "image_hash=..., or payload=VmPayload(...)")
    if image_tag is not None and image_hash is not None:
        raise ConfigurationError("give image_tag or image_hash, not both")


def check_budget(value: Union[Decimal, str, int]) -> Decimal:
    if isinstance(value, float):
        raise ConfigurationError(f"budget must be a Decimal or a decimal string (amounts are exact), "
                                 f"not the float {value!r}")
    try:
        budget = parse_decimal(value)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"budget must be an amount of GLM such as Decimal('1'), got {value!r}") from exc
    if budget <= 0:
        raise ConfigurationError(f"budget must be positive, got {value!r}")
    return budget


def check_subnet(value: str) -> str:
    if not isinstance(value, str) or not value or any(c in value for c in "()=*&|!\\ "):
        raise ConfigurationError(f"subnet_tag must be a plain name such as 'public', got {value!r}")
    return value


def check_accept_timeout(value: Optional[int]) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 5 <= value <= 240:
        raise ConfigurationError(f"debit_note_accept_timeout must be 5-240 s (providers refuse more), "
                                 f"got {value!r}")
    return value


def check_expiration(value: Optional[timedelta], accept_timeout: Optional[int]) -> timedelta:
    if value is None:
        return LONG_EXPIRATION if accept_timeout is not None else DEFAULT_EXPIRATION
    if not isinstance(value, timedelta):
        raise ConfigurationError(f"expiration must be a timedelta, got {value!r}")
    longest = timedelta(hours=10) if accept_timeout is not None else timedelta(minutes=30)
    if not timedelta(minutes=5) <= value <= longest:
        raise ConfigurationError(
            f"expiration must be 5 min to {longest.total_seconds() / 60:g} min: providers refuse other "
            f"demands" + ("" if accept_timeout is not None else " (more needs debit_note_accept_timeout)"))
    return value


def check_score(value: Optional[Callable[..., float]]) -> Optional[Callable[..., float]]:
    if value is not None and not callable(value):
        raise ConfigurationError(f"score must be a callable(offer) -> float, got {value!r}")
    return value


def check_inline_limit(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INLINE_LIMIT:
        raise ConfigurationError(f"inline_limit must be 0-{INLINE_LIMIT} bytes, got {value!r}")
    return value
