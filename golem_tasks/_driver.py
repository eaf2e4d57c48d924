"""Runs one worker generator: sends batch results in, throws batch errors in.

Modelled on ``contextlib._GeneratorContextManager.__exit__``: an error thrown into the
generator that comes back out unchanged is the infrastructure's error (the worker did
not handle it); any other exception is the worker's own.
"""

from __future__ import annotations

import functools
import inspect
import logging
from typing import Any, Callable, Generator, List

from .batch import Batch
from .commands import CommandResult
from .errors import BatchCancelled, FragmentTimeoutError, GolemTasksError, WorkerError

logger = logging.getLogger(__name__)

Execute = Callable[[Batch], List[CommandResult]]

#: Generators that refused to close (they yield again after GeneratorExit). Kept alive
#: on purpose: collecting one would close it again and run its code once more, later and
#: far from its fragment (at interpreter exit a worker that loops on every exception
#: would spin there forever). Only a broken worker lands here.
_abandoned: List[Generator[Any, Any, Any]] = []


def _keep_forever(gen: Generator[Any, Any, Any]) -> None:
    """Never finalize ``gen``, not even at interpreter exit, when module globals such as
    :data:`_abandoned` are cleared: one reference more that nobody gives back (CPython),
    so the interpreter never runs the broken worker's code again."""
    _abandoned.append(gen)
    try:
        import ctypes

        ctypes.pythonapi.Py_IncRef(ctypes.py_object(gen))
    except (ImportError, AttributeError):  # not CPython: the list keeps it until exit
        pass


def worker_name(worker: Any) -> str:
    return getattr(worker, "__qualname__", None) or getattr(worker, "__name__", None) or repr(worker)


def check_worker(worker: Any, what: str = "worker") -> None:
    """Fail fast, before anything is engaged, for a worker that cannot work."""
    if not callable(worker):
        raise WorkerError(f"the {what} must be a generator function, got {worker!r}")
    target = worker
    while isinstance(target, functools.partial):
        target = target.func
    if (inspect.isfunction(target) or inspect.ismethod(target)) and not inspect.isgeneratorfunction(target):
        raise WorkerError(
            f"the {what} {worker_name(worker)}() is not a generator function: it must `yield` "
            f"a batch, e.g. `results = yield ctx.run('date')`, and `return` its result"
        )


def start(worker: Callable[..., Any], *args: Any) -> Generator[Any, Any, Any]:
    gen: Any = worker(*args)
    if not inspect.isgenerator(gen):
        raise WorkerError(
            f"{worker_name(worker)}() returned {type(gen).__name__}, not a generator: "
            f"the worker must `yield` batches (e.g. `results = yield ctx.run('date')`)"
        )
    return gen


def drive(gen: Generator[Any, Any, Any], execute: Execute) -> Any:
    """Run ``gen`` to completion and return its return value.

    ``execute(batch)`` runs a batch and returns its results or raises; its errors are
    thrown into the generator, which may catch them and yield again. An expired
    fragment timeout is not thrown in: the attempt is over, so the generator is closed
    (its ``finally`` blocks run) and the timeout raised. The generator is always
    closed, whatever happens; one that ignores ``GeneratorExit`` is reported and
    abandoned.
    """
    try:
        try:
            value = next(gen)
        except StopIteration as stop:
            return stop.value
        while True:
            if not isinstance(value, Batch):
                raise WorkerError(
                    f"the worker yielded {type(value).__name__} {value!r:.80}; it must yield a Batch "
                    f"(build one with ctx.batch() or ctx.run(...))"
                )
            try:
                results = execute(value)
            except FragmentTimeoutError:
                raise  # the finally below closes the generator
            except GolemTasksError as exc:  # thrown into the worker at its yield
                try:
                    value = gen.throw(exc)
                except StopIteration as stop:
                    return stop.value
                if isinstance(exc, BatchCancelled):
                    # The job is over; a worker that swallows the cancellation must not
                    # get to run more commands.
                    raise exc
                continue
            try:
                value = gen.send(results)
            except StopIteration as stop:
                return stop.value
    finally:
        close(gen)


def close(gen: Generator[Any, Any, Any]) -> None:
    """Close ``gen``; a worker that yields again instead is abandoned, not retried forever."""
    try:
        gen.close()
    except RuntimeError as exc:
        if "ignored GeneratorExit" not in str(exc):
            raise
        logger.warning("the worker %s ignored GeneratorExit (it yielded again when closed); it was abandoned "
                       "and its batches will not run: let GeneratorExit propagate", worker_name(gen))
        _keep_forever(gen)
