"""The outbound requirement: which internet URLs a job's commands may reach.

On Golem a provider lets a VM reach the internet only for the URLs of the demand's
computation payload manifest (``compManifest.net.inet.out.urls``), and only if it trusts
them. Every provider of golem_tasks understands the same ``outbound=[...]`` list:

* the Golem provider puts the URLs in the manifest it sends (:mod:`.yagna.market.manifest`);
* the local provider lets commands reach those hosts only, through a filtering proxy
  (:mod:`._outbound_proxy`);
* localnet's providers whitelist domains like ya-provider and their exe-units filter too;
* the fake provider validates and records the list.

Like yagna's exe-unit (``exe-unit/src/manifest.rs``), a URL grants its *host and port*
(the scheme's default port when none is written), not its path: a manifest for
``https://pypi.org/simple`` lets a command reach anything on ``pypi.org:443``.
"""

from __future__ import annotations

import urllib.parse
from typing import FrozenSet, Iterable, Optional, Tuple

from ..errors import ConfigurationError

#: The schemes a manifest's ``inet.out`` may list (GAP-4: http, https, ws, wss).
SCHEMES = ("http", "https", "ws", "wss")
DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}

#: A host (lower case, IPv6 without brackets) and a TCP port.
Endpoint = Tuple[str, int]

#: The first words of every refusal of the filtering proxies, local and localnet.
DENIED = "blocked by the computation payload manifest"


def check_outbound(urls: Optional[Iterable[str]], argument: str = "outbound") -> Tuple[str, ...]:
    """The URLs of ``outbound=``, checked; () for None.

    Raises:
        ConfigurationError: not a list of strings, or a URL without an http, https, ws
            or wss scheme and a host (the message names ``argument`` and the fix).
    """
    if urls is None:
        return ()
    if isinstance(urls, (str, bytes)):
        raise ConfigurationError(f"{argument} must be a list of URLs, got the string {urls!r}: "
                                 f"use {argument}=[{urls!r}]")
    checked = []
    for url in urls:
        if not isinstance(url, str):
            raise ConfigurationError(f"{argument} must list URLs as strings, got {url!r}")
        endpoint(url, argument)
        if url not in checked:
            checked.append(url)
    return tuple(checked)


def endpoint(url: str, argument: str = "outbound") -> Endpoint:
    """The host and port ``url`` grants.

    Raises:
        ConfigurationError: the URL has no allowed scheme, no host or a bad port.
    """
    parts = urllib.parse.urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES or not parts.netloc:
        raise ConfigurationError(
            f"{argument} lists {url!r}, which is not an http, https, ws or wss URL with a host: "
            f"write it in full, like 'https://pypi.org' (a manifest grants scheme, host and port)")
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"{argument} lists {url!r}, whose port is not a number from 1 to 65535: "
                                 f"write it like 'http://example.org:8080'") from exc
    host = parts.hostname
    if not host or parts.username is not None:
        raise ConfigurationError(f"{argument} lists {url!r}, which has no host (or has a user name): "
                                 f"write it like 'https://pypi.org'")
    return host.lower(), port or DEFAULT_PORTS[scheme]


def endpoints(urls: Iterable[str]) -> FrozenSet[Endpoint]:
    """Every host and port the URLs grant."""
    return frozenset(endpoint(url) for url in urls)


def denied_text(host: str, port: int, urls: Iterable[str]) -> str:
    """Why a connection to ``host:port`` was refused, and the fix."""
    allowed = ", ".join(urls) or "none"
    return (f"{DENIED}: {host}:{port} is not among its URLs ({allowed}); add a URL of that host and port to "
            f"outbound= (Golem(provider_options={{'outbound': [...]}}) or the provider's outbound= argument)")
