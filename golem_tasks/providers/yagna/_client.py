"""The yagna REST client: identity, version, and the market/activity/payment/GSB APIs."""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import attrs
import requests

from ...errors import ConfigurationError
from .activity.api import ActivityApi
from ._http.json import required_str, string_tuple
from .market.api import MarketApi
from .payment.api import PaymentApi
from ._http.retry import DEFAULT_POLICIES, CallKind, RetryPolicy
from ._http.transport import Transport, path_id

#: Where ``yagna service run`` listens unless told otherwise (``YAGNA_API_URL``).
DEFAULT_API_URL = "http://127.0.0.1:7465"


@attrs.frozen(kw_only=True)
class Identity:
    """``GET /me``: this node's id (also its default payer address), name and role."""

    identity: str
    name: str
    role: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Identity":
        return cls(identity=required_str(data, "identity"), name=str(data.get("name") or ""),
                   role=str(data.get("role") or ""))


@attrs.frozen(kw_only=True)
class YagnaVersion:
    """``GET /version/get``: the running daemon's version, e.g. ``0.17.6``."""

    version: str
    name: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "YagnaVersion":
        current = data["current"]
        return cls(version=required_str(current, "version"), name=required_str(current, "name"))

    @property
    def version_tuple(self) -> Tuple[int, ...]:
        """The leading numbers of the version (``(0, 17, 6)``), for comparisons."""
        numbers = []
        for part in self.version.split("-")[0].split("."):
            if not part.isdigit():
                break
            numbers.append(int(part))
        return tuple(numbers)


@attrs.frozen(kw_only=True)
class GsbServices:
    """Bound GSB services: their id (for the WebSocket and for unbinding) and address."""

    services_id: str
    on: str
    components: Tuple[str, ...] = attrs.field(converter=string_tuple)


class GsbApi:
    """``/gsb-api/v1``: bind GSB services the daemon relays to a WebSocket (GFTP without
    the ``gftp`` binary, yagna-protocol.md §4.2). The WebSocket itself is not here."""

    PREFIX = "/gsb-api/v1"

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def bind_services(self, on: str, components: Sequence[str]) -> GsbServices:
        """Listen on the GSB address ``on`` (e.g. ``/public/gftp/<uuid>``) for ``components``
        (e.g. ``["GetMetadata", "GetChunk"]``)."""
        body = {"listen": {"on": on, "components": list(components)}}

        def parse(data: Any) -> GsbServices:
            return GsbServices(services_id=required_str(data, "servicesId"), on=on, components=components)

        return self._t.call(CallKind.CREATE, "POST", f"{self.PREFIX}/services", body=body, parse=parse)

    def unbind_services(self, services_id: str) -> None:
        """Stop listening; pending GSB requests are cancelled."""
        self._t.call(CallKind.CLEANUP, "DELETE", f"{self.PREFIX}/services/{path_id(services_id)}")

    def websocket_url(self, services_id: str) -> str:
        """The WebSocket URL of bound services (subprotocol ``gsb+flexbuffers``). It
        carries no key: send :meth:`YagnaClient.auth_header` with the upgrade request."""
        base = self._t.api_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return f"{base}{self.PREFIX}/services/{path_id(services_id)}"


class YagnaClient:
    """A thin synchronous client of one yagna daemon's REST API: one method per
    endpoint, grouped as ``market``, ``activity``, ``payment`` and ``gsb``.

    Every failure is raised as a :class:`golem_tasks.errors.ApiError` (narrow ones in
    :mod:`golem_tasks.providers.yagna.errors`); transient ones are retried first, as
    :mod:`._http.retry` describes. The app key is sent as a Bearer token and never shown.

    Usage::

        with requests.Session() as session:
            client = YagnaClient(session, "http://127.0.0.1:7465", app_key)
            me = client.check()
            sub = client.market.subscribe_demand(demand)

    Args:
        session: the ``requests.Session`` to send through; the caller closes it.
        api_url: the daemon's base URL.
        app_key: a requestor app key (``yagna app-key create requestor``).
        policies: retry policy per :class:`CallKind` (default :data:`DEFAULT_POLICIES`).
        sleep: what retries sleep with; tests inject ``waits.append``.
        connect_timeout: seconds to wait for a connection.
        read_timeout: seconds to wait for an answer to a call that does not long-poll.
    """

    def __init__(self, session: requests.Session, api_url: str, app_key: str, *,
                 policies: Mapping[CallKind, RetryPolicy] = DEFAULT_POLICIES,
                 sleep: Callable[[float], None] = time.sleep,
                 connect_timeout: float = 5.0, read_timeout: float = 60.0) -> None:
        self._t = Transport(session, api_url, app_key, policies=policies, sleep=sleep,
                            connect_timeout=connect_timeout, read_timeout=read_timeout)
        #: ``/market-api/v1``
        self.market = MarketApi(self._t)
        #: ``/activity-api/v1``
        self.activity = ActivityApi(self._t)
        #: ``/payment-api/v1``
        self.payment = PaymentApi(self._t)
        #: ``/gsb-api/v1``
        self.gsb = GsbApi(self._t)

    @classmethod
    def from_env(cls, session: requests.Session, *, api_url: Optional[str] = None,
                 app_key: Optional[str] = None, environ: Optional[Mapping[str, str]] = None,
                 **options: Any) -> "YagnaClient":
        """A client configured by arguments, else ``YAGNA_API_URL`` and ``YAGNA_APPKEY``.

        Raises:
            ConfigurationError: no app key anywhere.
        """
        env = os.environ if environ is None else environ
        key = app_key or env.get("YAGNA_APPKEY")
        if not key:
            raise ConfigurationError(
                "no yagna app key: create one with `yagna app-key create requestor` "
                "and pass app_key= or set YAGNA_APPKEY"
            )
        return cls(session, api_url or env.get("YAGNA_API_URL") or DEFAULT_API_URL, key, **options)

    def __repr__(self) -> str:
        return f"YagnaClient({self.api_url!r})"

    @property
    def api_url(self) -> str:
        return self._t.api_url

    def auth_header(self) -> Dict[str, str]:
        """The ``Authorization`` header, for the WebSocket step. Never log it."""
        return self._t.auth_header()

    def version(self) -> YagnaVersion:
        """The daemon's version (``GET /version/get``, which needs no key)."""
        return self._t.call(CallKind.READ, "GET", "/version/get", parse=YagnaVersion.from_json)

    def me(self) -> Identity:
        """This node's identity (``GET /me``)."""
        return self._t.call(CallKind.READ, "GET", "/me", parse=Identity.from_json)

    def check(self) -> Identity:
        """Check that a yagna daemon answers and takes the key; return :meth:`me`.

        Raises:
            YagnaUnreachable: nothing listens at ``api_url``.
            NotYagna: something else answers there.
            AppKeyRefused: the key is wrong.
        """
        self.version()
        return self.me()
