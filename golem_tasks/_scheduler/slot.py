"""One slot of the pool: the thread's view of the provider it has engaged.

The pool changes a slot only through these methods, under the pool's lock; the
slot's condition shares that lock, so a new fragment wakes exactly one slot.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Optional

from ..providers.base import Permit, Session
from .job import Job


class Slot:
    __slots__ = ("cond", "abort", "session", "provider_id", "engaging", "leave", "dirty", "waiting_for", "job",
                 "thread", "engaging_since", "running_since", "permit")

    def __init__(self, lock: threading.Lock) -> None:
        self.cond = threading.Condition(lock)
        #: Set when this slot's engagement is no longer wanted (the work drained, or
        #: shutdown); handed to ``Provider.engage`` so negotiation stops at once.
        self.abort = threading.Event()
        #: When a paid engagement may sign; the pool moves it (see Pool._review_permits).
        self.permit = Permit(math.inf)
        self.session: Optional[Session] = None
        self.provider_id: Optional[str] = None
        self.engaging = True
        self.leave = False  # release the provider once idle
        self.dirty = False  # its session was cancelled mid-batch: never reuse it
        self.waiting_for: Optional[Job] = None  # the stream job it waits for, if any
        self.job: Optional[Job] = None  # the job whose fragment (or stream) it runs
        self.thread: Optional[threading.Thread] = None
        self.engaging_since = time.monotonic()
        self.running_since = 0.0

    def start_engaging(self) -> None:
        self.engaging = True
        self.engaging_since = time.monotonic()
        self.permit = Permit(math.inf)  # until the pool reviews it
        self.session = self.provider_id = None
        self.dirty = False

    def engaged(self, session: Session) -> None:
        self.session, self.provider_id = session, session.info.id

    def call_off(self) -> None:
        """The engagement is not wanted any more: abort it, and wake it if it waits to sign."""
        self.abort.set()
        self.permit.wake()

    def engaging_time(self, now: float) -> float:
        """Seconds this engagement took, without the time it was held before signing."""
        return max(now - self.engaging_since - self.permit.waited, 0.0)

    def ready(self) -> None:
        self.engaging = False

    def released(self) -> None:
        self.session = self.provider_id = None
        self.job = None

    def running(self, job: Optional[Job]) -> None:
        self.job = job
        if job is not None:
            self.running_since = time.monotonic()
        self.leave = False  # work arrived while it was being let go: keep the provider

    def cancel_running(self) -> None:
        self.dirty = True

    def told_to_leave(self) -> None:
        self.leave = True


class Copy:
    """A slot's running copy of a speculative fragment, in the pool's books (changed
    only by the pool, under its lock)."""

    __slots__ = ("slot", "started", "failed")

    def __init__(self, slot: Slot, started: float) -> None:
        self.slot = slot
        self.started = started
        #: It failed: it left the decision to another copy still running, or made it.
        self.failed = False

    def fail(self) -> None:
        self.failed = True
