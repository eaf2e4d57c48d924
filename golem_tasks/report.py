"""A report of what happened: one row per fragment (``golem.report()``).

:class:`Recorder` is an event consumer; it keeps, per fragment, each attempt's
provider, start, end, outcome and cause. :meth:`Recorder.report` turns that into a
:class:`Report`: a sequence of frozen :class:`FragmentRow` records, with
:meth:`Report.to_csv`, :meth:`Report.to_pandas` (needs pandas) and
:meth:`Report.timeline` (needs matplotlib: ``pip install 'golem_tasks[report]'``),
which a notebook shows inline.

Usage::

    with Golem() as golem:
        results = list(golem.map(worker, items))
    report = golem.report()
    report.to_csv("what-happened.csv")
    report.timeline()          # in a notebook: the picture

Times are ``time.time()`` seconds (the events' timestamps). The cost share of a
fragment is its provider's settled cost (``CostsSettled``) split by the time each
fragment kept that provider busy; None while no cost is known (before the Golem
provider closes, or for providers that do not charge).
"""

from __future__ import annotations

import csv
import io
import os
import threading
from datetime import datetime, timezone
from decimal import Decimal
from typing import IO, Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union, cast, overload

import attrs

from . import events as ev

#: How many fragments a recorder keeps by default; older jobs are dropped first, so
#: memory stays bounded however long the input (about 300 bytes a fragment).
DEFAULT_LIMIT = 50_000

# Attempt outcomes.
DONE, RETRIED, FAILED, CANCELLED, RUNNING, JOURNAL = "done", "retried", "failed", "cancelled", "running", "journal"


@attrs.frozen(kw_only=True)
class Attempt:
    """One attempt of a fragment.

    Attributes:
        number: the attempt's number (1 = first; a backup copy may share it).
        provider_id, provider_name: where it ran (None for a result from the journal).
        start, end: ``time.time()`` seconds; ``end`` is None while it runs.
        outcome: ``done``, ``retried`` (failed, and the fragment went back to the
            queue), ``failed`` (the fragment failed for good), ``cancelled`` (stopped:
            the job ended, or a backup copy lost the race), ``running`` or ``journal``.
        cause: why it did not succeed (``ExceptionName: message``), else None.
        backup: it started while another copy of the fragment was running.
    """

    number: int
    provider_id: Optional[str]
    provider_name: Optional[str]
    start: float
    end: Optional[float]
    outcome: str
    cause: Optional[str] = None
    backup: bool = False

    @property
    def duration(self) -> Optional[float]:
        return None if self.end is None else self.end - self.start


@attrs.frozen(kw_only=True)
class FragmentRow:
    """One fragment of a job.

    Attributes:
        job_id, kind: the job (``map``, ``execute_tasks``, ...).
        index: the fragment's position in the input.
        status: ``done``, ``failed``, ``journal`` (its result came from the journal),
            ``running`` or ``cancelled``.
        provider_id, provider_name: the provider of the attempt that decided it (the
            one that delivered, or the last one).
        attempts: every attempt, in the order they started.
        start, end: of the first attempt and of the deciding one.
        cost: the fragment's share of its providers' settled costs, when known.
    """

    job_id: int
    kind: str
    index: int
    status: str
    provider_id: Optional[str]
    provider_name: Optional[str]
    attempts: Tuple[Attempt, ...]
    start: Optional[float]
    end: Optional[float]
    cost: Optional[Decimal] = None

    @property
    def duration(self) -> Optional[float]:
        return None if self.start is None or self.end is None else self.end - self.start

    @property
    def causes(self) -> Tuple[str, ...]:
        """Why the attempts before the last good one failed, oldest first."""
        return tuple(a.cause for a in self.attempts if a.cause)

    @property
    def retries(self) -> int:
        return sum(1 for a in self.attempts if a.outcome == RETRIED)

    @property
    def backups(self) -> int:
        return sum(1 for a in self.attempts if a.backup)


CSV_FIELDS = ("job_id", "kind", "index", "status", "provider_id", "provider_name", "attempts", "retries",
              "backups", "causes", "start", "end", "duration", "cost")


def _iso(timestamp: Optional[float]) -> str:
    return "" if timestamp is None else datetime.fromtimestamp(timestamp, timezone.utc).isoformat()


