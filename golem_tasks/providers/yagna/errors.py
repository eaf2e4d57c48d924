"""Errors of the yagna REST client, each a narrow :class:`golem_tasks.errors.ApiError`.

The tree::

    ApiError (golem_tasks.errors)          any other answer: ``status`` says which
    ├── YagnaUnreachable                   nothing listens at the URL (connection refused)
    ├── NotYagna                           something answered, but not a yagna daemon
    ├── AppKeyRefused                      401: the app key is missing or wrong
    ├── TransportError                     the connection broke or timed out mid-call
    ├── ApiTimeout (also TimeoutError)     408: the daemon's own wait ran out
    ├── NotFound                           404: unknown id, lapsed subscription
    └── Gone                               410: rejected/terminated/expired, released

Callers that only care about "the backend failed" catch ``ApiError``; the narrow
classes exist for the answers a requestor must treat differently (re-subscribe on
``NotFound``, drop a proposal on ``Gone``, poll again on ``ApiTimeout``).
"""

from __future__ import annotations

from typing import Optional

from ...errors import ApiError

__all__ = [
    "ApiError",
    "ApiTimeout",
    "AppKeyRefused",
    "Gone",
    "NotFound",
    "NotYagna",
    "TransportError",
    "YagnaUnreachable",
]


class YagnaUnreachable(ApiError):
    """No daemon answers at the API URL (connection refused, unknown host).

    Not retried: start the daemon (``yagna service run``) or fix the URL.
    """


class NotYagna(ApiError):
    """The URL answered, but not like a yagna daemon (HTML, non-JSON, a wrong shape).

    Not safe to retry: point the client at a yagna daemon, or upgrade it.
    """


class AppKeyRefused(ApiError):
    """401: the daemon refused the app key. Not safe to retry: fix the key."""


class TransportError(ApiError):
    """The connection failed or timed out during a call.

    Attributes:
        request_sent: False when the request provably never reached the daemon
            (connect timeout), so even a non-idempotent call may be repeated; True
            when the outcome is unknown (read timeout, connection reset).
    """

    def __init__(self, message: str, *, request_sent: bool, status: Optional[int] = None,
                 provider: Optional[str] = None) -> None:
        super().__init__(message, status=status, provider=provider)
        self.request_sent = request_sent


class ApiTimeout(ApiError, TimeoutError):
    """408: the daemon waited for the call's ``timeout`` and gave up (an agreement not
    approved yet, a command not finished yet, a slow provider). Safe to call again."""


class NotFound(ApiError):
    """404: the object does not exist (anymore). For a demand subscription it means the
    subscription lapsed (1 h) or was removed: subscribe again. Not safe to retry as is."""


class Gone(ApiError):
    """410: the object reached a final state (proposal already countered or expired,
    agreement rejected/cancelled/terminated, allocation released). Not safe to retry."""
