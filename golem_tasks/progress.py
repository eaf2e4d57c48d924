"""Feedback built on events: a progress bar and an end-of-job summary."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any, Dict, Optional

from . import events as ev

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


def format_summary(event: ev.JobFinished) -> str:
    """The end-of-job summary, one line per provider."""
    head = (f"job {event.job_id}: {event.done} done, {event.failed} failed, {event.retried} retried "
            f"in {event.elapsed:.2f} s")
    if event.error:
        head += f" ({event.error})"
    lines = [head]
    for p in event.providers:
        lines.append(f"  {p.provider_name} ({p.provider_id}): {p.done} done, {p.failed} failed, "
                     f"busy {p.busy:.2f} s")
    return "\n".join(lines)


def format_costs(event: ev.CostsSettled) -> str:
    """The bill: cost per provider and the total."""
    lines = [f"cost: {event.total} in total"]
    lines += [f"  {provider}: {amount}" for provider, amount in event.costs]
    if event.unpaid:
        lines.append(f"  no invoice in time for {len(event.unpaid)} agreement(s): {', '.join(event.unpaid)}")
    return "\n".join(lines)


class SummaryLogger:
    """Logs each job's summary, and the bill, at INFO on ``golem_tasks.summary``."""

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.JobFinished):
            summary_logger.info("%s", format_summary(event))
        elif isinstance(event, ev.CostsSettled):
            summary_logger.info("%s", format_costs(event))


class ProgressBar:
    """A tqdm bar per job with done/failed/retried counts; prints the summary at the end.
    Uses ``tqdm.auto`` so notebooks get their widget."""

    def __init__(self, file: Any = None) -> None:
        self._bars: Dict[int, Any] = {}
        self._counts: Dict[int, Dict[str, int]] = {}
        self._lock = threading.Lock()
        self._file = file

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.JobStarted):
            self._start(event)
            return
        if isinstance(event, ev.CostsSettled):
            (self._file or sys.stderr).write(format_costs(event) + "\n")
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
                bar.update(1)
            elif isinstance(event, ev.FragmentFailed):
                counts["failed"] += 1
                bar.update(1)
            elif isinstance(event, ev.FragmentReplayed):  # from the journal (beyond11)
                counts["journal"] = counts.get("journal", 0) + 1
                bar.update(1)
            elif isinstance(event, ev.FragmentRetried):
                counts["retried"] += 1
            elif isinstance(event, ev.JobFinished):
                self._finish(event, bar)
                return
            else:
                return
            bar.set_postfix(counts, refresh=False)

    def _start(self, event: ev.JobStarted) -> None:
        tqdm = _tqdm_class()

        class Bar(tqdm):  # type: ignore[valid-type,misc]
            # tqdm's monitor thread would outlive the Golem; the bar is refreshed on
            # every update anyway. A subclass leaves tqdm's global setting alone.
            monitor_interval = 0

        with self._lock:
            self._bars[event.job_id] = Bar(total=event.total, desc=f"{event.kind} #{event.job_id}",
                                            unit="frag", file=self._file or sys.stderr, leave=True)
            self._counts[event.job_id] = {"done": 0, "failed": 0, "retried": 0}

    def _finish(self, event: ev.JobFinished, bar: Any) -> None:
        bar.close()
        del self._bars[event.job_id]
        del self._counts[event.job_id]
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
