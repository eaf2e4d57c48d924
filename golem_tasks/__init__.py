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
    TaskRejected,
    UnexpectedCommand,
    WorkerError,
)
from .golem import Golem
from .policy import RetryPolicy
from .providers.base import Provider, ProviderInfo, Session
from .providers.local import LocalProvider
from ._results import FragmentResult
from .task import Task, TaskStatus

__version__ = "0.1.0"

__all__ = (
    "ApiError", "Batch", "BatchCancelled", "BatchError", "BatchTimeoutError", "BrokenPool",
    "BudgetExhausted", "Command", "CommandExecutionError", "CommandResult", "ConfigurationError", "DownloadBytes",
    "DownloadFile", "DownloadJson", "EngagementCancelled", "FragmentFailed", "FragmentResult", "FragmentTimeoutError",
    "Golem", "GolemProvider", "GolemTasksError", "JobTimeoutError", "LocalProvider", "Provider", "ProviderError",
    "ProviderInfo", "ProviderLost", "RetryPolicy", "Run", "SendBytes", "SendFile", "SendJson",
    "SendUrl", "Session", "Task", "TaskRejected", "TaskStatus", "UnexpectedCommand", "UploadUrl", "WorkContext",
    "WorkerError",
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
