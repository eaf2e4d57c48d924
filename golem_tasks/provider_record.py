"""A record of how each provider did, kept across runs (``provider_record=``).

Per provider id: fragments done, failed and lost, and the mean duration of a done
fragment. :class:`ProviderRecord` is an event consumer (it counts the scheduler's
fragment events) backed by an SQLite file, by default in the user's cache directory
(``$XDG_CACHE_HOME/golem_tasks/providers.sqlite``). The market asks it two things:

* :meth:`ProviderRecord.skip`: a reason to refuse a provider that failed repeatedly
  in its recent runs (most fragments failed, at least ``min_failures``), or None;
* :meth:`ProviderRecord.score`: how likely a fragment is to succeed there, in (0, 1),
  so cheaper-but-flaky providers lose to reliable ones (see ``PreferRecorded``).

Only failures that are the provider's doing count: infrastructure errors (a lost
provider, a failed or timed-out command, a rejected task), never the worker's own
exceptions. ``golem-tasks providers`` prints the record.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import attrs

from . import errors
from . import events as ev
from .errors import ConfigurationError
from .policy import INFRASTRUCTURE_ERRORS

logger = logging.getLogger(__name__)

RecordOption = Union[bool, None, str, "os.PathLike[str]", "ProviderRecord"]
DAY = 86400.0


def default_path() -> Path:
    """Where the record is kept unless told otherwise: ``$XDG_CACHE_HOME/golem_tasks``,
    else ``%LOCALAPPDATA%`` on Windows, else ``~/.cache``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.environ.get("LOCALAPPDATA") or \
        os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "golem_tasks" / "providers.sqlite"


@attrs.frozen(kw_only=True)
class ProviderStats:
    """What one provider did in all recorded runs.

    Attributes:
        provider_id, name: who (the name last seen).
        done, failed, lost: fragment attempts that succeeded, failed by the provider's
            doing, and were lost with the provider.
        mean_duration: seconds a done fragment took on average (None before any).
        runs: runs the provider worked in.
        last_seen: ``time.time()`` of its last recorded run.
    """

    provider_id: str
    name: str
    done: int
    failed: int
    lost: int
    mean_duration: Optional[float]
    runs: int
    last_seen: float


# ------------------------------------------------------------- classification
def _error_class(name: str) -> Optional[type]:
    # Only golem_tasks' own errors can be the provider's doing; the daemon's (the Golem
    # backend's ApiError family) and the worker's exceptions are not.
    found = getattr(errors, name, None)
    return found if isinstance(found, type) else None


def classify(reason: str) -> Optional[str]:
    """``"lost"``, ``"failed"`` or None (not the provider's doing) for an attempt that
    ended with ``reason`` (``"ExceptionName: message"``, as events carry it)."""
    name = reason.split(":", 1)[0].strip()
    if name == "ProviderLost":
        return "lost"
    cls = _error_class(name)
    if cls is None or issubclass(cls, errors.BatchCancelled):
        return None
    if issubclass(cls, INFRASTRUCTURE_ERRORS) or issubclass(cls, errors.FragmentFailed):
        return "failed"
    return None


class _Tally:
    __slots__ = ("name", "done", "failed", "lost", "busy")

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.done = self.failed = self.lost = 0
        self.busy = 0.0


