"""Feedback built on events: a progress bar and an end-of-job summary."""

from __future__ import annotations

import logging
import sys
import threading
import weakref
from collections import Counter
from typing import Any, Dict, Iterable, Optional, Set, Tuple

from . import events as ev
from ._format import money

summary_logger = logging.getLogger("golem_tasks.summary")


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where stderr is not a terminal but a bar is wanted)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except Exception:
        return False
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def progress_wanted(progress: Optional[bool]) -> bool:
    if progress is not None:
        return bool(progress)
    stream = sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)()) or in_notebook()


def short_id(provider_id: str) -> str:
    """A provider id short enough to read: ``0x1234abcd`` for a node id, else the id."""
    if provider_id.startswith("0x") and len(provider_id) > 10:
        return provider_id[:10]
    return provider_id


def provider_labels(providers: Iterable[Tuple[str, str]]) -> Dict[str, str]:
    """How the summary names each ``(id, name)``: by name, with the short id added only
    where two providers share a name, and the short id alone for a nameless one. A name
    that already holds the id (the local provider's ``local-1 (bwrap)``) is left as it is."""
    pairs = list(providers)
    counts = Counter(name for _, name in pairs if name)
    labels = {}
    for provider_id, name in pairs:
        if not name:
            labels[provider_id] = short_id(provider_id)
        elif counts[name] > 1 and provider_id not in name:
            labels[provider_id] = f"{name} ({short_id(provider_id)})"
        else:
            labels[provider_id] = name
    return labels


def format_summary(event: ev.JobFinished) -> str:
    """The end-of-job summary, one line per provider."""
    head = (f"job {event.job_id}: {event.done} done, {event.failed} failed, {event.retried} retried "
            f"in {event.elapsed:.2f} s")
    if event.backups:
        head += f", {event.backups} backup cop{'y' if event.backups == 1 else 'ies'} of stragglers " \
                f"({event.backups_won} finished first)"
    if event.error:
        head += f" ({event.error})"
    lines = [head]
    labels = provider_labels((p.provider_id, p.provider_name) for p in event.providers)
    for p in event.providers:
        lines.append(f"  {labels[p.provider_id]}: {p.done} done, {p.failed} failed, busy {p.busy:.2f} s")
    return "\n".join(lines)


def spend_postfix(event: ev.SpendUpdated) -> Dict[str, str]:
    """What the bar's postfix adds for a paid provider: spent, projected and budget."""
    return {"spent": money(event.spent, event.token), "projected": money(event.projected, event.token),
            "budget": money(event.budget, event.token)}


def format_costs(event: ev.CostsSettled) -> str:
    """The bill: cost per provider and the total, rounded, with the token."""
    names = dict(event.names)
    labels = provider_labels((provider_id, names.get(provider_id, "")) for provider_id, _ in event.costs)
    lines = [f"cost: {money(event.total, event.token)} in total"]
    lines += [f"  {labels[provider]}: {money(amount, event.token)}" for provider, amount in event.costs]
    if event.unpaid:
        lines.append(f"  no invoice in time for {len(event.unpaid)} agreement(s): {', '.join(event.unpaid)}")
    return "\n".join(lines)


#: Jobs whose summary a progress bar prints, and whether a bar shows the bill: the log
#: record of those is marked so :func:`golem_tasks.log_to_stderr` does not print it twice.
_on_screen_jobs: Set[int] = set()
_bars: "weakref.WeakSet[ProgressBar]" = weakref.WeakSet()


class SummaryLogger:
    """Logs each job's summary, and the bill, at INFO on ``golem_tasks.summary``."""

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.JobFinished):
            shown = event.job_id in _on_screen_jobs
            summary_logger.info("%s", format_summary(event), extra={"golem_tasks_on_screen": shown})
        elif isinstance(event, ev.CostsSettled):
            shown = len(_bars) > 0
            summary_logger.info("%s", format_costs(event), extra={"golem_tasks_on_screen": shown})


