"""The entry object: ``Golem`` runs workers on providers, in both the golem-js style
(``run``/``map``/``for_each``/``before_each``) and the yapapi style (``execute_tasks``)."""

from __future__ import annotations

import contextlib
import logging
import inspect
import os
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Tuple, Union

from . import _driver
from . import events as ev
from ._job import Job
from ._pool import Pool
from ._results import FragmentResult, JobRun
from . import journal as _journal  # journal hook (beyond11)
from .journal import JournalPath, KeyFunction  # journal hook (beyond11)
from .report import Recorder, Report  # report hook (beyond11)
from .errors import BatchCancelled, ConfigurationError
from .policy import INFRASTRUCTURE_ERRORS, RetryOn, RetryPolicy
from .providers.base import Provider
from .task import Task

logger = logging.getLogger(__name__)


def _positive(name: str, value: Optional[float]) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigurationError(f"{name} must be a positive number of seconds or None, got {value!r}")
    return float(value)


PROVIDER_NAMES = ("local", "golem", "fake")


def _resolve_provider(provider: Union[Provider, str, None], image: Optional[str],
                      options: Dict[str, Any]) -> "tuple[Provider, bool]":
    """The provider to use, and whether this Golem created it (and so must close it).
    The environment is read here, when a Golem is built, never at import."""
    if isinstance(provider, Provider):
        if options:
            raise ConfigurationError("provider_options only apply to a provider given by name; "
                                     "configure the Provider instance itself")
        return provider, False
    name = provider if provider is not None else os.environ.get("GOLEM_TASKS_PROVIDER", "local")
    if name not in PROVIDER_NAMES:
        raise ConfigurationError(f"unknown provider {name!r}: pass one of {', '.join(PROVIDER_NAMES)} "
                                 f"(or set GOLEM_TASKS_PROVIDER), or a Provider instance")
    if name == "local":
        from .providers.local import LocalProvider
        _check_options(LocalProvider, name, options)
        options.setdefault("sandbox", os.environ.get("GOLEM_TASKS_SANDBOX") or None)
        if image:
            logger.debug("the local provider runs on this machine; image %s is not used", image)
        return LocalProvider(**options), True
    if name == "golem":
        from .providers.yagna import GolemProvider
        _check_options(GolemProvider, name, options)
        if image:
            options["image_tag" if ":" in image else "image_hash"] = image
        return GolemProvider.from_env(**options), True
    from .testing import FakeProvider
    _check_options(FakeProvider, name, options)
    return FakeProvider(**options), True


def _check_options(cls: type, name: str, options: Dict[str, Any]) -> None:
    """Refuse options the provider does not take. Checked against the signature, not by
    catching TypeError from the constructor, which would hide the provider's own bugs."""
    try:
        inspect.signature(cls).bind_partial(**options)
    except TypeError as exc:
        accepted = ", ".join(p for p in inspect.signature(cls).parameters if p not in ("self", "args", "kwargs"))
        raise ConfigurationError(f"provider_options do not fit the {name} provider: {exc}; "
                                 f"it takes {accepted}") from None


