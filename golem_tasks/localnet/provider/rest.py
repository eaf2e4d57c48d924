"""A thin JSON client for the daemon's REST API, used by the local provider side.

The requestor client lives in ``golem_tasks.providers.yagna``; this one only serves the
provider agents, which speak the provider half of the same API with their own keys.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

import requests

from ...errors import ApiError

#: Extra seconds on top of a long-poll's server-side timeout before the client gives up.
_READ_MARGIN = 5.0


class Rest:
    """``requests`` bound to one daemon and one app key.

    Args:
        api_url: ``http://127.0.0.1:<port>``.
        app_key: sent as ``Authorization: Bearer``.
        who: names the caller in error messages (e.g. a provider name).
    """

    def __init__(self, api_url: str, app_key: str, *, who: str = "") -> None:
        self.api_url = api_url.rstrip("/")
        self.who = who
        self._http = requests.Session()
        self._http.trust_env = False  # never route loopback calls through a user's proxy
        self._http.headers["Authorization"] = f"Bearer {app_key}"

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Optional[Mapping[str, Any]] = None,
        poll: float = 0.0,
        ok: Iterable[int] = (200, 201, 204),
    ) -> Any:
        """One request; returns the decoded JSON body (``None`` when empty).

        Args:
            poll: the server-side long-poll timeout in the request, if any; the client
                read timeout is this plus a margin.
            ok: status codes that count as success.

        Raises:
            ApiError: another status (``.status`` set), or no connection (``.status`` None).
        """
        url = self.api_url + path
        try:
            response = self._http.request(
                method, url, json=json, params=params, timeout=(5, poll + _READ_MARGIN + 10)
            )
        except requests.RequestException as exc:
            raise ApiError(
                f"{self.who}: {method} {path}: {exc}", provider=self.who or None
            ) from exc
        if response.status_code not in tuple(ok):
            raise ApiError(
                f"{self.who}: {method} {path} -> {response.status_code} {response.text[:500]}",
                status=response.status_code,
                provider=self.who or None,
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    def get(self, path: str, **kw: Any) -> Any:
        return self.call("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.call("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Any:
        return self.call("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.call("DELETE", path, **kw)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Rest":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
