"""When a running fragment is a straggler worth a backup copy (Spark's speculative
execution): a pure rule over the durations of the fragments already finished."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import attrs

from ..errors import ConfigurationError


def _positive(_: Any, attribute: Any, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigurationError(f"Speculation({attribute.name}=...) must be a positive number, got {value!r}")


def _fraction(_: Any, attribute: Any, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ConfigurationError(f"Speculation({attribute.name}=...) must be in (0, 1], got {value!r}")


def _count(_: Any, attribute: Any, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"Speculation({attribute.name}=...) must be a whole number >= 1, got {value!r}")


@attrs.frozen
class Speculation:
    """Backup copies of stragglers: ``Golem(speculate=True)`` or ``Speculation(...)``.

    A fragment that has run longer than ``multiplier`` times the ``quantile`` of the
    finished fragments' durations (and at least ``min_runtime`` seconds) gets a backup
    copy on another, idle provider once ``min_finished`` fragments of its job finished.
    The first copy to finish wins and the other is cancelled at once, so the fragment
    is still delivered exactly once; but the worker runs twice, so it must be
    idempotent (its side effects, such as uploads, may happen twice).

    Attributes:
        multiplier: how many times slower than the quantile a straggler is (Spark: 1.5).
        quantile: which quantile of finished durations is "normal" (Spark: 0.75).
        min_finished: finished fragments needed before any backup starts.
        min_runtime: seconds a fragment must have run before it counts as a straggler,
            so fast jobs do not double their work over noise.
    """

    multiplier: float = attrs.field(default=1.5, validator=_positive)
    quantile: float = attrs.field(default=0.75, validator=_fraction)
    min_finished: int = attrs.field(default=5, validator=_count)
    min_runtime: float = attrs.field(default=0.1, validator=_positive)

    def threshold(self, durations: Sequence[float]) -> Optional[float]:
        """Seconds after which a running fragment is a straggler; None when too few
        fragments finished to say."""
        if len(durations) < self.min_finished:
            return None
        ordered = sorted(durations)
        position = min(len(ordered) - 1, max(0, int(round(self.quantile * (len(ordered) - 1)))))
        return max(self.min_runtime, self.multiplier * ordered[position])


def speculation_of(value: Any) -> Optional[Speculation]:
    """``speculate=`` as given by a user: False/None, True (Spark's defaults) or a Speculation."""
    if value is None or value is False:
        return None
    if value is True:
        return Speculation()
    if isinstance(value, Speculation):
        return value
    raise ConfigurationError(f"speculate must be True, False or a golem_tasks.Speculation(...), got {value!r}")
