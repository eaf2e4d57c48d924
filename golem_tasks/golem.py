"""The entry object: ``Golem`` runs workers on providers, in both the golem-js style
(``run``/``map``/``for_each``/``before_each``) and the yapapi style (``execute_tasks``).

A thin facade: it checks arguments, builds a job and hands it to the scheduler
(:mod:`golem_tasks._scheduler`); it holds no scheduling state of its own.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import reprlib
import threading
from concurrent.futures import Future
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Tuple, Union

from . import _driver, _signals
from . import events as ev
from ._scheduler.job import Job
from ._scheduler.pool import Pool
from ._scheduler.run import FragmentResult, JobRun
from ._scheduler.speculation import Speculation, speculation_of
from . import journal as _journal
from .journal import JournalPath, KeyFunction
from .report import Recorder, Report
from .errors import BrokenPool, ConfigurationError
from .policy import INFRASTRUCTURE_ERRORS, RetryOn, RetryPolicy
from .providers import from_name, providers_taking, the_providers
from .providers.base import Provider
from .task import Task

_UNSET: Any = object()


def _refuse_unknown_keywords(cls: type, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> None:
    """Raise ConfigurationError for a keyword ``cls()`` does not take, saying where it
    belongs: a provider's option goes in ``provider_options``; a near-miss is named."""
    taken = [p for p in inspect.signature(getattr(cls, "__init__")).parameters if p != "self"]
    for name in kwargs:
        if name in taken:
            continue
        owners = providers_taking(name)
        if owners:
            # The provider asked for when it takes the option, else the default (local) or the golem one.
            asked = kwargs.get("provider", args[0] if args else None)
            if asked is not None and not isinstance(asked, str):
                raise ConfigurationError(f"Golem() takes no {name}=: it is an option of {the_providers(owners)}; "
                                         f"give it to the provider instance you pass")
            chosen = asked if asked in owners else "local" if "local" in owners and asked is None else owners[0]
            provider = "" if chosen == "local" and asked is None else f'provider="{chosen}", '
            raise ConfigurationError(
                f"Golem() takes no {name}=: it is an option of {the_providers(owners)}; pass "
                f"Golem({provider}provider_options={{{name!r}: {reprlib.repr(kwargs[name])}}})")
        close = difflib.get_close_matches(name, taken, n=1)
        hint = f"did you mean {close[0]}=?" if close else f"it takes {', '.join(taken)}"
        raise ConfigurationError(f"Golem() takes no {name}=: {hint}")


def _seconds(name: str, value: Optional[float]) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigurationError(f"{name} must be a positive number of seconds or None, got {value!r}")
    return float(value)


def _count(name: str, value: Optional[int]) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a whole number >= 1, got {value!r}")
    return value


