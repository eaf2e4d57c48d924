"""The connection to one yagna daemon: where it is, the app key, one shared HTTP
session, and the clients built on them.

Configuration comes from arguments, else ``YAGNA_APPKEY`` / ``YAGNA_API_URL`` (default
``http://127.0.0.1:7465``), read when a provider is built, never at import. The key is
held by an object that hides it from reprs, logs and pickles.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import weakref
from typing import Any, Callable, Mapping, Optional

import attrs
import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ...errors import ConfigurationError
from ._client import DEFAULT_API_URL, Identity, YagnaClient
from ._http.retry import DEFAULT_POLICIES, CallKind, RetryPolicy, is_gsb_error, is_transient
from ._http.transport import AppKey
from .errors import NotFound, NotYagna

#: Connections kept per host: engage threads, batch polls, the market reader, the
#: payment threads and the negotiation calls may all talk to the daemon at once.
POOL_SIZE = 32
#: Long polls wait up to a minute on the daemon side; counter-proposals may take the
#: daemon's 60 s send timeout. Reads without a server timeout get this long.
READ_TIMEOUT = 90.0
#: The start-up check must answer "is a daemon there, does it take the key" in seconds.
CHECK_READ_TIMEOUT = 5.0
_CHECK_READ = RetryPolicy(retry_on=is_transient, max_attempts=2, max_delay=8, initial_wait=0.5, max_wait=1)

Policies = Mapping[CallKind, RetryPolicy]


class Connection:
    """One daemon: its URL, the app key (hidden) and a shared ``requests.Session``.

    Args:
        api_url: the daemon's REST URL.
        app_key: a requestor app key.
        policies: retry policies of the clients made here.
        sleep: what retries sleep with (tests inject a recorder).
    """

    def __init__(self, api_url: str, app_key: str, *, policies: Policies = DEFAULT_POLICIES,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._key = AppKey(app_key)
        self.api_url = api_url.rstrip("/")
        self.policies = dict(policies)
        self.sleep = sleep
        self.http = requests.Session()
        # The daemon is on this machine: a proxy from the environment would only break it.
        self.http.trust_env = False
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)

    @classmethod
    def from_env(cls, *, app_key: Optional[str] = None, api_url: Optional[str] = None,
                 environ: Optional[Mapping[str, str]] = None, **options: object) -> "Connection":
        """Arguments first, then ``YAGNA_APPKEY`` and ``YAGNA_API_URL``.

        Raises:
            ConfigurationError: no app key anywhere, or a malformed URL.
        """
        env = os.environ if environ is None else environ
        key = app_key or env.get("YAGNA_APPKEY")
        if not key:
            raise ConfigurationError(
                "no yagna app key: create one with `yagna app-key create requestor` (or read it with "
                "`yagna app-key list`) and pass app_key= or set YAGNA_APPKEY")
        url = api_url or env.get("YAGNA_API_URL") or DEFAULT_API_URL
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"the yagna API URL must be http(s)://host:port, got {url!r}")
        return cls(url, key, **options)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"Connection({self.api_url!r})"

    def client(self, *, policies: Optional[Policies] = None, sleep: Optional[Callable[[float], None]] = None,
               read_timeout: float = READ_TIMEOUT) -> YagnaClient:
        """A client on the shared session (cheap: make one per purpose)."""
        return YagnaClient(self.http, self.api_url, self._key._value,  # the only place the key is read
                           policies=self.policies if policies is None else policies,
                           sleep=self.sleep if sleep is None else sleep, read_timeout=read_timeout)

    def check(self) -> Identity:
        """Ask the daemon who we are, within seconds.

        Raises:
            YagnaUnreachable: no daemon answers (start it: ``yagna service run``).
            TransportError: something listens there but does not answer in time.
            NotYagna: something else answers at the URL.
            AppKeyRefused: the key is wrong (401).
        """
        policies = {**self.policies, CallKind.READ: _CHECK_READ}
        client = self.client(policies=policies, read_timeout=CHECK_READ_TIMEOUT)
        try:
            client.version()
        except NotFound as exc:  # a web server, but no yagna API there
            raise NotYagna(f"{self.api_url} is not a yagna daemon: it has no /version/get ({exc.message}); "
                           "check YAGNA_API_URL (yagna listens on http://127.0.0.1:7465 by default)",
                           status=404) from exc
        return client.me()

    def interruptible(self) -> "Interruptible":
        """Clients on a session of their own whose pending calls :meth:`Interruptible.interrupt`
        ends at once: for long polls that must not be waited out at close."""
        return Interruptible(self)

    def close(self) -> None:
        self.http.close()


class Interruptible:
    """A ``requests`` session for long polls, whose open sockets can be shut down from
    another thread: a poll blocked in the daemon then fails at once (a broken
    connection), where the daemon itself would answer only at the poll's timeout.

    Calls made through :meth:`client` are not retried once interrupted.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.interrupted = False
        self.http = requests.Session()
        self.http.trust_env = False
        self._adapter = _TrackingAdapter(pool_connections=2, pool_maxsize=4)
        self.http.mount("http://", self._adapter)
        self.http.mount("https://", self._adapter)

    def client(self) -> YagnaClient:
        policies = cancellable(self._connection.policies, lambda: self.interrupted)
        return YagnaClient(self.http, self._connection.api_url, self._connection._key._value, policies=policies,
                           sleep=self._connection.sleep, read_timeout=READ_TIMEOUT)

    def interrupt(self) -> None:
        """End every call in flight now (it fails as a broken connection). Call it
        again if a call may have started meanwhile: each call ends what is open."""
        self.interrupted = True
        self._adapter.shutdown_sockets()

    def close(self) -> None:
        self.interrupt()
        self.http.close()


