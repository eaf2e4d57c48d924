"""Find a VM image in the Golem image registry: a tag (``name:tag``) or a hash becomes
the hash and download URL providers need (yagna-protocol.md §2.2).

``GET {registry}/v1/image/info?tag=<name:tag>`` (or ``?hash=<sha3>``) answers
``{"http", "https", "sha3", "size"}``. The registry is not part of yagna: no app key is
sent to it. Its URL is configurable so tests and local networks can point it at
127.0.0.1: an argument, else ``GOLEM_TASKS_REGISTRY_URL`` (``golem-tasks localnet up``
prints it), else the public registry.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any, Mapping, Optional, Tuple
from urllib.parse import urlsplit

import requests

from ...errors import ConfigurationError, ProviderError

logger = logging.getLogger(__name__)

#: The public registry yapapi and golem-js use.
DEFAULT_REGISTRY_URL = "https://registry.golem.network"
#: The environment variable that points tag look-ups at another registry.
REGISTRY_VARIABLE = "GOLEM_TASKS_REGISTRY_URL"

_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*:[A-Za-z0-9._-]+")
_HASH = re.compile(r"[0-9a-f]{56}")


def registry_url(explicit: Optional[str] = None, environ: Optional[Mapping[str, str]] = None) -> str:
    """The registry to ask: ``explicit``, else ``GOLEM_TASKS_REGISTRY_URL``, else the public one.
    Read when a provider is built, never at import, so one process can switch networks."""
    env = os.environ if environ is None else environ
    return explicit or env.get(REGISTRY_VARIABLE) or DEFAULT_REGISTRY_URL


def registry_session(registry_url: str) -> requests.Session:
    """A session of its own (no app key goes to the registry) for ``registry_url``. A
    registry on this machine (localnet's) is asked directly: a proxy from the environment
    cannot reach it, and the public one may need that proxy."""
    http = requests.Session()
    http.trust_env = urlsplit(registry_url).hostname not in ("127.0.0.1", "localhost", "::1")
    return http


def check_tag(tag: str) -> str:
    """``name:tag`` as the registry spells it (``golem/alpine:latest``)."""
    if not isinstance(tag, str) or not _TAG.fullmatch(tag):
        raise ConfigurationError(
            f"image_tag must look like 'name:tag' (for example 'golem/alpine:latest'), got {tag!r}")
    return tag


def resolve_image(http: requests.Session, registry_url: str, *, image_tag: Optional[str] = None,
                  image_hash: Optional[str] = None, use_https: bool = False,
                  timeout: float = 10.0) -> Tuple[str, str]:
    """The ``(sha3 hash, download URL)`` of an image known by tag or by hash.

    Raises:
        ConfigurationError: the registry does not know the tag or hash (nothing was spent).
        ProviderError: the registry could not be asked (network, server error).
    """
    if (image_tag is None) == (image_hash is None):
        raise ConfigurationError("give exactly one of image_tag or image_hash")
    params = {"tag": check_tag(image_tag)} if image_tag is not None else {"hash": image_hash}
    what = f"image tag {image_tag!r}" if image_tag is not None else f"image hash {image_hash}"
    url = registry_url.rstrip("/") + "/v1/image/info"
    try:
        response = http.get(url, params={**params, "count": "true"}, timeout=(5.0, timeout))
    except requests.RequestException as exc:
        raise ProviderError(f"cannot ask the image registry at {registry_url} about {what}: "
                            f"{type(exc).__name__}: {exc}") from exc
    if response.status_code in (400, 404):
        raise ConfigurationError(
            f"the image registry at {registry_url} does not know {what} ({_text(response)}): "
            f"check the name on {registry_url}, or pass image_hash= and image_url= of your own image")
    if response.status_code != 200:
        raise ProviderError(f"the image registry at {registry_url} answered {response.status_code} "
                            f"for {what}: {_text(response)}")
    return _parse(response, what, registry_url, use_https)


def _parse(response: requests.Response, what: str, registry_url: str, use_https: bool) -> Tuple[str, str]:
    try:
        data: Mapping[str, Any] = response.json()
        sha3 = data["sha3"]
        link = data["https" if use_https else "http"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ProviderError(f"the image registry at {registry_url} answered {what} with an unexpected "
                            f"shape ({type(exc).__name__}: {exc})") from exc
    if not isinstance(sha3, str) or not _HASH.fullmatch(sha3) or not isinstance(link, str):
        raise ProviderError(f"the image registry at {registry_url} answered {what} without a valid "
                            f"sha3 and URL: {_text(response)}")
    logger.info("image %s resolved: sha3 %s at %s (%s bytes)", what, sha3, link, data.get("size", "?"))
    return sha3, link


def _text(response: requests.Response) -> str:
    text = response.content[:200].decode("utf-8", "replace").strip()
    return text or response.reason or "no message"
