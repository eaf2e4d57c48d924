"""The HTTP seam of the yagna client: one ``requests`` call, its retry policy, and the
translation of every failure into the errors of :mod:`.errors` (``raise ... from``).

The app key travels only in the ``Authorization`` header of each request. It is kept
in an object whose repr hides it, and it is never put into a message or a log line.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional
from urllib.parse import quote

import requests
import urllib3

from ....errors import ApiError, ConfigurationError
from .retry import DEFAULT_POLICIES, CallKind, RetryPolicy
from ..errors import (
    ApiTimeout,
    AppKeyRefused,
    Gone,
    NotFound,
    NotYagna,
    TransportError,
    YagnaUnreachable,
)

#: Seconds added to a long poll's server-side ``timeout`` to get the HTTP read timeout
#: (yagna-protocol.md §1.3: "at least the server timeout + 5 s").
READ_MARGIN = 5.0

#: The ``Accept`` value the daemon compares for equality to switch to SSE.
EVENT_STREAM = "text/event-stream"

_NO_BODY: Any = object()
_SNIPPET = 300
_STATUS_ERRORS = {404: NotFound, 408: ApiTimeout, 410: Gone}


class AppKey:
    """An app key that does not show itself in reprs, tracebacks or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(
                "the app key is empty: create one with `yagna app-key create requestor` "
                "and pass app_key= or set YAGNA_APPKEY"
            )
        if any(char.isspace() for char in value):
            raise ConfigurationError(
                "the app key contains whitespace; copy it again from `yagna app-key list`")
        self._value = value

    def header(self) -> Dict[str, str]:
        return {"Authorization": f"Bearer {self._value}"}

    def __repr__(self) -> str:
        return "AppKey(<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("an app key is not pickled, so it cannot leak through a pickle")


