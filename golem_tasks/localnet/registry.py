"""A loopback image registry: resolves image tags as ``registry.golem.network`` does.

Requestors look a VM image up with ``GET /v1/image/info?tag=<name:tag>`` (or
``?hash=<sha3>``) and get ``{"http", "https", "sha3", "size"}`` back; the public registry
answers 404 for a tag or hash it does not know (yapapi, golem-js and golem-sdk-cli read
it that way). Local providers do not boot VM images, so no image file exists here: each
known tag gets the sha3-224 of its own name as its hash, which is well formed and always
the same, and download links that point at this server (and answer 404).

Usage::

    with ImageRegistry(["golem/alpine:latest"]) as registry:
        GolemProvider(image_tag="golem/alpine:latest", registry_url=registry.url, ...)
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any, Dict, Iterable, List, Optional, Tuple, Type
from urllib.parse import parse_qs, urlsplit

from ._loopback import LoopbackServer

logger = logging.getLogger(__name__)

#: The tags the examples and the README use; a LocalNet knows these unless told otherwise.
DEFAULT_IMAGES = ("golem/alpine:latest", "golem/python:3.11-slim", "golem/python:latest")

#: What ``size`` says: the images are never downloaded, but clients may show it.
_SIZE = 1024 * 1024


def image_hash(tag: str) -> str:
    """The sha3-224 hash the loopback registry gives ``tag`` (56 hex digits)."""
    return hashlib.sha3_224(tag.encode()).hexdigest()


class ImageRegistry(LoopbackServer):
    """A threaded HTTP server on 127.0.0.1 that answers image look-ups.

    Args:
        images: the ``name:tag`` images it knows.
        port: 0 picks a free port.

    Attributes:
        lookups: ``(query, status)`` of every ``/v1/image/info`` request, in order.
    """

    name = "image registry"

    def __init__(self, images: Iterable[str] = DEFAULT_IMAGES, *, port: int = 0) -> None:
        self.tags: Dict[str, str] = {tag: image_hash(tag) for tag in images}
        self.lookups: List[Tuple[str, int]] = []
        super().__init__(port=port)
        self._lock = threading.Lock()

    def add(self, tag: str) -> str:
        """Know one more image; its hash."""
        with self._lock:
            self.tags[tag] = image_hash(tag)
            return self.tags[tag]

    def info(self, query: str) -> Tuple[int, Dict[str, Any]]:
        """The status and JSON body ``/v1/image/info?<query>`` gets."""
        params = {key: values[-1] for key, values in parse_qs(query).items()}
        with self._lock:
            if "tag" in params:
                tag: Optional[str] = params["tag"]
                sha3 = self.tags.get(params["tag"])
            elif "hash" in params:
                sha3 = params["hash"] if params["hash"] in self.tags.values() else None
                tag = next((t for t, h in self.tags.items() if h == sha3), None)
            else:
                return 400, {"error": "give tag=<name:tag> or hash=<sha3>"}
        if sha3 is None:
            what = f"tag {params['tag']}" if "tag" in params else f"hash {params['hash']}"
            return 404, {"error": f"image not found: {what}"}
        link = f"{self.url.split('://', 1)[1]}/v1/image/download?hash={sha3}"
        return 200, {"tag": tag, "sha3": sha3, "size": _SIZE, "http": f"http://{link}", "https": f"https://{link}"}

    def _handler(self) -> Type[BaseHTTPRequestHandler]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/v1/image/info":
                    status, body = registry.info(parts.query)
                    with registry._lock:
                        registry.lookups.append((parts.query, status))
                else:  # downloads too: local providers never fetch an image
                    status, body = 404, {"error": f"no such resource: {parts.path}"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("image registry: " + format, *args)

        return Handler
