"""golem_tasks: run batch work on the Golem Network from plain synchronous Python."""

import logging
from typing import Any, List

from .batch import Batch
from .commands import (
    Command,
    CommandResult,
    DownloadBytes,
    DownloadFile,
    DownloadJson,
    Run,
    SendBytes,
    SendFile,
    SendJson,
    SendUrl,
    UploadUrl,
)
from .context import WorkContext
from .errors import (
    ApiError,
    BatchCancelled,
    BatchError,
    BatchTimeoutError,
    BrokenPool,
    BudgetExhausted,
    CommandExecutionError,
    ConfigurationError,
    EngagementCancelled,
    FragmentFailed,
    FragmentTimeoutError,
    GolemTasksError,
    JobTimeoutError,
    ProviderError,
    ProviderLost,
    StartupTimeout,
    TaskRejected,
    UnexpectedCommand,
    WorkerError,
)
from .events import (
    BackupStarted,
    CommandOutput,
    CostsSettled,
    Event,
    FragmentFinished,
    FragmentRetried,
    FragmentStarted,
    InitializerFailed,
    JobFinished,
    JobStarted,
    ProviderEngaged,
    ProviderReleased,
    ProviderSummary,
    SpendUpdated,
)
from .golem import Golem
from .logs import log_to_stderr
from .journal import JournalError
from .policy import RetryPolicy
from .providers.base import Permit, Provider, ProviderInfo, Session
from .providers.local import LocalProvider
from ._scheduler.run import FragmentResult
from ._scheduler.speculation import Speculation
from .task import Task, TaskStatus

__version__ = "0.1.0"

__all__ = (
    "ApiError", "Batch", "BatchCancelled", "BatchError", "BatchTimeoutError", "BrokenPool",
    "BudgetExhausted", "Command", "CommandExecutionError", "CommandResult", "ConfigurationError", "DownloadBytes",
    "DownloadFile", "DownloadJson", "EngagementCancelled", "FragmentFailed", "FragmentResult", "FragmentTimeoutError",
    "Golem", "GolemProvider", "GolemTasksError", "JobTimeoutError", "JournalError", "LocalProvider", "Provider",
    "Permit", "ProviderError",
    "ProviderInfo", "ProviderLost", "RetryPolicy", "Run", "SendBytes", "SendFile", "SendJson",
    "SendUrl", "Session", "Speculation", "Task", "TaskRejected", "TaskStatus", "UnexpectedCommand", "UploadUrl",
    "WorkContext", "WorkerError",
    # events (the event a fragment failed for good is golem_tasks.events.FragmentFailed:
    # the name FragmentFailed here is the exception)
    "BackupStarted", "CommandOutput", "CostsSettled", "Event", "FragmentFinished", "FragmentRetried",
    "FragmentStarted", "InitializerFailed", "JobFinished", "JobStarted", "ProviderEngaged", "ProviderReleased",
    "ProviderSummary", "SpendUpdated",
    "log_to_stderr", "StartupTimeout",
)

# The library never configures logging; applications do (requests does the same).
logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    # GolemProvider is imported on first use: importing golem_tasks for local work does
    # not load the yagna backend (its HTTP layer and optional WebSocket libraries).
    if name == "GolemProvider":
        from .providers.yagna import GolemProvider

        return GolemProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | {"GolemProvider"})
