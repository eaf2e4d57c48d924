"""The scheduler: how fragments reach providers and how their outcomes come back.

Calls run one way, top to bottom, as in ``concurrent.futures.thread`` (submit, work
item, queue, worker, future)::

    golem.py (facade)
      └─ run.py       JobRun: the caller's side of one job (feed input lazily, wait, yield)
          └─ pool.py  Pool: owns the lock, the queue and the slots; one thread per slot
              ├─ slot.py      Slot: one engaged provider's state, changed by its methods
              ├─ queue.py     WorkQueue: fragments waiting, with their retry times
              ├─ health.py    ProviderHealth: failures in a row, cool-downs, exclusions
              ├─ pacing.py    Pace: whether one more paid engagement is worth it
              ├─ attempt.py   runs one fragment or one task stream on a session
              ├─ decision.py  pure: an attempt's outcome and the policy -> deliver, retry or fail
              └─ job.py       Job and Fragment: counters and futures, changed by their methods
                  └─ speculation.py  pure: when a running fragment deserves a backup copy

Results travel back up through ``concurrent.futures.Future`` objects only; no
module below calls a module above it.
"""