class Transport:
    """Sends requests to one daemon and translates every answer.

    Args:
        session: the ``requests.Session`` to send through (owned by the caller).
        api_url: the daemon's base URL, e.g. ``http://127.0.0.1:7465``.
        app_key: the requestor app key.
        policies: the retry policy for each :class:`CallKind`.
        sleep: what the retry policies sleep with (inject a fake in tests).
        connect_timeout: seconds to wait for a TCP connection.
        read_timeout: seconds to wait for an answer to a call without a server timeout.
    """

    def __init__(self, session: requests.Session, api_url: str, app_key: str, *,
                 policies: Mapping[CallKind, RetryPolicy] = DEFAULT_POLICIES,
                 sleep: Callable[[float], None] = time.sleep,
                 connect_timeout: float = 5.0, read_timeout: float = 60.0) -> None:
        if not isinstance(api_url, str) or not api_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"api_url must be an http(s) URL such as http://127.0.0.1:7465, got {api_url!r}")
        missing = set(CallKind) - set(policies)
        if missing:
            raise ConfigurationError(f"no retry policy for {sorted(kind.value for kind in missing)}")
        self.session = session
        self.api_url = api_url.rstrip("/")
        self._key = AppKey(app_key)
        self._policies = dict(policies)
        self._sleep = sleep
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout

    def __repr__(self) -> str:
        return f"Transport({self.api_url!r})"

    def auth_header(self) -> Dict[str, str]:
        """The ``Authorization`` header, for the WebSocket step. Never log it."""
        return self._key.header()

    def call(self, kind: CallKind, method: str, path: str, *,
             params: Optional[Mapping[str, Any]] = None, body: Any = _NO_BODY,
             server_timeout: Optional[float] = None,
             answers: Optional[Mapping[int, Any]] = None,
             parse: Optional[Callable[[Any], Any]] = None) -> Any:
        """Send ``method path`` under the retry policy of ``kind``; return the decoded
        JSON body (None when empty), passed through ``parse`` when given.

        ``answers`` maps a status to the value to return instead of raising (e.g. a 408
        of ``wait`` means "not approved yet", so it answers False). A body ``parse``
        cannot read means the daemon is not the one this client speaks to: NotYagna.
        """
        read = self.read_timeout if server_timeout is None else server_timeout + READ_MARGIN
        where = f"{method} {path}"

        def attempt() -> Any:
            response = self._send(method, path, params, body, read)
            if answers and response.status_code in answers:
                return answers[response.status_code]
            data = self._decode(response, where)
            return data if parse is None else self.parse(where, parse, data)

        return self._run(kind, where, attempt)

    def open_stream(self, kind: CallKind, path: str, *, params: Optional[Mapping[str, Any]] = None,
                    read_timeout: float) -> requests.Response:
        """GET ``path`` as an event stream; the caller iterates and closes the response."""
        where = f"GET {path}"

        def attempt() -> requests.Response:
            response = self._send("GET", path, params, _NO_BODY, read_timeout, stream=True)
            content_type = response.headers.get("Content-Type", "")
            if 200 <= response.status_code < 300 and content_type.startswith(EVENT_STREAM):
                return response
            try:
                if 200 <= response.status_code < 300:
                    raise NotYagna(f"{self.api_url} is not a yagna daemon, or too old: {where} "
                                   f"answered {content_type or 'no content type'}, not an event stream",
                                   status=response.status_code)
                raise self._status_error(response, where)
            finally:
                response.close()

        return self._run(kind, where, attempt)

    def translate(self, exc: requests.RequestException, where: str) -> ApiError:
        """The golem_tasks error for a ``requests`` exception (also used mid-stream)."""
        if isinstance(exc, requests.ConnectTimeout):
            return TransportError(f"{where}: no connection to {self.api_url} within "
                                  f"{self.connect_timeout:g} s", request_sent=False)
        if isinstance(exc, requests.ConnectionError) and _refused(exc):
            return YagnaUnreachable(f"no yagna daemon answers at {self.api_url}: start it with "
                                    "`yagna service run` (or `golem-tasks localnet up`)")
        if isinstance(exc, requests.ReadTimeout):
            return TransportError(f"{where}: {self.api_url} did not answer in time", request_sent=True)
        if isinstance(exc, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                            requests.exceptions.ContentDecodingError)):
            return TransportError(f"{where}: the connection to {self.api_url} broke ({_root_cause(exc)})",
                                  request_sent=True)
        return ApiError(f"{where} failed: {type(exc).__name__}: {_root_cause(exc)}")

    def parse(self, where: str, parser: Callable[[Any], Any], data: Any) -> Any:
        """``parser(data)``, with a malformed answer turned into :class:`NotYagna`."""
        try:
            return parser(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise NotYagna(f"{self.api_url} is not a yagna daemon of a supported version: {where} "
                           f"answered an unexpected shape ({type(exc).__name__}: {exc})") from exc

    def _run(self, kind: CallKind, where: str, attempt: Callable[[], Any]) -> Any:
        # before_sleep_log names the call "<module>.<qualname>": "...yagna.GET /me".
        attempt.__name__ = attempt.__qualname__ = where
        attempt.__module__ = "golem_tasks.providers.yagna"
        return self._policies[kind].retrying(sleep=self._sleep)(attempt)

    def _send(self, method: str, path: str, params: Optional[Mapping[str, Any]], body: Any,
              read_timeout: float, *, stream: bool = False) -> requests.Response:
        headers = {"Accept": EVENT_STREAM if stream else "application/json", **self._key.header()}
        kwargs: Dict[str, Any] = {}
        if body is not _NO_BODY:
            # json= would drop a None body; yagna wants a JSON body, `null` included.
            kwargs["data"] = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        query = {key: value for key, value in (params or {}).items() if value is not None}
        try:
            return self.session.request(method, self.api_url + path, params=query, headers=headers,
                                        timeout=(self.connect_timeout, read_timeout), stream=stream,
                                        **kwargs)
        except requests.RequestException as exc:
            raise self.translate(exc, f"{method} {path}") from exc

    def _decode(self, response: requests.Response, where: str) -> Any:
        status = response.status_code
        if not 200 <= status < 300:
            raise self._status_error(response, where)
        if not response.content.strip():
            return None
        try:
            return json.loads(response.content)
        except ValueError:
            content_type = response.headers.get("Content-Type") or "no content type"
            raise NotYagna(f"{self.api_url} answered but is not a yagna daemon: {where} answered "
                           f"{status} with {content_type}: {_snippet(response)}", status=status) from None

    def _status_error(self, response: requests.Response, where: str) -> ApiError:
        status = response.status_code
        detail = _detail(response)
        if status == 401:
            return AppKeyRefused(
                f"the app key was refused by {self.api_url} ({detail}): create one with "
                "`yagna app-key create requestor` and pass app_key= or set YAGNA_APPKEY",
                status=status,
            )
        error_class = _STATUS_ERRORS.get(status, ApiError)
        return error_class(f"{where} answered {status}: {detail}", status=status)


def _detail(response: requests.Response) -> str:
    """The daemon's own words: ``{"message"}``, RFC 7807 ``detail`` (with its extra
    fields, e.g. the funds of a refused allocation), or the plain text."""
    try:
        data = json.loads(response.content)
    except ValueError:
        return _snippet(response) or response.reason or "no message"
    if not isinstance(data, dict):
        return _snippet(response)
    if "detail" in data or "title" in data:
        extra = {key: value for key, value in data.items()
                 if key not in ("type", "title", "detail", "status", "instance")}
        text = str(data.get("detail") or data.get("title"))
        return text + (f" ({', '.join(f'{k}={v}' for k, v in extra.items())})" if extra else "")
    message = data.get("message")
    return str(message) if message else "no message"


def _snippet(response: requests.Response) -> str:
    text = response.content[:_SNIPPET].decode("utf-8", "replace").strip()
    return text + ("..." if len(response.content) > _SNIPPET else "")


def _causes(exc: BaseException) -> Iterable[BaseException]:
    """``exc`` and what it wraps: args, urllib3's ``reason``, ``__cause__``, ``__context__``."""
    seen = set()
    todo: List[object] = [exc]
    while todo:
        error = todo.pop()
        if not isinstance(error, BaseException) or id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        todo.extend(error.args)
        todo.extend((getattr(error, "reason", None), error.__cause__, error.__context__))


def _refused(exc: BaseException) -> bool:
    """True when nothing listens at the URL: refused, or no such host."""
    return any(isinstance(error, (ConnectionRefusedError, urllib3.exceptions.NewConnectionError))
               for error in _causes(exc))


def _root_cause(exc: BaseException) -> str:
    *_, last = _causes(exc)
    return f"{type(last).__name__}: {last}" if str(last) else type(last).__name__


def json_string(data: Any) -> str:
    """An id answered as a JSON string literal (``"ab12..."``)."""
    if not isinstance(data, str) or not data:
        raise TypeError(f"expected an id string, got {data!r}")
    return data


def list_of(parser: Callable[[Any], Any]) -> Callable[[Any], list]:
    """A parser of a JSON array whose items ``parser`` reads."""
    def parse_list(data: Any) -> list:
        if not isinstance(data, list):
            raise TypeError(f"expected a list, got {type(data).__name__}")
        return [parser(item) for item in data]
    return parse_list


def path_id(value: str) -> str:
    """An id as one URL path segment (quoted, so it cannot add segments)."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"an id must be a non-empty string, got {value!r}")
    return quote(value, safe="")


def check_timeout(seconds: float) -> float:
    """A server-side ``timeout`` query value; the daemon caps them at 60 s by default."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 3600:
        raise ConfigurationError(f"timeout must be 0-3600 seconds, got {seconds!r}")
    return seconds


def check_max_events(count: int) -> int:
    """``maxEvents``: the daemon answers 400 outside 1-100."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100:
        raise ConfigurationError(f"max_events must be 1-100, got {count!r}")
    return count