class Golem:
    """Runs generator workers on up to ``max_workers`` engaged providers.

    Usage::

        from golem_tasks import Golem

        def worker(ctx, n):
            results = yield ctx.run("/bin/sh", "-c", f"echo $(({n} * {n}))")
            return int(results[0].stdout)

        with Golem(max_workers=4) as golem:
            print(list(golem.map(worker, range(10))))

    Args:
        provider: a :class:`Provider`, or a name: ``"local"`` (the default; this
            machine), ``"golem"`` (the Golem Network through the yagna daemon, configured
            by ``YAGNA_APPKEY``/``YAGNA_API_URL``) or ``"fake"``. The environment variable
            ``GOLEM_TASKS_PROVIDER`` picks the name when none is given, so one script runs
            either way; ``GOLEM_TASKS_SANDBOX=host`` or ``bwrap`` forces the local sandbox.
            A provider passed in is not closed by the Golem; one it built is.
        image: the VM image for the Golem provider, a tag (``golem/alpine:latest``) or a
            hash; the local provider ignores it (it runs on this machine).
        provider_options: keyword arguments for the provider built from a name (e.g.
            ``{"budget": "2", "mainnet": False}`` for Golem, ``{"network": True}`` for local).
        max_workers: most providers engaged at once; the provider's default otherwise
            (the CPU count for the local provider).
        max_retries: attempts after the first before a fragment is reported failed.
        retry_on: which exceptions are retried; the infrastructure's by default, so a bug
            in the worker's own code fails its fragment at once.
        retry_wait: a tenacity wait strategy for the pause before each retry.
        provider_failure_limit: consecutive failures after which a provider is released
            and not engaged again in this run (0 = never).
        initializer: a generator function ``init(ctx)`` run exactly once on each engaged
            provider before its first fragment (golem-js ``before_each``). If it fails,
            that provider is released and replaced; no fragment is charged.
        batch_timeout: default seconds one batch may take.
        fragment_timeout: default seconds one fragment attempt may take.
        timeout: default seconds a whole ``map``/``execute_tasks``/... call may take;
            past it the call raises ``JobTimeoutError``.
        window: most fragments in flight per call (input is read lazily); default
            ``4 * max_workers``, at least 16.
        progress: show a progress bar; None (default) shows one in a terminal or notebook.
        events: an event consumer or a list of them (see :mod:`golem_tasks.events`).
    """

    def __init__(self, provider: Union[Provider, str, None] = None, *, image: Optional[str] = None,
                 provider_options: Optional[Dict[str, Any]] = None, max_workers: Optional[int] = None,
                 max_retries: int = 3, retry_on: RetryOn = INFRASTRUCTURE_ERRORS, retry_wait: Any = None,
                 provider_failure_limit: int = 3, initializer: Optional[Callable[..., Any]] = None,
                 batch_timeout: Optional[float] = None, fragment_timeout: Optional[float] = None,
                 timeout: Optional[float] = None, window: Optional[int] = None,
                 progress: Optional[bool] = None,
                 events: Union[ev.Consumer, Iterable[ev.Consumer], None] = None) -> None:
        if max_workers is not None and (isinstance(max_workers, bool) or not isinstance(max_workers, int)
                                        or max_workers < 1):
            raise ConfigurationError(f"max_workers must be a whole number >= 1, got {max_workers!r}")
        if window is not None and (not isinstance(window, int) or window < 1):
            raise ConfigurationError(f"window must be a whole number >= 1, got {window!r}")
        if initializer is not None:
            _driver.check_worker(initializer, "initializer")
        policy_args: Dict[str, Any] = dict(max_retries=max_retries, retry_on=retry_on,
                                           provider_failure_limit=provider_failure_limit)
        if retry_wait is not None:
            policy_args["wait"] = retry_wait
        self.policy = RetryPolicy(**policy_args)
        self.batch_timeout = _positive("batch_timeout", batch_timeout)
        self.fragment_timeout = _positive("fragment_timeout", fragment_timeout)
        self.timeout = _positive("timeout", timeout)
        self.provider, self._owns_provider = _resolve_provider(provider, image, dict(provider_options or {}))
        self.max_workers = max_workers or max(1, int(self.provider.default_max_workers))
        self.window = window or max(16, 4 * self.max_workers)
        self._events = ev.Emitter()
        self._install_consumers(events, progress)
        self._recorder = Recorder()  # report hook (beyond11)
        self._events.add(self._recorder, kinds=Recorder.kinds)  # report hook (beyond11)
        # A backend that reports its own events (offers, agreements, payments, costs)
        # hands them to the same consumers as the scheduler's.
        add_consumer = getattr(self.provider, "add_event_consumer", None)
        if callable(add_consumer):
            add_consumer(self._events.emit)
        # provider record hook (beyond11): a backend that keeps a record of its providers
        # (the Golem provider's provider_record=) learns from the scheduler's fragment events.
        record = getattr(self.provider, "provider_record", None)
        if record is not None:
            self._events.add(record, kinds=record.kinds)
        self._pool = Pool(self.provider, max_workers=self.max_workers, policy=self.policy,
                          initializer=initializer, batch_timeout=self.batch_timeout, emitter=self._events)
        self._submit_job: Optional[Job] = None
        self._lock = threading.Lock()
        self._shutdown = False

    def _install_consumers(self, events: Any, progress: Optional[bool]) -> None:
        from .progress import ProgressBar, SummaryLogger, progress_wanted
        self._events.add(SummaryLogger(), kinds=(ev.JobFinished, ev.CostsSettled))
        if progress_wanted(progress):
            self._events.add(ProgressBar(), kinds=(ev.JobEvent, ev.CostsSettled))
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
        if self._pool.engaged:
            raise RuntimeError("before_each() must be called before any provider is engaged")
        self._pool.runner.initializer = initializer
        return initializer

    # ------------------------------------------------------------------ work
    def submit(self, worker: Callable[..., Any], *args: Any) -> "Future[Any]":
        """Run ``worker(ctx, *args)`` on a provider; returns a ``concurrent.futures.Future``."""
        self._check_open()
        _driver.check_worker(worker)
        if self._pool.broken is not None:
            raise self._pool.broken  # like BrokenThreadPool from ThreadPoolExecutor.submit
        with self._lock:
            if self._submit_job is None:
                self._submit_job = self._new_job("submit", worker, None, None)
            job = self._submit_job
        fragment = job.new_fragment(args)
        # One job serves every submit(); each fragment carries its own worker.
        fragment.args = (_Bound(worker, args),)
        self._pool.submit(fragment)
        return fragment.future

    def run(self, worker: Callable[..., Any], *args: Any, timeout: Optional[float] = None) -> Any:
        """Run one fragment, ``worker(ctx, *args)``, and return its result (golem-js ``run``)."""
        _driver.check_worker(worker)
        for value in self._iterate("run", _call_with_args(worker), [args], ordered=True,
                                   return_exceptions=False, timeout=timeout, max_workers=1, checked=True):
            return value
        raise AssertionError("run() produced no result")  # pragma: no cover

    def map(self, worker: Callable[..., Any], data: Iterable[Any], *, return_exceptions: bool = False,
            timeout: Optional[float] = None, max_workers: Optional[int] = None,
            fragment_timeout: Optional[float] = None, journal: Optional[JournalPath] = None,
            key: Optional[KeyFunction] = None) -> Iterator[Any]:
        """Run ``worker(ctx, item)`` for every item; yield results lazily in input order.

        A failed fragment raises at its position (``FragmentFailed`` after retries, or
        the worker's own exception), and the rest of the job is cancelled; with
        ``return_exceptions=True`` the exception is yielded in its place instead.
        Leaving the loop early cancels the unfinished fragments and kills their commands.

        ``journal=PATH`` records each result in an SQLite file as its fragment finishes;
        the same job run again yields the recorded results without running them and
        runs only the rest (items matched by index and checked by hash, or by
        ``key=item -> id``). See :mod:`golem_tasks.journal`.
        """
        return self._iterate("map", worker, data, ordered=True, return_exceptions=return_exceptions,
                             timeout=timeout, max_workers=max_workers, fragment_timeout=fragment_timeout,
                             journal=journal, key=key)

    def as_completed(self, worker: Callable[..., Any], data: Iterable[Any], *,
                     return_exceptions: bool = False, timeout: Optional[float] = None,
                     max_workers: Optional[int] = None,
                     fragment_timeout: Optional[float] = None, journal: Optional[JournalPath] = None,
                     key: Optional[KeyFunction] = None) -> Iterator[FragmentResult]:
        """Like :meth:`map`, but yield :class:`FragmentResult` ``(index, item, value)`` as
        fragments finish (with ``journal=``, recorded ones as soon as they are read)."""
        return self._iterate("as_completed", worker, data, ordered=False, return_exceptions=return_exceptions,
                             timeout=timeout, max_workers=max_workers, fragment_timeout=fragment_timeout,
                             journal=journal, key=key)

    def for_each(self, worker: Callable[..., Any], data: Iterable[Any], *, timeout: Optional[float] = None,
                 max_workers: Optional[int] = None, fragment_timeout: Optional[float] = None,
                 journal: Optional[JournalPath] = None, key: Optional[KeyFunction] = None) -> None:
        """Run ``worker(ctx, item)`` for every item, for its side effects. Raises the first
        failure (and cancels the rest). With ``journal=``, items done before are skipped."""
        for _ in self.as_completed(worker, data, timeout=timeout, max_workers=max_workers,
                                   fragment_timeout=fragment_timeout, journal=journal, key=key):
            pass

    def execute_tasks(self, worker: Callable[..., Any], data: Iterable[Any], max_workers: Optional[int] = None,
                      timeout: Optional[float] = None, *, return_exceptions: bool = False,
                      fragment_timeout: Optional[float] = None, journal: Optional[JournalPath] = None,
                      key: Optional[KeyFunction] = None) -> Iterator[Task]:
        """yapapi style: ``worker(ctx, tasks)`` iterates ``tasks`` on one provider, yields
        batches, and calls ``task.accept_result(value)`` or ``task.reject_result(reason,
        retry=...)``. Yields each accepted :class:`Task` as it completes. A task that
        fails for good raises (``TaskRejected``, ``FragmentFailed``), or with
        ``return_exceptions=True`` is yielded with ``task.exception`` set.

        ``data`` holds :class:`Task` objects or plain items (wrapped in Tasks). With
        ``journal=``, tasks accepted before are yielded accepted without running (keyed
        by ``task.data``).
        """
        return self._iterate("execute_tasks", worker, data, ordered=False, return_exceptions=return_exceptions,
                             timeout=timeout, max_workers=max_workers, fragment_timeout=fragment_timeout,
                             stream=True, journal=journal, key=key)

    def _iterate(self, kind: str, worker: Callable[..., Any], data: Iterable[Any], *, ordered: bool,
                 return_exceptions: bool, timeout: Optional[float], max_workers: Optional[int],
                 fragment_timeout: Optional[float] = None, stream: bool = False,
                 checked: bool = False, journal: Optional[JournalPath] = None,
                 key: Optional[KeyFunction] = None) -> Iterator[Any]:
        # Checked here, eagerly, so bad input fails at the call, before anything runs.
        self._check_open()
        if not checked:
            _driver.check_worker(worker)
        iter(data)  # raises TypeError now for a non-iterable
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise ConfigurationError(f"max_workers must be a whole number >= 1, got {max_workers!r}")
        timeout = _positive("timeout", timeout) if timeout is not None else self.timeout
        fragment_timeout = _positive("fragment_timeout", fragment_timeout) or self.fragment_timeout
        total = len(data) if hasattr(data, "__len__") else None  # type: ignore[arg-type]
        _journal.check(journal, worker, kind, key)  # journal hook (beyond11): a wrong journal fails here
        return self._results(kind, worker, data, ordered, return_exceptions, timeout,
                             max_workers, fragment_timeout, stream, total, journal, key)

    def _results(self, kind: str, worker: Callable[..., Any], data: Iterable[Any], ordered: bool,
                 return_exceptions: bool, timeout: Optional[float], max_workers: Optional[int],
                 fragment_timeout: Optional[float], stream: bool, total: Optional[int],
                 journal: Optional[JournalPath] = None, key: Optional[KeyFunction] = None) -> Iterator[Any]:
        job = self._new_job(kind, worker, max_workers, fragment_timeout, stream=stream)
        if self._events.wants(ev.JobStarted):
            self._events.emit(ev.JobStarted(job_id=job.id, kind=kind, total=total))
        window = self.window if not stream else max(self.window, 2 * job.limit)
        run = JobRun(self, job, data, timeout=timeout, window=window)
        run.journal = _journal.open_run(journal, worker, kind, key)  # journal hook (beyond11)
        try:
            yield from self._deliver(run, ordered, stream, return_exceptions)
        finally:
            if run.journal is not None:  # journal hook (beyond11)
                run.journal.close()

    def _deliver(self, run: JobRun, ordered: bool, stream: bool, return_exceptions: bool) -> Iterator[Any]:
        if ordered:
            yield from run.ordered(return_exceptions)
        elif stream:
            for fragment in run.completed(return_exceptions):
                task = fragment.task
                error = fragment.future.exception()
                if error is not None and task.exception is None:
                    task._failed(error)  # failed without reaching the runner (pool broken, cancelled)
                yield task
        else:
            for fragment in run.completed(return_exceptions):
                value = fragment.future.exception() or fragment.future.result()
                yield FragmentResult(fragment.index, fragment.item, value)

    def _new_job(self, kind: str, worker: Callable[..., Any], max_workers: Optional[int],
                 fragment_timeout: Optional[float], stream: bool = False) -> Job:
        limit = min(max_workers or self.max_workers, self.max_workers)
        if kind == "submit":
            worker = _run_bound
        return Job(kind, worker, limit=limit, fragment_timeout=fragment_timeout or self.fragment_timeout,
                   stream=stream)

    @contextlib.contextmanager
    def _job_scope(self, job: Job) -> Iterator[None]:
        """Ends a job however its iteration ends: a result, an error, ``break``
        (GeneratorExit), Ctrl-C. Unfinished work is cancelled and providers released."""
        error: Optional[BaseException] = None
        try:
            yield
        except BaseException as exc:
            error = exc
            raise
        finally:
            with self._pool._lock:
                unfinished = job.queued > 0 or job.done + job.failed < job.submitted
            if unfinished or job.cancelled:
                reason = "the caller stopped iterating" if error is None or isinstance(error, GeneratorExit) \
                    else f"{type(error).__name__}"
                self._pool.abort(job, BatchCancelled(f"the job was cancelled: {reason}"))
            if self._events.wants(ev.JobFinished):
                failure = None if error is None or isinstance(error, GeneratorExit) else \
                    f"{type(error).__name__}: {error}".splitlines()[0]
                self._events.emit(ev.JobFinished(
                    job_id=job.id, done=job.done, failed=job.failed, retried=job.retried,
                    elapsed=time.monotonic() - job.started, providers=job.summary(),
                    error=failure))

    def report(self) -> Report:  # report hook (beyond11)
        """What happened: one row per fragment of this Golem's jobs (provider, attempts
        and their causes, start, end, cost share), with ``to_csv``, ``to_pandas`` and a
        ``timeline()`` picture. See :mod:`golem_tasks.report`."""
        return self._recorder.report()

    # ---------------------------------------------------------------- lifecycle
    def _check_open(self) -> None:
        if self._shutdown:
            raise RuntimeError("this Golem was shut down; create a new one")

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work and release every provider. Safe to call more than once.

        Args:
            wait: wait for submitted work to finish (unless cancelled) and for every
                provider to be released and every thread to end.
            cancel_futures: drop queued work and kill running commands first.
        """
        with self._lock:
            first = not self._shutdown
            self._shutdown = True
        self._pool.close(cancel=cancel_futures, wait=wait)
        if first and self._owns_provider:
            self.provider.close()

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


class _Bound:
    """A submit()ted worker with its arguments, carried as the fragment's one argument."""

    __slots__ = ("worker", "args")

    def __init__(self, worker: Callable[..., Any], args: tuple) -> None:
        self.worker, self.args = worker, args


def _run_bound(ctx: Any, bound: _Bound) -> Any:
    return bound.worker(ctx, *bound.args)


def _call_with_args(worker: Callable[..., Any]) -> Callable[..., Any]:
    def call(ctx: Any, args: tuple) -> Any:
        return worker(ctx, *args)
    call.__qualname__ = _driver.worker_name(worker)
    return call