class _TrackingAdapter(HTTPAdapter):
    """An adapter that remembers the connections its pools make (weakly)."""

    def __init__(self, **options: Any) -> None:
        self._made: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self._made_lock = threading.Lock()
        super().__init__(**options)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        adapter = self

        def tracking(base: type) -> type:
            def _new_conn(pool: Any) -> Any:
                conn = base._new_conn(pool)  # type: ignore[attr-defined]
                with adapter._made_lock:
                    adapter._made.add(conn)
                return conn
            return type(f"Tracking{base.__name__}", (base,), {"_new_conn": _new_conn})

        self.poolmanager.pool_classes_by_scheme = {"http": tracking(HTTPConnectionPool),
                                                   "https": tracking(HTTPSConnectionPool)}

    def shutdown_sockets(self) -> None:
        with self._made_lock:
            connections = list(self._made)
        for conn in connections:
            sock = getattr(conn, "sock", None)
            if sock is None:
                continue
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # closed already
                pass


def cancellable(policies: Policies, cancelled: "Callable[[], bool]") -> Policies:
    """The policies with long polls no longer retried once ``cancelled()`` is true, so a
    cancelled batch does not sit out the backoff of a failing provider."""
    poll = policies[CallKind.POLL]
    retry_on = poll.retry_on
    return {**policies, CallKind.POLL: attrs.evolve(poll, retry_on=lambda exc: retry_on(exc) and not cancelled())}


def gsb_errors_not_retried(policies: Policies) -> Policies:
    """The policies with GSB errors of reads and long polls raised at once, not retried.

    For a session's batch: a killed exe-unit answers every results poll with a GSB error,
    and the policy's backoff would hide that for seconds. The batch code checks the
    activity state on the first one instead (``activity.polling``), and retries itself while the
    activity is alive; a state read failing with a GSB error means the provider is gone.
    """
    def without_gsb(retry_on: Callable[[BaseException], bool]) -> Callable[[BaseException], bool]:
        return lambda exc: retry_on(exc) and not is_gsb_error(exc)

    changed = dict(policies)
    for kind in (CallKind.READ, CallKind.POLL):
        changed[kind] = attrs.evolve(policies[kind], retry_on=without_gsb(policies[kind].retry_on))
    return changed
