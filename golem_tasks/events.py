"""What happens during a run, as plain frozen records.

Consumers are plain callables ``consumer(event)`` given to ``Golem(events=...)`` or
``Golem.add_event_consumer``. They are called on the scheduler's threads, so they
must be quick; an exception in a consumer is logged and never breaks the run.
Events carry ids and values only, never live objects. Only leaf classes are emitted::

    Event
    ├── JobEvent                     job_id
    │   ├── JobStarted               total (None when the input has no len())
    │   ├── JobFinished              done, failed, retried, elapsed, providers, error, backups, backups_won
    │   └── FragmentEvent            index, provider_id
    │       ├── FragmentStarted      attempt
    │       ├── BackupStarted        running_for (a backup copy of a straggler, speculate=True)
    │       ├── FragmentFinished     attempt, duration, backup
    │       ├── FragmentRetried      attempt, reason, delay
    │       └── FragmentFailed       attempts, reason
    ├── ProviderEvent                provider_id, provider_name
    │   ├── ProviderEngaged
    │   ├── InitializerFailed        reason
    │   └── ProviderReleased         reason, excluded
    ├── CostsSettled                 costs, total, unpaid (once, when a paid provider closes)
    ├── SpendUpdated                 spent, projected, budget, token (a paid provider's spend, live)
    ├── ProviderSearch               waited, engaged, summary (a backend still looking for providers)
    └── CommandOutput                job_id, index, provider_id, command_index, stream, text

Backends add their own branches (``golem_tasks.providers.yagna`` reports offers,
agreements and payments); ``Golem`` forwards them to the same consumers.
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any, Callable, ClassVar, Dict, Mapping, Optional, Tuple

import attrs

logger = logging.getLogger(__name__)


@attrs.frozen(kw_only=True)
class Event:
    """Base of every event. ``timestamp`` is ``time.time()`` when the event was made."""

    #: Opt-in events reach only consumers that name their class (or a subclass), never
    #: a consumer of every ``Event``: they cost the backend work (a live stream per batch).
    opt_in: ClassVar[bool] = False

    timestamp: float = attrs.field(factory=time.time)


@attrs.frozen(kw_only=True)
class JobEvent(Event):
    job_id: int


@attrs.frozen(kw_only=True)
class JobStarted(JobEvent):
    """A ``map``/``for_each``/``execute_tasks``/... call started."""

    kind: str
    total: Optional[int] = None


@attrs.frozen(kw_only=True)
class ProviderSummary:
    """What one provider did for a job."""

    provider_id: str
    provider_name: str
    done: int = 0
    failed: int = 0
    busy: float = 0.0


@attrs.frozen(kw_only=True)
class JobFinished(JobEvent):
    """A job ended. ``error`` is None on success, else a one-line reason."""

    done: int
    failed: int
    retried: int
    elapsed: float
    providers: Tuple[ProviderSummary, ...] = ()
    error: Optional[str] = None
    #: Backup copies of stragglers started, and how many of them finished first.
    backups: int = 0
    backups_won: int = 0


@attrs.frozen(kw_only=True)
class FragmentEvent(JobEvent):
    index: int
    provider_id: Optional[str] = None


@attrs.frozen(kw_only=True)
class FragmentStarted(FragmentEvent):
    attempt: int


@attrs.frozen(kw_only=True)
class BackupStarted(FragmentEvent):
    """A backup copy of a straggling fragment started on ``provider_id`` (``speculate=True``)."""

    running_for: float


@attrs.frozen(kw_only=True)
class FragmentFinished(FragmentEvent):
    attempt: int
    duration: float
    #: True when a backup copy delivered the result (the original was cancelled).
    backup: bool = False


@attrs.frozen(kw_only=True)
class FragmentRetried(FragmentEvent):
    """An attempt failed and the fragment went back to the queue."""

    attempt: int
    reason: str
    delay: float


@attrs.frozen(kw_only=True)
class FragmentFailed(FragmentEvent):
    """A fragment failed for good."""

    attempts: int
    reason: str


@attrs.frozen(kw_only=True)
class FragmentReplayed(FragmentEvent):
    """A fragment's result was found in the job's ``journal=`` and handed back
    without running (``provider_id`` is None)."""


@attrs.frozen(kw_only=True)
class ProviderEvent(Event):
    provider_id: str
    provider_name: str


@attrs.frozen(kw_only=True)
class ProviderEngaged(ProviderEvent):
    pass


@attrs.frozen(kw_only=True)
class InitializerFailed(ProviderEvent):
    reason: str


@attrs.frozen(kw_only=True)
class ProviderReleased(ProviderEvent):
    """``excluded`` is True when the provider will not be engaged again in this run."""

    reason: str
    excluded: bool = False


def _decimal_items(value: Any) -> Tuple[Tuple[str, Decimal], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((str(k), Decimal(v)) for k, v in items))


def _str_items(value: Any) -> Tuple[Tuple[str, str], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((str(k), str(v)) for k, v in items))


@attrs.frozen(kw_only=True)
class CostsSettled(Event):
    """The final bill of a provider that charges (Golem), when it closes.

    Attributes:
        costs: ``(provider_id, accepted amount)`` pairs, sorted by id (Decimal, never float).
        total: their sum.
        unpaid: agreements whose invoice did not arrive within the wait.
        names: ``(provider_id, name)`` pairs, for the providers that have a name.
        token: what the amounts are in: ``"tGLM"`` on a testnet, ``"GLM"`` on mainnet.
    """

    costs: Tuple[Tuple[str, Decimal], ...] = attrs.field(converter=_decimal_items)
    total: Decimal
    unpaid: Tuple[str, ...] = ()
    names: Tuple[Tuple[str, str], ...] = attrs.field(default=(), converter=_str_items)
    token: str = "GLM"


@attrs.frozen(kw_only=True)
class SpendUpdated(Event):
    """A paid provider's spend as it goes (Golem with a ``budget``): emitted when a debit
    note or invoice is accepted and when an agreement is made or ends. The progress
    bar shows the three amounts.

    Attributes:
        spent: accepted so far (debit notes, invoices).
        projected: what the agreements made will cost in all at the job's pace
            (at least ``spent``).
        budget: the most that will be accepted.
        token: what the amounts are in (``"tGLM"`` on a testnet).
    """

    spent: Decimal
    projected: Decimal
    budget: Decimal
    token: str = "GLM"


@attrs.frozen(kw_only=True)
class ProviderSearch(Event):
    """A backend that has to find providers (Golem) says how the search goes while no
    provider is engaged: at once when it changes, and a last time when the first one
    is engaged (``engaged`` > 0). Backends emit a subclass with their own counts
    (``golem_tasks.providers.yagna.MarketStatus``); the progress bar shows ``summary``.

    Attributes:
        waited: seconds since the search started.
        engaged: providers engaged now (0 while waiting).
        summary: one line for people, e.g. ``"12 offers, 12 rejected: 12 price caps"``.
    """

    waited: float
    engaged: int
    summary: str


@attrs.frozen(kw_only=True)
class CommandOutput(Event):
    """A chunk a ``run`` printed, while it runs (issue 3 §4): live output for logs and
    progress displays. Made only when a consumer takes this class, so it costs nothing
    otherwise; it is deliberately not a ``JobEvent``, so job-level consumers (the
    progress bar) do not pay for it. It is opt-in: only a consumer that names this class
    gets it (``add_event_consumer(f, kinds=(CommandOutput,))``), because watching output
    costs the Golem backend a live stream per batch.

    Attributes:
        job_id: the job, None for the initializer.
        index: the fragment's index; None for the initializer and for ``execute_tasks``
            workers, whose batches do not belong to one task.
        provider_id: where the command runs.
        command_index: the command's position in its batch.
        stream: ``"stdout"`` or ``"stderr"``.
        text: the chunk (decoded as UTF-8).
    """

    opt_in: ClassVar[bool] = True

    job_id: Optional[int]
    index: Optional[int]
    provider_id: str
    command_index: int
    stream: str
    text: str


Consumer = Callable[[Event], None]


class Emitter:
    """Calls every consumer with every event it asked for; a failing consumer is logged,
    not raised. ``wants(kind)`` lets the scheduler skip building events nobody reads,
    which keeps per-fragment overhead low when only job-level consumers are installed."""

    def __init__(self) -> None:
        self._consumers: Tuple[Tuple[Consumer, Tuple[type, ...]], ...] = ()
        self._wanted: Dict[type, bool] = {}
        self._routes: Dict[type, Tuple[Consumer, ...]] = {}

    def add(self, consumer: Consumer, kinds: Tuple[type, ...] = (Event,)) -> None:
        if not callable(consumer):
            raise TypeError(f"an event consumer must be callable, got {consumer!r}")
        # Replace the tuple rather than mutate it so emit() never needs a lock.
        self._consumers = self._consumers + ((consumer, tuple(kinds)),)
        self._wanted, self._routes = {}, {}

    def remove(self, consumer: Consumer) -> None:
        self._consumers = tuple(c for c in self._consumers if c[0] is not consumer)
        self._wanted, self._routes = {}, {}

    def wants(self, kind: type) -> bool:
        """True when some consumer takes events of class ``kind``."""
        wanted = self._wanted.get(kind)
        if wanted is None:
            wanted = self._wanted[kind] = any(_takes(kinds, kind) for _, kinds in self._consumers)
        return wanted

    def emit(self, event: Event) -> None:
        kind = type(event)
        route = self._routes.get(kind)
        if route is None:  # a plain dict: a lost race only computes the same tuple twice
            route = self._routes[kind] = tuple(c for c, kinds in self._consumers if _takes(kinds, kind))
        for consumer in route:
            try:
                consumer(event)
            except Exception:  # a bad consumer must not break the run (Future._invoke_callbacks)
                logger.exception("event consumer %r failed on %r", consumer, event)


def _takes(kinds: Tuple[type, ...], kind: type) -> bool:
    """Whether a consumer of ``kinds`` gets events of class ``kind``."""
    opt_in = getattr(kind, "opt_in", False)
    return any(issubclass(kind, k) and (not opt_in or getattr(k, "opt_in", False)) for k in kinds)
