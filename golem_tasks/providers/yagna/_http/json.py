"""Small converters between yagna's JSON conventions and Python values.

Yagna writes timestamps as RFC 3339 (often with nanoseconds and a ``Z``), amounts as
decimal strings, and property maps as flat JSON objects.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Optional, Tuple, Union

_TIMESTAMP = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d+))?"
    r"(?P<zone>[Zz]|[+-]\d{2}:?\d{2})?$"
)


def parse_timestamp(value: Any) -> datetime:
    """An aware UTC datetime from RFC 3339 text.

    Accepts what Python 3.9's ``fromisoformat`` does not: a ``Z`` suffix and more than
    six fractional digits (the daemon writes nanoseconds; the extra digits are cut).
    A timestamp without a zone (the SSE ``timestamp``) is taken as UTC.
    """
    if not isinstance(value, str):
        raise TypeError(f"expected an RFC 3339 timestamp, got {value!r}")
    match = _TIMESTAMP.match(value.strip())
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    frac = (match["frac"] or "0")[:6].ljust(6, "0")
    naive = datetime.fromisoformat(f"{match['date']}T{match['time']}.{frac}")
    zone = match["zone"]
    if zone is None or zone in "Zz":
        return naive.replace(tzinfo=timezone.utc)
    sign = 1 if zone[0] == "+" else -1
    digits = zone[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return (naive - sign * offset).replace(tzinfo=timezone.utc)


def optional_timestamp(value: Any) -> Optional[datetime]:
    return None if value is None else parse_timestamp(value)


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, e.g. ``2025-10-04T12:00:00.123456Z``.

    A naive datetime is refused: guessing its zone would shift deadlines by hours.
    """
    if value.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone: use datetime.now(timezone.utc)")
    utc = value.astimezone(timezone.utc)
    spec = "microseconds" if utc.microsecond else "seconds"
    return utc.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def epoch_millis(value: datetime) -> int:
    """Milliseconds since the epoch (``golem.srv.comp.expiration`` is such an int)."""
    if value.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone: use datetime.now(timezone.utc)")
    return int(value.timestamp() * 1000)


def parse_decimal(value: Any) -> Decimal:
    """A Decimal from a decimal string (or an int). Floats go through ``repr`` so
    ``0.1`` stays ``0.1``; amounts on the wire are strings anyway."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise TypeError(f"expected a decimal amount, got {value!r}")
    try:
        result = Decimal(repr(value) if isinstance(value, float) else value)
    except InvalidOperation:
        raise ValueError(f"not a decimal amount: {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return result


def format_decimal(value: Union[Decimal, int, str]) -> str:
    """A plain decimal string, never scientific (``str(Decimal('1E-7'))`` is ``'1E-7'``)."""
    amount = parse_decimal(value)
    return format(amount, "f")


def frozen_mapping(value: Optional[Mapping[str, Any]]) -> Mapping[str, Any]:
    """A read-only copy, so frozen models stay frozen."""
    return MappingProxyType(dict(value or {}))


def optional_str(value: Any) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def required_str(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise TypeError(f"{key!r} must be a string, got {value!r}")
    return value


def string_tuple(values: Iterable[str]) -> Tuple[str, ...]:
    """A tuple of strings (a converter that type checkers understand, unlike ``tuple``)."""
    return tuple(values)


def compact(mapping: Mapping[str, Any]) -> dict:
    """The mapping without its None values (optional JSON fields are left out)."""
    return {key: value for key, value in mapping.items() if value is not None}