class Golem:
    """Runs generator workers on up to ``max_workers`` engaged providers.

    Usage::

        from golem_tasks import Golem

        def worker(ctx, n):
            results = yield ctx.run("/bin/sh", "-c", f"echo $(({n} * {n}))")
            return int(results[0].stdout)

        with Golem(max_workers=4) as golem:
            print(list(golem.map(worker, range(10))))

    Like ``concurrent.futures.Executor``, leaving the ``with`` block waits for submitted
    work; leaving it on an exception (Ctrl-C included) cancels the work and kills the
    running commands instead. Do not shut a Golem down from inside its own worker or
    event consumer.

    Args:
        provider: a :class:`Provider`, or a name: ``"local"`` (the default; this
            machine), ``"golem"`` (the Golem Network through the yagna daemon, configured
            by ``YAGNA_APPKEY``/``YAGNA_API_URL``) or ``"fake"``. The environment variable
            ``GOLEM_TASKS_PROVIDER`` picks the name when none is given, so one script runs
            either way; ``GOLEM_TASKS_SANDBOX=host`` or ``bwrap`` forces the local sandbox.
            A provider passed in is not closed by the Golem; one it built is.
        image: the VM image for the Golem provider, a tag (``golem/alpine:latest``) or a
            hash.
        provider_options: keyword arguments for the provider built from a name (e.g.
            ``{"budget": "2", "mainnet": False}`` for Golem, ``{"network": True}`` for local).
        max_workers: most providers engaged at once; the provider's default otherwise
            (the CPU count for the local provider).
        max_retries: attempts after the first before a fragment is reported failed.
        retry_on: which exceptions are retried; the infrastructure's by default, so a bug
            in the worker's own code fails its fragment at once.
        retry_wait: seconds, or a tenacity wait strategy, for the pause before each retry.
        provider_failure_limit: consecutive failures after which a provider is released
            and not engaged again in this run (0 = never).
        initializer: a generator function ``init(ctx)`` run exactly once on each engaged
            provider before its first fragment (golem-js ``before_each``). If it fails,
            that provider is released and replaced; no fragment is charged.
        finalizer: a generator function ``fin(ctx)`` run once on each provider that is
            still alive before it is released (golem-js ``teardown``); its failure is
            logged, never retried.
        batch_timeout: default seconds one batch may take.
        fragment_timeout: default seconds one fragment attempt may take; past it the
            worker generator is closed, its command killed, and the fragment retried.
        timeout: default seconds a whole ``map``/``execute_tasks``/... call may take;
            past it the call raises ``JobTimeoutError``.
        window: most unfinished fragments per call (input is read lazily); default
            ``4 * max_workers``, at least 16.
        speculate: start a backup copy of a straggling fragment on an idle provider;
            the first copy to finish wins and the other is cancelled. ``True`` uses
            Spark's defaults, a :class:`Speculation` sets them. Speculated workers
            must be idempotent: they may run twice. Not for ``execute_tasks``.
        report: keep what each fragment did for :meth:`report` (a few microseconds per
            fragment; False for the last bit of dispatch speed).
        provider_record: the Golem provider's record of how providers did in earlier
            runs (:mod:`golem_tasks.provider_record`): on by default (a file in the user's
            cache directory), a path, or False. Only the Golem provider built by name
            keeps one; configure a ``GolemProvider`` instance itself.
        progress: show a progress bar; None (default) shows one in a terminal or notebook.
        events: an event consumer or a list of them (see :mod:`golem_tasks.events`).
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> "Golem":
        # Python's own "unexpected keyword argument" names neither the fix nor where the
        # option goes, and users arriving from yapapi write Golem(budget=...) first.
        _refuse_unknown_keywords(cls, args, kwargs)
        return super().__new__(cls)

    def __init__(self, provider: Union[Provider, str, None] = None, *, image: Optional[str] = None,
                 provider_options: Optional[Dict[str, Any]] = None, max_workers: Optional[int] = None,
                 max_retries: int = 3, retry_on: RetryOn = INFRASTRUCTURE_ERRORS, retry_wait: Any = _UNSET,
                 provider_failure_limit: int = 3, initializer: Optional[Callable[..., Any]] = None,
                 finalizer: Optional[Callable[..., Any]] = None,
                 batch_timeout: Optional[float] = None, fragment_timeout: Optional[float] = None,
                 timeout: Optional[float] = None, window: Optional[int] = None,
                 speculate: Union[bool, Speculation] = False, report: bool = True,
                 provider_record: Any = _UNSET,
                 progress: Optional[bool] = None,
                 events: Union[ev.Consumer, Iterable[ev.Consumer], None] = None) -> None:
        # Everything is checked before the provider is built: a mistake costs nothing.
        _count("max_workers", max_workers)
        _count("window", window)
        if initializer is not None:
            _driver.check_worker(initializer, "initializer")
        if finalizer is not None:
            _driver.check_worker(finalizer, "finalizer")
        policy_args: Dict[str, Any] = dict(max_retries=max_retries, retry_on=retry_on,
                                           provider_failure_limit=provider_failure_limit)
        if retry_wait is not _UNSET:
            policy_args["wait"] = retry_wait
        self.policy = RetryPolicy(**policy_args)
        self.batch_timeout = _seconds("batch_timeout", batch_timeout)
        self.fragment_timeout = _seconds("fragment_timeout", fragment_timeout)
        self.timeout = _seconds("timeout", timeout)
        self.speculation = speculation_of(speculate)
        golem_options = {} if provider_record is _UNSET else {"provider_record": provider_record}
        self.provider, owned = from_name(provider, image, provider_options, golem_options=golem_options)
        self.max_workers = max_workers or max(1, int(self.provider.default_max_workers))
        self.window = window or max(16, 4 * self.max_workers)
        self._events = ev.Emitter()
        self._install_consumers(events, progress)
        self._recorder: Optional[Recorder] = None
        if report:
            self._recorder = Recorder()
            self._events.add(self._recorder, kinds=Recorder.kinds)
        # A backend that reports its own events (offers, agreements, payments, costs)
        # hands them to the same consumers as the scheduler's.
        add_consumer = getattr(self.provider, "add_event_consumer", None)
        if callable(add_consumer):
            add_consumer(self._events.emit)
        # A backend that keeps a record of its providers (the Golem provider's
        # provider_record=) learns from the scheduler's fragment events.
        record = getattr(self.provider, "provider_record", None)
        if record is not None:
            self._events.add(record, kinds=record.kinds)
        # spend guard hook (spend11): a backend that projects its costs (the Golem
        # provider's job_pace) learns the jobs' pace from the same fragment events.
        pace = getattr(self.provider, "job_pace", None)
        if pace is not None:
            self._events.add(pace, kinds=pace.kinds)
        self._pool = Pool(self.provider, max_workers=self.max_workers, policy=self.policy,
                          initializer=initializer, finalizer=finalizer, batch_timeout=self.batch_timeout,
                          emitter=self._events, close_provider=owned)
        self._submit_job: Optional[Job] = None
        self._lock = threading.Lock()
        self._shutdown = False
        _signals.track(self)  # shut down at interpreter exit if still open

    def _install_consumers(self, events: Any, progress: Optional[bool]) -> None:
        from .progress import ProgressBar, SummaryLogger, progress_wanted
        self._events.add(SummaryLogger(), kinds=(ev.JobFinished, ev.CostsSettled))
        if progress_wanted(progress):
            # ProviderSearch: what the market shows while nothing is engaged, as the bar's postfix;
            # SpendUpdated: spent / projected / budget, live
            self._events.add(ProgressBar(), kinds=(ev.JobEvent, ev.CostsSettled, ev.ProviderSearch,
                                                   ev.SpendUpdated))
        if events is None:
            return
        for consumer in ([events] if callable(events) else list(events)):
            self._events.add(consumer)

    # ------------------------------------------------------------ configuration
    def add_event_consumer(self, consumer: ev.Consumer, kinds: Tuple[type, ...] = (ev.Event,)) -> None:
        """Call ``consumer(event)`` for every event of the classes ``kinds`` from now on.

        Events nobody takes are never made: ``kinds=(CommandOutput,)`` watches live
        output without paying for fragment events, and the reverse."""
        self._events.add(consumer, tuple(kinds))

    def before_each(self, initializer: Callable[..., Any]) -> Callable[..., Any]:
        """Set the per-provider initializer (golem-js style); usable as a decorator.
        Providers engaged before this call are not initialised retroactively, so call
        it before submitting work."""
        _driver.check_worker(initializer, "initializer")
        self._pool.set_initializer(initializer)
        return initializer

    # ------------------------------------------------------------------ work
    def submit(self, worker: Callable[..., Any], /, *args: Any, **kwargs: Any) -> "Future[Any]":
        """Run ``worker(ctx, *args, **kwargs)`` on a provider; returns a
        ``concurrent.futures.Future`` (``Executor.submit`` style)."""
        self._check_open()
        _driver.check_worker(worker)
        broken = self._pool.broken
        if broken is not None:
            # A new instance each time, like BrokenThreadPool, so tracebacks do not pile up.
            raise BrokenPool(str(broken)) from broken.__cause__
        with self._lock:
            if self._submit_job is None:
                self._submit_job = Job("submit", _run_bound, limit=self.max_workers,
                                       fragment_timeout=self.fragment_timeout, collect=False,
                                       speculation=self.speculation)
            job = self._submit_job
        fragment = job.new_fragment((_Bound(worker, args, kwargs),))
        self._pool.submit(fragment)
        return fragment.future

    def run(self, worker: Callable[..., Any], /, *args: Any, timeout: Optional[float] = None,
            **kwargs: Any) -> Any:
        """Run one fragment, ``worker(ctx, *args, **kwargs)``, and return its result
        (golem-js ``run``). ``timeout`` is the job timeout, not passed to the worker."""
        _driver.check_worker(worker)
        run = self._job_run("run", worker, [(args, kwargs)], timeout=timeout, max_workers=1,
                            fragment_timeout=None, args_of=_as_call)
        for value in run.ordered(return_exceptions=False):
            return value
        raise AssertionError("run() produced no result")  # pragma: no cover

    def map(self, worker: Callable[..., Any], data: Iterable[Any], *, return_exceptions: bool = False,
            timeout: Optional[float] = None, max_workers: Optional[int] = None,
            fragment_timeout: Optional[float] = None, speculate: Union[bool, Speculation, None] = None,
            journal: Optional[JournalPath] = None, key: Optional[KeyFunction] = None,
            total: Optional[int] = None) -> Iterator[Any]:
        """Run ``worker(ctx, item)`` for every item; yield results lazily in input order.

        A failed fragment raises at its position (``FragmentFailed`` after retries, or
        the worker's own exception), and the rest of the job is cancelled; with
        ``return_exceptions=True`` the exception is yielded in its place instead.
        Leaving the loop early cancels the unfinished fragments and kills their commands.
        ``speculate`` overrides the Golem's setting for this call.

        ``journal=PATH`` records each result in an SQLite file as its fragment finishes;
        the same job run again yields the recorded results without running them and
        runs only the rest (items matched by index and checked by hash, or by
        ``key=item -> id``). See :mod:`golem_tasks.journal`.

        ``total`` tells the progress bar how many items a generator input holds.
        """
        _driver.check_worker(worker)
        run = self._job_run("map", worker, data, timeout=timeout, max_workers=max_workers,
                            fragment_timeout=fragment_timeout, speculate=speculate, journal=journal, key=key,
                            total=total)
        return run.ordered(return_exceptions)

    def as_completed(self, worker: Callable[..., Any], data: Iterable[Any], *,
                     return_exceptions: bool = False, timeout: Optional[float] = None,
                     max_workers: Optional[int] = None, fragment_timeout: Optional[float] = None,
                     speculate: Union[bool, Speculation, None] = None, journal: Optional[JournalPath] = None,
                     key: Optional[KeyFunction] = None, total: Optional[int] = None) -> Iterator[FragmentResult]:
        """Like :meth:`map`, but yield :class:`FragmentResult` ``(index, item, value)`` as
        fragments finish (with ``journal=``, recorded ones as soon as they are read)."""
        _driver.check_worker(worker)
        run = self._job_run("as_completed", worker, data, timeout=timeout, max_workers=max_workers,
                            fragment_timeout=fragment_timeout, speculate=speculate, journal=journal, key=key,
                            total=total)
        return run.completed(return_exceptions)

    def for_each(self, worker: Callable[..., Any], data: Iterable[Any], *, timeout: Optional[float] = None,
                 max_workers: Optional[int] = None, fragment_timeout: Optional[float] = None,
                 speculate: Union[bool, Speculation, None] = None, journal: Optional[JournalPath] = None,
                 key: Optional[KeyFunction] = None, total: Optional[int] = None) -> None:
        """Run ``worker(ctx, item)`` for every item, for its side effects. Raises the first
        failure (and cancels the rest). With ``journal=``, items done before are skipped."""
        for _ in self.as_completed(worker, data, timeout=timeout, max_workers=max_workers,
                                   fragment_timeout=fragment_timeout, speculate=speculate, journal=journal,
                                   key=key, total=total):
            pass

    def execute_tasks(self, worker: Callable[..., Any], data: Iterable[Any], max_workers: Optional[int] = None,
                      timeout: Optional[float] = None, *, return_exceptions: bool = False,
                      fragment_timeout: Optional[float] = None, journal: Optional[JournalPath] = None,
                      key: Optional[KeyFunction] = None, total: Optional[int] = None) -> Iterator[Task]:
        """yapapi style: ``worker(ctx, tasks)`` iterates ``tasks`` on one provider, yields
        batches, and calls ``task.accept_result(value)`` or ``task.reject_result(reason,
        retry=...)``. Yields each accepted :class:`Task` as it completes. A task that
        fails for good raises (``TaskRejected``, ``FragmentFailed``), or with
        ``return_exceptions=True`` is yielded with ``task.exception`` set.

        ``data`` holds :class:`Task` objects or plain items (wrapped in Tasks). With
        ``journal=``, tasks accepted before are yielded accepted without running (keyed
        by ``task.data``).
        """
        _driver.check_worker(worker)
        run = self._job_run("execute_tasks", worker, data, timeout=timeout, max_workers=max_workers,
                            fragment_timeout=fragment_timeout, stream=True, journal=journal, key=key, total=total)
        return run.tasks(return_exceptions)

    def _job_run(self, kind: str, worker: Callable[..., Any], data: Iterable[Any], *, timeout: Optional[float],
                 max_workers: Optional[int], fragment_timeout: Optional[float], stream: bool = False,
                 args_of: Any = None, speculate: Union[bool, Speculation, None] = None,
                 journal: Optional[JournalPath] = None, key: Optional[KeyFunction] = None,
                 total: Optional[int] = None) -> JobRun:
        # Checked here, eagerly, so bad input fails at the call, before anything runs.
        self._check_open()
        iter(data)  # raises TypeError now for a non-iterable
        _count("max_workers", max_workers)
        if max_workers is not None and max_workers > self.max_workers:
            raise ConfigurationError(
                f"{kind}(max_workers={max_workers}) is more than this Golem's max_workers={self.max_workers}: "
                f"pass at most {self.max_workers} here, or create the Golem with max_workers={max_workers}")
        timeout = _seconds("timeout", timeout) if timeout is not None else self.timeout
        fragment_timeout = _seconds("fragment_timeout", fragment_timeout) or self.fragment_timeout
        limit = max_workers or self.max_workers
        speculation = self.speculation if speculate is None else speculation_of(speculate)
        _journal.check(journal, worker, kind, key)  # a journal of another job fails here, at the call
        job = Job(kind, worker, limit=limit, fragment_timeout=fragment_timeout, stream=stream,
                  speculation=speculation)
        window = self.window if not stream else max(self.window, 2 * limit)
        if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
            raise ConfigurationError(f"total must be a whole number >= 0 (the items the input holds), got {total!r}")
        if total is None and hasattr(data, "__len__"):
            total = len(data)  # type: ignore[arg-type]
        extra: Dict[str, Any] = {} if args_of is None else {"args_of": args_of}
        if journal is not None:
            extra["journal"] = functools.partial(_journal.open_run, journal, worker, kind, key)
        return JobRun(self._pool, job, data, timeout=timeout, window=window, emitter=self._events, total=total,
                      **extra)

    def report(self) -> Report:
        """What happened: one row per fragment of this Golem's jobs (provider, attempts
        and their causes, start, end, cost share), with ``to_csv``, ``to_pandas`` and a
        ``timeline()`` picture. See :mod:`golem_tasks.report`.

        Raises:
            RuntimeError: the Golem was made with ``report=False``.
        """
        if self._recorder is None:
            raise RuntimeError("this Golem keeps no report: create it without report=False")
        return self._recorder.report()

    def scan(self, **options: Any) -> Any:
        """A market preflight: the offers this Golem's provider would take and those it
        would refuse (with the reason), engaging and spending nothing. Returns the
        backend's answer (``MarketScan`` on Golem, with ``estimate(fragments, seconds,
        providers)``), or None for a provider without a market (local, fake)."""
        return self.provider.scan(**options)

    # ---------------------------------------------------------------- lifecycle
    def _check_open(self) -> None:
        if self._shutdown:
            raise RuntimeError("this Golem was shut down; create a new one")

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work and release every provider. Safe to call more than once.

        Args:
            wait: block until submitted work has finished (unless cancelled), every
                provider is released and every thread has ended. With ``wait=False``
                the work goes on in the background and the providers are released
                (and a provider the Golem built is closed) when it is done.
            cancel_futures: drop queued work and kill running commands first.
        """
        with self._lock:
            self._shutdown = True
        self._pool.close(cancel=cancel_futures, wait=wait)

    def __enter__(self) -> "Golem":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        # Leaving on an error (Ctrl-C included) kills the work; a normal exit lets
        # submitted futures finish, like concurrent.futures.Executor.
        self.shutdown(wait=True, cancel_futures=exc_type is not None)

    @property
    def engaged(self) -> int:
        """How many providers are engaged right now."""
        return self._pool.engaged

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else ("broken" if self._pool.broken is not None else "open")
        return (f"<Golem provider={type(self.provider).__name__} max_workers={self.max_workers} "
                f"engaged={self.engaged} {state}>")


class _Bound:
    """A submit()ted worker with its arguments, carried as the fragment's one argument."""

    __slots__ = ("worker", "args", "kwargs")

    def __init__(self, worker: Callable[..., Any], args: tuple, kwargs: Dict[str, Any]) -> None:
        self.worker, self.args, self.kwargs = worker, args, kwargs

    def __repr__(self) -> str:
        return f"{_driver.worker_name(self.worker)}{self.args!r}"


def _run_bound(ctx: Any, bound: _Bound) -> Any:
    return bound.worker(ctx, *bound.args, **bound.kwargs)


def _as_call(item: Tuple[tuple, Dict[str, Any]]) -> Tuple[tuple, Dict[str, Any]]:
    return item