class ProviderRecord:
    """Per-provider outcomes across runs, and the market's view of them.

    Args:
        path: the SQLite file (created with its directory when missing).
        recent_runs: how many of a provider's latest runs :meth:`skip` looks at.
        min_failures: fewest failures (failed + lost) in those runs to skip it; it is
            skipped when, besides, its failures outnumber its successes there.
        horizon: seconds after which a run no longer counts for :meth:`skip` (so a
            provider gets another chance); the record drops runs after 90 days.

    A run is one ``ProviderRecord`` from open to close (usually one ``Golem``). The
    current run counts as soon as its events arrive; it is written at the end of each
    job, when a provider is released, and at :meth:`close`.
    """

    #: The events it takes (pass as ``kinds=``).
    kinds: Tuple[type, ...] = (ev.ProviderEngaged, ev.ProviderReleased, ev.FragmentFinished,
                               ev.FragmentRetried, ev.FragmentFailed, ev.JobFinished)

    def __init__(self, path: Union[str, "os.PathLike[str]"], *, recent_runs: int = 3, min_failures: int = 3,
                 horizon: float = 7 * DAY) -> None:
        self.path = Path(path)
        self.recent_runs = recent_runs
        self.min_failures = min_failures
        self.horizon = horizon
        self.run_id = uuid.uuid4().hex
        self._started = time.time()
        self._lock = threading.Lock()
        self._current: Dict[str, _Tally] = {}
        self._dirty = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db: Optional[sqlite3.Connection] = sqlite3.connect(
                str(self.path), check_same_thread=False, isolation_level=None, timeout=10)
            self._prepare()
            self._history = self._load()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(f"cannot use the provider record {str(self.path)!r}: {exc}; "
                                     f"pass provider_record=PATH elsewhere, or provider_record=False") from exc

    def _prepare(self) -> None:
        assert self._db is not None
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a cache: no fsync per write on scheduler threads
        self._db.execute("CREATE TABLE IF NOT EXISTS runs (run TEXT NOT NULL, provider_id TEXT NOT NULL, "
                         "name TEXT NOT NULL, at REAL NOT NULL, done INTEGER NOT NULL, failed INTEGER NOT NULL, "
                         "lost INTEGER NOT NULL, busy REAL NOT NULL, PRIMARY KEY (run, provider_id))")
        self._db.execute("DELETE FROM runs WHERE at < ?", (time.time() - 90 * DAY,))

    def _load(self) -> Dict[str, List[Tuple[float, int, int, int, float, str]]]:
        """Each provider's runs, newest first: (at, done, failed, lost, busy, name)."""
        assert self._db is not None
        history: Dict[str, List[Tuple[float, int, int, int, float, str]]] = {}
        for pid, at, done, failed, lost, busy, name in self._db.execute(
                "SELECT provider_id, at, done, failed, lost, busy, name FROM runs ORDER BY at DESC"):
            history.setdefault(pid, []).append((at, done, failed, lost, busy, name))
        return history

    # ------------------------------------------------------------------ events
    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, (ev.JobFinished, ev.ProviderReleased)):
            if isinstance(event, ev.ProviderReleased):
                with self._lock:
                    self._tally(event.provider_id).name = event.provider_name
            self.flush()
            return
        if isinstance(event, ev.ProviderEngaged):
            with self._lock:
                self._tally(event.provider_id).name = event.provider_name
            return
        provider = getattr(event, "provider_id", None)
        if provider is None:
            return
        with self._lock:
            if isinstance(event, ev.FragmentFinished):
                tally = self._tally(provider)
                tally.done += 1
                tally.busy += event.duration
            elif isinstance(event, (ev.FragmentRetried, ev.FragmentFailed)):
                kind = classify(event.reason)
                if kind == "lost":
                    self._tally(provider).lost += 1
                elif kind == "failed":
                    self._tally(provider).failed += 1
                else:
                    return
            else:
                return
            self._dirty = True

    def _tally(self, provider_id: str) -> _Tally:
        tally = self._current.get(provider_id)
        if tally is None:
            tally = self._current[provider_id] = _Tally(provider_id)
        return tally

    def flush(self) -> None:
        """Write this run's counts (one transaction)."""
        with self._lock:
            if not self._dirty or self._db is None:
                return
            rows = [(self.run_id, pid, t.name, self._started, t.done, t.failed, t.lost, t.busy)
                    for pid, t in self._current.items() if t.done or t.failed or t.lost]
            self._dirty = False
            try:
                with self._db:
                    self._db.executemany("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            except sqlite3.Error as exc:  # the record must never break a run
                logger.warning("could not write the provider record %s: %s", self.path, exc)

    def close(self) -> None:
        """Write this run's counts and close the file. Idempotent."""
        self.flush()
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> "ProviderRecord":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------- the market
    def _runs(self, provider_id: str) -> List[Tuple[float, int, int, int, float, str]]:
        """Recorded runs, newest first, with the current one in front (locked)."""
        runs = list(self._history.get(provider_id, ()))
        current = self._current.get(provider_id)
        if current is not None and (current.done or current.failed or current.lost):
            runs.insert(0, (self._started, current.done, current.failed, current.lost, current.busy,
                            current.name))
        return runs

    def skip(self, provider_id: str) -> Optional[str]:
        """Why not to engage ``provider_id`` (it failed repeatedly in its recent runs),
        or None."""
        with self._lock:
            since = time.time() - self.horizon
            recent = [r for r in self._runs(provider_id) if r[0] >= since][:self.recent_runs]
        done = sum(r[1] for r in recent)
        failures = sum(r[2] + r[3] for r in recent)
        if failures >= self.min_failures and failures > done:
            return (f"failed {failures} of {failures + done} fragments in its last {len(recent)} run(s) "
                    f"(provider record {self.path}; `golem-tasks providers --forget {provider_id}` clears it)")
        return None

    def score(self, provider_id: str) -> float:
        """The chance that a fragment succeeds there, from every recorded attempt with
        one success and one failure assumed (so 0.5 for a provider never seen, and
        never 0 or 1)."""
        with self._lock:
            runs = self._runs(provider_id)
        done = sum(r[1] for r in runs)
        failures = sum(r[2] + r[3] for r in runs)
        return (done + 1) / (done + failures + 2)

    # -------------------------------------------------------------- the table
    def stats(self) -> List[ProviderStats]:
        """Every provider in the record, most fragments done first."""
        with self._lock:
            ids = set(self._history) | {pid for pid, t in self._current.items() if t.done or t.failed or t.lost}
            table = {pid: self._runs(pid) for pid in ids}
        stats = []
        for pid, runs in table.items():
            done = sum(r[1] for r in runs)
            busy = sum(r[4] for r in runs)
            stats.append(ProviderStats(provider_id=pid, name=runs[0][5] or pid, done=done,
                                       failed=sum(r[2] for r in runs), lost=sum(r[3] for r in runs),
                                       mean_duration=busy / done if done else None, runs=len(runs),
                                       last_seen=max(r[0] for r in runs)))
        return sorted(stats, key=lambda s: (-s.done, s.provider_id))

    def forget(self, provider_id: str) -> int:
        """Drop everything recorded about ``provider_id``; how many runs were dropped."""
        with self._lock:
            self._current.pop(provider_id, None)
            dropped = len(self._history.pop(provider_id, ()))
            if self._db is not None:
                with self._db:
                    self._db.execute("DELETE FROM runs WHERE provider_id = ?", (provider_id,))
        return dropped

    def format(self) -> str:
        """The record as a table for people (``golem-tasks providers``)."""
        rows = self.stats()
        if not rows:
            return f"no providers recorded yet in {self.path}"
        lines = [f"{'provider':<44} {'name':<20} {'done':>6} {'failed':>6} {'lost':>5} {'mean s':>8} "
                 f"{'runs':>5}  note"]
        for s in rows:
            mean = f"{s.mean_duration:.2f}" if s.mean_duration is not None else "-"
            note = self.skip(s.provider_id)
            lines.append(f"{s.provider_id:<44} {s.name[:20]:<20} {s.done:>6} {s.failed:>6} {s.lost:>5} "
                         f"{mean:>8} {s.runs:>5}  {'skipped: ' + note.split(' (')[0] if note else ''}".rstrip())
        return "\n".join(lines) + f"\n({self.path})"


def open_record(option: RecordOption) -> Optional[ProviderRecord]:
    """The record for a ``provider_record=`` option: True/None the default file, a path,
    a ProviderRecord as is, False none. The default file failing to open only logs
    a warning (a run must not fail for its cache); an explicit path raises."""
    if option is False:
        return None
    if isinstance(option, ProviderRecord):
        return option
    if option is None or option is True:
        try:
            return ProviderRecord(default_path())
        except ConfigurationError as exc:
            logger.warning("running without a provider record: %s", exc)
            return None
    if isinstance(option, (str, os.PathLike)):
        return ProviderRecord(option)
    raise ConfigurationError(f"provider_record must be True, False, a file path or a ProviderRecord, "
                             f"got {option!r}")
