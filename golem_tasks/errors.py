"""Every error golem_tasks raises, under one base class.

The tree::

    GolemTasksError
    ├── ConfigurationError (also ValueError)    bad argument; nothing was started or spent
    ├── WorkerError (also TypeError)            the worker broke the generator protocol
    ├── BatchError                              a batch of commands did not complete
    │   ├── CommandExecutionError               one command failed (non-zero exit, missing file, ...)
    │   ├── BatchTimeoutError (also TimeoutError)
    │   └── BatchCancelled                      the batch was stopped by shutdown, break or Ctrl-C
    ├── ProviderError                           the provider itself failed
    │   ├── ProviderLost                        the provider went away; its work is gone
    │   ├── BudgetExhausted                     the budget allows no more providers or work
    │   ├── StartupTimeout (also TimeoutError)  no provider engaged within ``startup_timeout``
    │   ├── EngagementCancelled                 engage() was called off: the work no longer needs it
    │   └── ApiError                            a backend API answered with an error (``status``)
    ├── UnexpectedCommand                       a FakeProvider got a command nobody scripted
    ├── FragmentFailed                          a fragment failed for good (``attempts`` says why)
    │   └── TaskRejected                        ``Task.reject_result(retry=False)``
    ├── FragmentTimeoutError (also TimeoutError) a fragment ran past its own timeout
    ├── JobTimeoutError (also TimeoutError)     the whole job ran past its timeout
    └── BrokenPool (also RuntimeError)          no provider can be engaged; pending work is failed

Errors that come from the infrastructure (``BatchError``, ``ProviderError``,
``FragmentTimeoutError``) make the scheduler retry the fragment; an exception from
the worker's own Python code does not (see ``Golem(retry_on=...)``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, Optional, Sequence

from ._format import provider_label

if TYPE_CHECKING:  # pragma: no cover
    from .commands import Command


class GolemTasksError(Exception):
    """Base class of every golem_tasks error."""


class ConfigurationError(GolemTasksError, ValueError):
    """An argument is wrong. Raised before any provider is engaged or anything is spent.

    Not safe to retry: fix the argument named in the message.
    """


class WorkerError(GolemTasksError, TypeError):
    """The worker function broke the protocol: it is not a generator function, or it
    yielded something that is not a batch. Not safe to retry: fix the worker."""


class BatchError(GolemTasksError):
    """A batch of commands did not complete. Safe to retry on another provider.

    Attributes:
        provider: id of the provider that ran the batch, when known.
        provider_name: its name, when known (messages show both, the id shortened).
    """

    def __init__(self, message: str, *, provider: Optional[str] = None,
                 provider_name: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.provider_name = provider_name

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type, args: tuple, state: dict) -> Exception:
    # Keyword-only constructor arguments do not survive the default pickling, so
    # errors crossing a process boundary are rebuilt from their attribute dict.
    error: Exception = Exception.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class CommandExecutionError(BatchError):
    """One command of a batch failed: a program exited non-zero, a file to send or
    download was missing, a path was refused. Raised into the worker at its ``yield``;
    the worker may catch it and go on.

    Attributes:
        command: the failed ``Command``.
        index: its position in the batch.
        exit_code: the program's exit code, or None when the command was not a program run.
        stdout, stderr: what the program printed (may be truncated by the provider).
        results: results of the commands that completed before this one.
    """

    def __init__(
        self,
        message: str,
        *,
        command: Optional["Command"] = None,
        index: Optional[int] = None,
        exit_code: Optional[int] = None,
        stdout: str = "",
        stderr: str = "",
        provider: Optional[str] = None,
        provider_name: Optional[str] = None,
        results: Sequence[Any] = (),
    ) -> None:
        super().__init__(message, provider=provider, provider_name=provider_name)
        self.command = command
        self.index = index
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr
        self.results = tuple(results)

    def __str__(self) -> str:
        parts = [self.message]
        if self.command is not None:
            parts.append(f"command #{self.index}: {self.command}")
        if self.exit_code is not None:
            parts.append(f"exit code {self.exit_code}")
        if self.provider:
            parts.append(f"on provider {provider_label(getattr(self, 'provider_name', None), self.provider)}")
        text = "; ".join(parts)
        if self.stderr:
            tail = self.stderr.strip()[-2000:]
            text += f"\nstderr:\n{tail}"
        return text


class BatchTimeoutError(BatchError, TimeoutError):
    """A batch ran past its timeout; its running command was killed. Safe to retry."""


class BatchCancelled(BatchError):
    """The batch was stopped because the job ended (shutdown, early ``break``, Ctrl-C,
    job timeout). Not retried: the work is no longer wanted."""


class ProviderError(GolemTasksError):
    """The provider failed in a way not tied to one command. Safe to retry elsewhere.

    Attributes:
        provider: id of the provider, when known.
    """

    def __init__(self, message: str, *, provider: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), self.args, self.__dict__))


class ProviderLost(ProviderError):
    """The provider went away mid-work (process died, agreement terminated, network
    lost). Its session is released and the provider rests a few seconds before it may
    be engaged again; ``provider_failure_limit`` consecutive failures exclude it for the
    rest of the run."""


class BudgetExhausted(ProviderError):
    """The budget does not cover another provider, or running work went over it (#4).

    Not safe to retry when ``final``: spending only grows. The providers already
    engaged go on working; give the provider a larger ``budget=`` to engage more.

    Attributes:
        budget: the whole budget.
        spent: the amount accepted so far (debit notes and invoices).
        expected: what the agreements made so far will cost at least (accepted
            amounts, else their start prices).
        projected: what they and the provider not engaged would cost at the job's
            pace (the spend guard), when that was the reason; else None.
        final: nothing running, being engaged or still to be invoiced could leave
            more of the budget: no later engagement fits either. False when an
            invoice to come (or an engagement that fails) may still free some.
    """

    def __init__(self, message: str, *, budget: Optional[Decimal] = None, spent: Optional[Decimal] = None,
                 expected: Optional[Decimal] = None, provider: Optional[str] = None,
                 projected: Optional[Decimal] = None, final: bool = True) -> None:
        super().__init__(message, provider=provider)
        self.budget = budget
        self.spent = spent
        self.expected = expected
        self.projected = projected
        self.final = final


class StartupTimeout(ProviderError, TimeoutError):
    """No provider was engaged within the backend's ``startup_timeout``. The message
    says what the market showed (offers, why they were refused) and what to change.

    Not safe to retry as is: the same settings meet the same market. The scheduler
    breaks the pool with it, so the job ends with a ``BrokenPool`` carrying this text.

    Attributes:
        reasons: the main causes, most frequent first (``"12 x price caps"``).
    """

    def __init__(self, message: str, *, reasons: Sequence[str] = (), provider: Optional[str] = None) -> None:
        super().__init__(message, provider=provider)
        self.reasons = tuple(reasons)


class EngagementCancelled(ProviderError):
    """``engage()`` was called off because the work no longer needs the provider (its
    ``abort`` event was set: the queue drained, the job ended, or the Golem is closing).

    Not a failure: nothing is retried, counted or reported for it. Whatever the
    engagement had reached was undone (no agreement confirmed after the abort; one
    approved meanwhile is terminated without an activity).
    """


class ApiError(ProviderError):
    """A backend API (for example the yagna REST API) answered with an error.

    Attributes:
        status: the HTTP status code, or None for a connection failure.
    """

    def __init__(self, message: str, *, status: Optional[int] = None, provider: Optional[str] = None) -> None:
        super().__init__(message, provider=provider)
        self.status = status


class UnexpectedCommand(GolemTasksError):
    """A ``FakeProvider`` received a command that no rule matches. The message lists
    every scripted rule and why it did not match. Not safe to retry: script the command.

    Attributes:
        command: the unmatched ``Command``.
        reasons: why each rule did not match, in rule order.
    """

    def __init__(self, message: str, *, command: Optional["Command"] = None,
                 reasons: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.command = command
        self.reasons = tuple(reasons)

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), self.args, self.__dict__))


class FragmentFailed(GolemTasksError):
    """A fragment failed for good: its retries are used up, or the error was not
    retryable.

    Attributes:
        item: the fragment's input.
        index: its position in the input, when it came from ``map``/``execute_tasks``.
        attempts: one exception per attempt, oldest first (``attempts[-1]`` is the last cause).
    """

    def __init__(self, message: str, *, item: Any = None, index: Optional[int] = None,
                 attempts: Sequence[BaseException] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.item = item
        self.index = index
        self.attempts = list(attempts)

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), self.args, self.__dict__))

    def __str__(self) -> str:
        lines = [self.message]
        for number, cause in enumerate(self.attempts, 1):
            if cause is self:
                continue
            first_line = str(cause).splitlines()[0] if str(cause) else ""
            line = f"  attempt {number}: {type(cause).__name__}: {first_line}"
            # What the program said is usually the answer (a missing file, a traceback's
            # last line is too far down); its first line saves reading the chained cause.
            said = _first_line(getattr(cause, "stderr", None))
            if said:
                line += f"; stderr: {said}"
            lines.append(line)
        return "\n".join(lines)


def _first_line(text: Any, limit: int = 200) -> str:
    """The first non-blank line of a command's stderr, cut to ``limit`` characters."""
    if not isinstance(text, str):
        return ""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= limit else line[:limit - 3] + "..."


class TaskRejected(FragmentFailed):
    """The worker called ``task.reject_result(reason, retry=False)``."""


class FragmentTimeoutError(GolemTasksError, TimeoutError):
    """A fragment ran past its ``fragment_timeout``; its running command was killed.
    Retried like any infrastructure failure."""


class JobTimeoutError(GolemTasksError, TimeoutError):
    """The whole job ran past its ``timeout``. Unfinished fragments were cancelled and
    their commands killed. Raised from the result iterator, never swallowed."""


class BrokenPool(GolemTasksError, RuntimeError):
    """No provider could be engaged (or every one failed its initializer), so the
    pending fragments can never run. Every pending fragment fails with this error."""
