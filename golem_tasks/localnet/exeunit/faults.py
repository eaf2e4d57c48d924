"""Test knobs: a local provider that misbehaves on purpose.

Real providers are sometimes slow and sometimes fail every command; a requestor's
answers to that (backup copies of stragglers, retries elsewhere, the provider record)
are tested against local providers told to do the same::

    LocalNet(providers=4, faults={3: Faults(slowdown=20)})          # provider-3 is 20x slower
    LocalNet(providers=3, faults={0: Faults(fail_runs="disk full")})  # provider-0 fails its runs

Not a feature of the real network, and nothing in the offer tells a requestor about it.
"""

from __future__ import annotations

from typing import Any, Optional

import attrs


def _slowdown(_: Any, attribute: Any, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 1:
        raise ValueError(f"Faults(slowdown=...) must be a number >= 1 (1: normal speed), got {value!r}")


@attrs.frozen(kw_only=True)
class Faults:
    """How one local provider's exe-units misbehave.

    Attributes:
        slowdown: each ``run`` command takes this many times its real duration: after
            the program ends, the exe-unit waits ``slowdown - 1`` times as long before it
            reports the result (a stop of the activity ends the wait at once).
        fail_runs: when set, every ``run`` command fails with exit code 1 and this text
            on stderr, without running the program.
    """

    slowdown: float = attrs.field(default=1.0, validator=_slowdown)
    fail_runs: Optional[str] = None

    def extra_wait(self, seconds: float) -> float:
        """Seconds to add to a command that really took ``seconds``."""
        return max(0.0, (self.slowdown - 1.0) * seconds)


#: Well-behaved: what every provider has unless told otherwise.
NONE = Faults()