class Report(Sequence[FragmentRow]):
    """What happened, one :class:`FragmentRow` per fragment, by job and index.

    Attributes:
        dropped: fragments of older jobs no longer kept (see ``Recorder(limit=)``).
    """

    def __init__(self, rows: Sequence[FragmentRow], dropped: int = 0) -> None:
        self.rows: Tuple[FragmentRow, ...] = tuple(rows)
        self.dropped = dropped

    @overload
    def __getitem__(self, i: int) -> FragmentRow: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[FragmentRow]: ...

    def __getitem__(self, i: Union[int, slice]) -> Union[FragmentRow, Sequence[FragmentRow]]:
        return self.rows[i]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[FragmentRow]:
        return iter(self.rows)

    def __repr__(self) -> str:
        counts: Dict[str, int] = {}
        for row in self.rows:
            counts[row.status] = counts.get(row.status, 0) + 1
        text = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no fragments"
        more = f", {self.dropped} older dropped" if self.dropped else ""
        return f"<Report {len(self.rows)} fragments: {text}{more}>"

    def job(self, job_id: int) -> "Report":
        """The rows of one job."""
        return Report([row for row in self.rows if row.job_id == job_id])

    # ------------------------------------------------------------------ tables
    def _records(self) -> Iterator[Tuple[Any, ...]]:
        for r in self.rows:
            yield (r.job_id, r.kind, r.index, r.status, r.provider_id or "", r.provider_name or "",
                   len(r.attempts), r.retries, r.backups, " | ".join(r.causes), r.start, r.end, r.duration,
                   r.cost)

    def to_csv(self, path_or_file: Union[str, "os.PathLike[str]", IO[str]]) -> None:
        """Write the rows as CSV (header first; times in ISO 8601 UTC, ``duration`` in
        seconds, ``causes`` joined by `` | ``) to a path or an open text file."""
        if isinstance(path_or_file, (str, os.PathLike)):
            with open(path_or_file, "w", newline="", encoding="utf-8") as out:
                self._write_csv(out)
        else:
            self._write_csv(path_or_file)

    def _write_csv(self, out: IO[str]) -> None:
        writer = csv.writer(out)
        writer.writerow(CSV_FIELDS)
        for record in self._records():
            *head, start, end, duration, cost = record
            writer.writerow([*head, _iso(start), _iso(end), "" if duration is None else f"{duration:.6f}",
                             "" if cost is None else str(cost)])

    def to_pandas(self) -> Any:
        """The rows as a ``pandas.DataFrame`` (``start``/``end`` as UTC datetimes).

        Raises:
            ImportError: pandas is not installed (``pip install pandas``).
        """
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("Report.to_pandas() needs pandas: pip install pandas "
                              "(or use to_csv(), or the rows themselves)") from exc
        frame = pd.DataFrame(list(self._records()), columns=list(CSV_FIELDS))
        for column in ("start", "end"):
            frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
        return frame

    def to_text(self) -> str:
        """The CSV as a string."""
        out = io.StringIO()
        self._write_csv(out)
        return out.getvalue()

    # ---------------------------------------------------------------- picture
    def timeline(self, job: Optional[int] = None) -> "Timeline":
        """A picture: one lane per provider, each attempt a bar (retried attempts
        orange, failed red, cancelled grey, backup copies hatched). A notebook shows
        it inline; ``.figure`` is the matplotlib Figure, ``.save(path)`` writes it.

        Raises:
            ImportError: matplotlib is not installed (``pip install 'golem_tasks[report]'``).
        """
        rows = self.rows if job is None else self.job(job).rows
        return Timeline(_draw(rows))


_COLOURS = {DONE: "#4c9a2a", RETRIED: "#f0a030", FAILED: "#d0342c", CANCELLED: "#a0a0a0",
            RUNNING: "#3070c0"}


def _draw(rows: Sequence[FragmentRow]) -> Any:
    try:
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch
    except ImportError as exc:
        raise ImportError("Report.timeline() needs matplotlib: pip install 'golem_tasks[report]' "
                          "(or pip install matplotlib)") from exc
    attempts = [(row, a) for row in rows for a in row.attempts if a.provider_id is not None]
    lanes = sorted({a.provider_name or a.provider_id or "" for _, a in attempts})
    lane_of = {name: i for i, name in enumerate(lanes)}
    t0 = min((a.start for _, a in attempts), default=0.0)
    t1 = max((a.end if a.end is not None else a.start for _, a in attempts), default=t0)
    figure = Figure(figsize=(10, 1.2 + 0.45 * max(1, len(lanes))))
    axes = figure.add_subplot()
    for row, a in attempts:
        end = a.end if a.end is not None else t1
        axes.barh(lane_of[a.provider_name or a.provider_id or ""], max(end - a.start, (t1 - t0) / 2000 or 1e-3),
                  left=a.start - t0, height=0.6, color=_COLOURS.get(a.outcome, "#3070c0"),
                  edgecolor="black", linewidth=0.3, hatch="///" if a.backup else None)
    axes.set_yticks(range(len(lanes)), labels=lanes)
    axes.set_xlabel("seconds since the first attempt started")
    journal = sum(1 for row in rows if row.status == JOURNAL)
    title = f"{len(rows)} fragments on {len(lanes)} providers"
    if journal:
        title += f" ({journal} from the journal, not drawn)"
    axes.set_title(title)
    handles = [Patch(color=c, label=o) for o, c in _COLOURS.items() if any(a.outcome == o for _, a in attempts)]
    if any(a.backup for _, a in attempts):
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="///", label="backup copy"))
    if handles:
        axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    figure.tight_layout()
    return figure


