"""A loopback image registry: resolves image tags as ``registry.golem.network`` does.

Requestors look a VM image up with ``GET /v1/image/info?tag=<name:tag>`` (or
``?hash=<sha3>``) and get ``{"http", "https", "sha3", "size"}`` back; the public registry
answers 404 for a tag or hash it does not know (yapapi, golem-js and golem-sdk-cli read
it that way). A tag given with a GVMI file (``{"me/tool:1": "tool.gvmi"}``) is served as
the public registry does: the file's sha3-224 hash, its size, and a download link that
returns the file, which localnet's exe-units fetch and run (``providers/images.py``).
A tag given alone has no file: it gets the sha3-224 of its own name as its hash, which is
well formed and always the same, and a download link that answers 404; exe-units then
run commands on the host's root file system.

Usage::

    with ImageRegistry(["golem/alpine:latest"]) as registry:
        GolemProvider(image_tag="golem/alpine:latest", registry_url=registry.url, ...)
    with ImageRegistry({"me/tool:1": "/path/to/tool.gvmi"}) as registry: ...
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Type, Union
from urllib.parse import parse_qs, urlsplit

from ...providers.images import file_hash
from .loopback import LoopbackServer

logger = logging.getLogger(__name__)

#: The tags the examples and the README use; a LocalNet knows these unless told otherwise.
DEFAULT_IMAGES = ("golem/alpine:latest", "golem/python:3.11-slim", "golem/python:latest")

#: What ``size`` says of a tag without a file: clients may show it.
_SIZE = 1024 * 1024

#: Tags, or tags with the GVMI file each one names.
Images = Union[Iterable[str], Mapping[str, Optional[str]]]


def image_hash(tag: str) -> str:
    """The sha3-224 hash the loopback registry gives ``tag`` (56 hex digits)."""
    return hashlib.sha3_224(tag.encode()).hexdigest()


class ImageRegistry(LoopbackServer):
    """A threaded HTTP server on 127.0.0.1 that answers image look-ups.

    Args:
        images: the ``name:tag`` images it knows, or a mapping of tags to GVMI files
            (None: no file).
        port: 0 picks a free port.

    Attributes:
        lookups: ``(query, status)`` of every ``/v1/image/info`` request, in order.
        files: the GVMI file of each hash that has one.
    """

    name = "image registry"

    def __init__(self, images: Images = DEFAULT_IMAGES, *, port: int = 0) -> None:
        self.tags: Dict[str, str] = {}
        self.files: Dict[str, str] = {}
        self.lookups: List[Tuple[str, int]] = []
        self._lock = threading.Lock()
        pairs = images.items() if isinstance(images, Mapping) else ((tag, None) for tag in images)
        for tag, path in pairs:
            self.add(tag, path)
        super().__init__(port=port)

    def add(self, tag: str, path: Optional[str] = None) -> str:
        """Know one more image, with its GVMI file when given; its hash."""
        sha3 = image_hash(tag) if path is None else file_hash(os.fspath(path))
        with self._lock:
            self.tags[tag] = sha3
            if path is not None:
                self.files[sha3] = os.path.abspath(os.fspath(path))
            return sha3

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
        path = self.files.get(sha3)
        size = os.path.getsize(path) if path else _SIZE
        return 200, {"tag": tag, "sha3": sha3, "size": size, "http": f"http://{link}", "https": f"https://{link}"}

    def _handler(self) -> Type[BaseHTTPRequestHandler]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/v1/image/download":
                    sha3 = parse_qs(parts.query).get("hash", [""])[-1]
                    with registry._lock:
                        path = registry.files.get(sha3)
                    if path is not None and self._send_file(path):
                        return
                    status, body = 404, {"error": f"no image file for hash {sha3}"}
                elif parts.path == "/v1/image/info":
                    status, body = registry.info(parts.query)
                    with registry._lock:
                        registry.lookups.append((parts.query, status))
                else:
                    status, body = 404, {"error": f"no such resource: {parts.path}"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _send_file(self, path: str) -> bool:
                try:
                    image = open(path, "rb")
                except OSError:
                    return False
                with image:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(os.fstat(image.fileno()).st_size))
                    self.end_headers()
                    shutil.copyfileobj(image, self.wfile)
                return True

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("image registry: " + format, *args)

        return Handler
