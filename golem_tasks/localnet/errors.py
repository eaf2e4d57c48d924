"""Errors of the local Golem network.

Kept here (not in :mod:`golem_tasks.errors`) because only ``golem_tasks.localnet`` raises
them; they still derive from :class:`golem_tasks.errors.GolemTasksError`.
"""

from __future__ import annotations

from ..errors import GolemTasksError


class LocalNetError(GolemTasksError):
    """The local network could not be started, or one of its parts failed.

    The message carries the tail of the daemon log when there is one. Retrying is safe:
    every process that was started has been stopped before this is raised.
    """


class DaemonNotInstalled(LocalNetError, FileNotFoundError):
    """No ``yagna`` binary was found: install the extra, ``pip install golem_tasks[localnet]``."""
