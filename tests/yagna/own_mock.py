"""A ``responses`` mock that answers only the hosts a test mocks.

``responses`` patches every ``requests`` call of the process. Threads that outlive
another test (a shared local network's provider agents polling their own daemon) would
otherwise be refused, and in an ordered mock their calls would reset the expected order.
"""

from __future__ import annotations

from typing import Any, Set
from urllib.parse import urlsplit

import responses

from .yagna_samples import API_URL


LOOPBACK = ("127.0.0.1", "localhost", "::1")


class OwnHostsMock(responses.RequestsMock):
    """Calls to the mocked daemon (API_URL) and to any host a registered answer's URL
    names are mocked; a call to another port of this machine goes out as if nothing were
    mocked, and any other call is refused, so tests still reach nothing but 127.0.0.1.
    (Answers registered by pattern are taken to be for API_URL, as they are here.)"""

    def _mocked_hosts(self) -> Set[str]:
        hosts = {urlsplit(API_URL).netloc}
        hosts.update(urlsplit(answer.url).netloc for answer in self.registered() if isinstance(answer.url, str))
        return hosts

    def _on_request(self, adapter: Any, request: Any, **kwargs: Any) -> Any:
        url = urlsplit(str(request.url))
        if url.hostname in LOOPBACK and url.netloc not in self._mocked_hosts():
            return self._real_send(adapter, request, **kwargs)
        return super()._on_request(adapter, request, **kwargs)