class Timeline:
    """The timeline picture; a notebook displays it (``_repr_png_``)."""

    def __init__(self, figure: Any) -> None:
        self.figure = figure

    def _repr_png_(self) -> bytes:
        out = io.BytesIO()
        self.figure.savefig(out, format="png", dpi=90)
        return out.getvalue()

    def save(self, path: Union[str, "os.PathLike[str]"], **options: Any) -> None:
        """Write the picture; the format follows the file name (``.png``, ``.svg``, ``.pdf``)."""
        self.figure.savefig(path, **options)


# ----------------------------------------------------------------- recording
# An attempt as kept while recording: (provider_id, number, start, end, outcome, cause, backup).
_Kept = Tuple[Optional[str], int, float, Optional[float], str, Optional[str], bool]


class _Job:
    __slots__ = ("kind", "fragments", "open", "running", "finished")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.fragments: Dict[int, List[_Kept]] = {}
        #: running attempts: (index, provider_id) -> (number, start, backup)
        self.open: Dict[Tuple[int, Optional[str]], Tuple[int, float, bool]] = {}
        #: how many copies of a fragment run now (more than one: backups)
        self.running: Dict[int, int] = {}
        self.finished: Optional[float] = None


class Recorder:
    """An event consumer that keeps what each fragment did; :meth:`report` builds the
    :class:`Report`. Keeps at most ``limit`` fragments: the oldest jobs are dropped
    first (a job bigger than that keeps its first ``limit``)."""

    #: The events it needs (give them as ``kinds=`` so no other events are made for it).
    kinds: Tuple[type, ...] = (ev.JobStarted, ev.JobFinished, ev.FragmentStarted, ev.FragmentFinished,
                               ev.FragmentRetried, ev.FragmentFailed, ev.FragmentReplayed, ev.ProviderEngaged,
                               ev.CostsSettled)

    def __init__(self, limit: Optional[int] = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._jobs: Dict[int, _Job] = {}
        self._names: Dict[str, str] = {}
        self._costs: Dict[str, Decimal] = {}
        self._kept = 0
        self._dropped = 0

    def __call__(self, event: ev.Event) -> None:
        kind = type(event)
        with self._lock:
            # Every fragment makes a start and a finish, on the scheduler's threads: those
            # two come first and short (the recorder is on in every run). type() is exact
            # and cheaper than a chain of isinstance.
            if kind is ev.FragmentStarted or kind is ev.FragmentFinished:
                fragment = cast(ev.FragmentEvent, event)
                job = self._jobs.get(fragment.job_id)
                if job is not None:
                    self._fragment(job, fragment)
                    return
            if isinstance(event, ev.FragmentEvent):
                job = self._jobs.get(event.job_id)
                if job is None:
                    job = self._jobs[event.job_id] = _Job("?")
                self._fragment(job, event)
            elif isinstance(event, ev.JobStarted):
                self._jobs[event.job_id] = _Job(event.kind)
            elif isinstance(event, ev.JobFinished):
                self._job_finished(event)
            elif isinstance(event, ev.ProviderEngaged):
                self._names[event.provider_id] = event.provider_name
            elif isinstance(event, ev.CostsSettled):
                for provider_id, amount in event.costs:
                    self._costs[provider_id] = self._costs.get(provider_id, Decimal(0)) + amount

    def _attempts(self, job: _Job, index: int) -> Optional[List[_Kept]]:
        attempts = job.fragments.get(index)
        if attempts is None:
            if self.limit is not None and self._kept >= self.limit and not self._drop_oldest(job):
                self._dropped += 1
                return None
            attempts = job.fragments[index] = []
            self._kept += 1
        return attempts

    def _drop_oldest(self, current: _Job) -> bool:
        for job_id, job in self._jobs.items():
            if job is not current and job.finished is not None:
                del self._jobs[job_id]
                self._kept -= len(job.fragments)
                self._dropped += len(job.fragments)
                return True
        return False

    def _fragment(self, job: _Job, event: ev.FragmentEvent) -> None:
        if isinstance(event, ev.FragmentStarted):
            self._started(job, event)
        elif isinstance(event, ev.FragmentFinished):
            self._ended(job, event, DONE, None, event.attempt)
        elif isinstance(event, ev.FragmentRetried):
            self._ended(job, event, RETRIED, event.reason, event.attempt)
        elif isinstance(event, ev.FragmentFailed):
            self._ended(job, event, FAILED, event.reason, event.attempts)
        elif isinstance(event, ev.FragmentReplayed):
            attempts = self._attempts(job, event.index)
            if attempts is not None:
                attempts.append((None, 0, event.timestamp, event.timestamp, JOURNAL, None, False))

    def _started(self, job: _Job, event: ev.FragmentStarted) -> None:
        index = event.index
        if self._attempts(job, index) is None:
            return
        copies = job.running.get(index, 0)
        job.running[index] = copies + 1
        job.open[(index, event.provider_id)] = (event.attempt, event.timestamp, copies > 0)

    def _ended(self, job: _Job, event: ev.FragmentEvent, outcome: str, cause: Optional[str], number: int) -> None:
        index, provider = event.index, event.provider_id
        attempts = job.fragments.get(index)
        if attempts is None and outcome == FAILED:
            attempts = self._attempts(job, index)
        if attempts is None:
            return
        started = job.open.pop((index, provider), None)
        if started is None:  # failed before it started (cancelled, pool broken)
            attempts.append((provider, number, event.timestamp, event.timestamp, outcome, cause, False))
            return
        copies = job.running.pop(index, 1) - 1
        if copies:
            job.running[index] = copies
        attempts.append((provider, started[0], started[1], event.timestamp, outcome, cause, started[2]))

    def _job_finished(self, event: ev.JobFinished) -> None:
        job = self._jobs.get(event.job_id)
        if job is None:
            return
        job.finished = event.timestamp
        for (index, provider), (number, start, backup) in job.open.items():
            attempts = job.fragments.get(index)
            if attempts is not None:
                attempts.append((provider, number, start, event.timestamp, CANCELLED, None, backup))
        job.open.clear()
        job.running.clear()

    # ------------------------------------------------------------------ report
    def report(self) -> Report:
        """What happened so far, every kept job's fragments by job and index."""
        with self._lock:
            jobs = [(job_id, job.kind, sorted(job.fragments.items()), dict(job.open))
                    for job_id, job in self._jobs.items()]
            names, costs, dropped = dict(self._names), dict(self._costs), self._dropped
        rows: List[FragmentRow] = []
        for job_id, kind, fragments, running in jobs:
            for index, kept in fragments:
                attempts = [Attempt(number=p[1], provider_id=p[0], provider_name=names.get(p[0], p[0])
                                    if p[0] else None, start=p[2], end=p[3], outcome=p[4], cause=p[5],
                                    backup=p[6]) for p in kept]
                attempts += [Attempt(number=n, provider_id=pid, provider_name=names.get(pid or "", pid),
                                     start=start, end=None, outcome=RUNNING, backup=backup)
                             for (i, pid), (n, start, backup) in running.items() if i == index]
                attempts.sort(key=lambda a: a.start)
                rows.append(_row(job_id, kind, index, tuple(attempts)))
        return Report(_with_costs(rows, costs), dropped)


def _row(job_id: int, kind: str, index: int, attempts: Tuple[Attempt, ...]) -> FragmentRow:
    deciding = next((a for a in attempts if a.outcome in (DONE, JOURNAL)), None)
    if deciding is not None:
        status = deciding.outcome
    elif any(a.outcome == RUNNING for a in attempts) or (attempts and attempts[-1].outcome == RETRIED):
        status, deciding = RUNNING, attempts[-1]
    elif attempts and attempts[-1].outcome == FAILED:
        status, deciding = FAILED, attempts[-1]
    else:
        status, deciding = CANCELLED, attempts[-1] if attempts else None
    return FragmentRow(job_id=job_id, kind=kind, index=index, status=status,
                       provider_id=deciding.provider_id if deciding else None,
                       provider_name=deciding.provider_name if deciding else None, attempts=attempts,
                       start=attempts[0].start if attempts else None,
                       end=deciding.end if deciding else None)


def _with_costs(rows: List[FragmentRow], costs: Dict[str, Decimal]) -> List[FragmentRow]:
    """Split each provider's cost over the fragments by the time they kept it busy."""
    if not costs:
        return rows
    busy: Dict[str, float] = {}
    for row in rows:
        for a in row.attempts:
            if a.provider_id in costs and a.end is not None:
                busy[a.provider_id] = busy.get(a.provider_id, 0.0) + (a.end - a.start)
    priced: List[FragmentRow] = []
    for row in rows:
        share: Optional[Decimal] = None
        for a in row.attempts:
            total = busy.get(a.provider_id or "")
            if a.provider_id in costs and a.end is not None and total:
                part = costs[a.provider_id] * Decimal(repr((a.end - a.start) / total))
                share = part if share is None else share + part
        priced.append(attrs.evolve(row, cost=share.quantize(Decimal("1e-18")) if share is not None else None))
    return priced
