"""Whether one more paid provider is worth engaging for the work that is left.

On Golem an engagement signs an agreement, and every agreement is invoiced, so a
provider that becomes ready after the engaged ones have cleared the queue is money
spent on nothing. Once a job's input is all queued, the pool asks :meth:`Pace.surplus`:
if the providers already running are expected to clear the queued fragments sooner
than an engagement takes, the providers still negotiating are let go before they
sign. While input is still being read, nothing is known of the work left, and the
pool engages for what waits (Spark's dynamic allocation makes the same call from its
task backlog).

Before anything is known, a second paid provider would be signed at the same moment
as the first, and a job that the first clears in the time the second takes to become
ready pays for one that ran nothing. So while one paid engagement is signed or
engaged, the others negotiate but wait before signing (their :class:`Permit`) until
the work is known to need them (:meth:`Pace.needed_in`), for at most :data:`HOLD`
seconds: a long job starts its other providers at most that much later. Spark's
``schedulerBacklogTimeout`` makes the same trade for executors.

The estimates are deliberately plain: the median of the pool's latest engagement
times, and a moving average of delivered fragments' durations. A wrong guess costs at
most one engagement time at the end of a job, never a fragment.
"""

from __future__ import annotations

import collections
import statistics
from typing import Deque, Optional

#: Weight of the newest fragment duration in the moving average.
ALPHA = 0.2
#: Fragments delivered before their durations are trusted: one quick first fragment says
#: little of the rest.
MIN_DELIVERED = 3

#: Longest wait, in seconds, of a paid engagement held back before signing while
#: another one is signed: on localnet a first provider is ready and has delivered a
#: few fragments within it, on a loaded machine too.
HOLD = 3.0
#: A held engagement signs when the providers running would take this many
#: engagement times to clear the queue: at the bare break-even it would be ready
#: just as the queue drains, and run nothing.
MARGIN = 2.0


class Pace:
    """A pool's observed engagement and fragment times; the pool owns it and calls it
    under its lock."""

    __slots__ = ("_engagements", "_fragment", "_delivered")

    def __init__(self) -> None:
        self._engagements: Deque[float] = collections.deque(maxlen=8)
        self._fragment: Optional[float] = None
        self._delivered = 0

    def engaged(self, seconds: float) -> None:
        """A slot took ``seconds`` from starting to engage until it was ready for work."""
        self._engagements.append(max(seconds, 0.0))

    def delivered(self, seconds: float) -> None:
        """A fragment was delivered after running ``seconds``."""
        seconds = max(seconds, 0.0)
        self._delivered += 1
        self._fragment = seconds if self._fragment is None else (1 - ALPHA) * self._fragment + ALPHA * seconds

    @property
    def engagement(self) -> Optional[float]:
        return statistics.median(self._engagements) if self._engagements else None

    @property
    def fragment(self) -> Optional[float]:
        return self._fragment

    def surplus(self, queued: int, ready: int, running_for: float = 0.0) -> bool:
        """True when ``ready`` running providers are expected to clear ``queued``
        fragments before a provider that starts engaging now could take one.

        ``running_for`` is how long the longest running fragment has run so far: a
        fragment still running after longer than the average shows the average is too
        low, so it counts as the duration instead.

        False whenever something is unknown (no engagement seen, fewer than
        :data:`MIN_DELIVERED` fragments delivered, no provider ready): then the pool
        engages for the work that waits.
        """
        engagement, fragment = self.engagement, self._fragment
        if engagement is None or fragment is None or self._delivered < MIN_DELIVERED or ready < 1 or queued < 1:
            return False
        return queued * max(fragment, running_for) / ready < engagement

    def needed_in(self, queued: int, ready: int, running_for: Optional[float]) -> Optional[float]:
        """Seconds from now after which the work is known to need one more provider
        (0: now): when ``ready`` running providers would take :data:`MARGIN`
        engagement times to clear ``queued`` fragments.

        The evidence is the fragments' average once :data:`MIN_DELIVERED` are in, or
        the longest running fragment's age ``running_for`` (None: none runs) once it
        exceeds an engagement time. None when no evidence can come from what runs now
        (nothing engaged, nothing queued, nothing running): the caller's hold decides.
        """
        engagement = self.engagement
        if engagement is None or ready < 1 or queued < 1:
            return None
        # The fragment duration from which the work left is worth one more provider.
        worth = MARGIN * engagement * ready / queued
        if self._fragment is not None and self._delivered >= MIN_DELIVERED and self._fragment >= worth:
            return 0.0
        if running_for is None:
            return None
        # One young fragment says little (a loaded machine slows a few): trust an age
        # only past an engagement time.
        return max(max(worth, engagement) - running_for, 0.0)