class ProgressBar:
    """A tqdm bar per job with done/failed/retried counts, and with a budget the spend
    (spent, projected, budget); prints the summary at the end. Uses ``tqdm.auto`` so
    notebooks get their widget."""

    def __init__(self, file: Any = None) -> None:
        self._bars: Dict[int, Any] = {}
        self._counts: Dict[int, Dict[str, int]] = {}
        self._spend: Dict[str, str] = {}
        self._lock = threading.Lock()
        self._file = file
        _bars.add(self)

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.JobStarted):
            self._start(event)
            return
        if isinstance(event, ev.CostsSettled):
            (self._file or sys.stderr).write(format_costs(event) + "\n")
            return
        if isinstance(event, ev.ProviderSearch):
            self._searching(event)
            return
        if isinstance(event, ev.SpendUpdated):
            self._spent(event)
            return
        if not isinstance(event, ev.JobEvent):
            return
        with self._lock:
            bar = self._bars.get(event.job_id)
            if bar is None:
                return
            counts = self._counts[event.job_id]
            if isinstance(event, ev.FragmentFinished):
                counts["done"] += 1
            elif isinstance(event, ev.FragmentFailed):
                counts["failed"] += 1
            elif isinstance(event, ev.FragmentReplayed):  # a result read back from the journal
                counts["journal"] = counts.get("journal", 0) + 1
            elif isinstance(event, ev.FragmentRetried):
                counts["retried"] += 1
            elif isinstance(event, ev.JobFinished):
                self._finish(event, bar)
                return
            else:
                return
            # The postfix first, then the step that redraws: the counts and the bar move together.
            bar.set_postfix(self._postfix(event.job_id), refresh=False)
            if not isinstance(event, ev.FragmentRetried):
                bar.update(1)

    def _searching(self, event: ev.ProviderSearch) -> None:
        """While no provider is engaged, every open bar shows what the search found; the
        counts come back once one is engaged."""
        with self._lock:
            for job_id, bar in self._bars.items():
                if event.engaged:
                    bar.set_postfix(self._postfix(job_id), refresh=True)
                else:
                    bar.set_postfix_str(event.summary, refresh=True)

    def _spent(self, event: ev.SpendUpdated) -> None:
        """Every open bar shows the spend next to its counts (the spend is the provider's,
        shared by the jobs running on it)."""
        with self._lock:
            self._spend = spend_postfix(event)
            for job_id, bar in self._bars.items():
                bar.set_postfix(self._postfix(job_id), refresh=True)

    def _postfix(self, job_id: int) -> Dict[str, Any]:
        return {**self._counts[job_id], **self._spend}

    def _start(self, event: ev.JobStarted) -> None:
        tqdm = _tqdm_class()

        class Bar(tqdm):  # type: ignore[valid-type,misc]
            # tqdm's monitor thread would outlive the Golem; the bar is refreshed on
            # every update anyway. A subclass leaves tqdm's global setting alone.
            monitor_interval = 0

        with self._lock:
            self._bars[event.job_id] = Bar(total=event.total, desc=f"{event.kind} #{event.job_id}",
                                            unit="fragments", file=self._file or sys.stderr, leave=True)
            self._counts[event.job_id] = {"done": 0, "failed": 0, "retried": 0}
            _on_screen_jobs.add(event.job_id)

    def _finish(self, event: ev.JobFinished, bar: Any) -> None:
        bar.close()
        del self._bars[event.job_id]
        del self._counts[event.job_id]
        _on_screen_jobs.discard(event.job_id)
        bar.write(format_summary(event), file=self._file or sys.stderr)


def _tqdm_class() -> type:
    """The notebook widget when ipywidgets can draw it, else the text bar. tqdm.auto
    alone would warn "IProgress not found" in every notebook without ipywidgets."""
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        from tqdm.std import tqdm
        return tqdm
    from tqdm.auto import tqdm as auto
    return auto
