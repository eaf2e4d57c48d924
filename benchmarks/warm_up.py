"""A warm-up that engages every provider before a benchmark times the steady state.

Plain warm-up fragments end in milliseconds: one provider runs them all, the others'
engagement is called off as the queue drains (demand-driven engagement), and the timed
job then pays for engaging them. Here each warm-up fragment, after its command, waits
until every provider runs one.
"""

from __future__ import annotations

import threading
from typing import Any, Generator

from golem_tasks import Golem


def engage_all(golem: Golem, providers: int) -> None:
    """Run one fragment on each of ``providers`` providers at once; fail if fewer took part."""
    barrier = threading.Barrier(providers)

    def meet(ctx: Any, _: int) -> Generator[Any, Any, str]:
        yield ctx.run("/bin/echo", "x")
        barrier.wait(timeout=120)  # a timeout only to catch a hang
        return ctx.provider_id

    met = set(golem.map(meet, range(providers)))
    if len(met) != providers:
        raise RuntimeError(f"the warm-up engaged {len(met)} of {providers} providers")


__all__ = ["engage_all"]
