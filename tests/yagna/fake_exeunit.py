"""The exe-unit half of the fake daemon: runs an ExeScript the way yagna's exe-unit
does (yagna-protocol.md §3), with a real shell on this machine.

Each activity has a root directory standing in for the VM: ``/golem/...`` in any
argument becomes ``<root>/golem/...``, then ``run`` commands execute for real with
``subprocess`` (so the provider's shell snippets - inline transfers, the exit-code
wrapper - are exercised as written). A command stops the batch when it fails, and
later commands never run. ``delays`` simulate slow commands without sleeping: a
command's result becomes visible only when its time has come.
"""

from __future__ import annotations

import json
import math
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

#: handler(args) -> None to run for real, or (exit code, stdout, stderr[, delay seconds]).
RunHandler = Callable[[List[str]], Optional[tuple]]
#: exit code, stdout, stderr, message, delay seconds
Outcome = Tuple[int, Optional[str], Optional[str], Optional[str], float]


def now_text() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Batch:
    """One executed ExeScript: per index its result JSON and when it becomes visible."""

    def __init__(self, results: List[Tuple[float, Dict[str, Any]]], total: int) -> None:
        self.results = results
        self.total = total

    def visible(self, at: float) -> List[Dict[str, Any]]:
        shown = []
        for ready, result in self.results:
            if ready > at:
                break
            shown.append(result)
        return shown

    def ready_at(self, index: int) -> float:
        """When result ``index`` shows (inf: never, e.g. after an earlier failure)."""
        return self.results[index][0] if index < len(self.results) else math.inf


class ExeUnit:
    """One activity's VM: a root directory, a state, and its batches."""

    def __init__(self, root: Path, *, handler: Optional[RunHandler] = None, deploy_error: Optional[str] = None,
                 urls: Optional[Dict[str, bytes]] = None, uploads: Optional[Dict[str, bytes]] = None,
                 deploy_gate: Optional[threading.Event] = None) -> None:
        self.root = root
        for name in ("input", "output", "work"):
            (root / "golem" / name).mkdir(parents=True, exist_ok=True)
        self.handler = handler
        self.deploy_error = deploy_error
        self.deploy_gate = deploy_gate  # the exec call that deploys waits for it: a slow image download
        self.urls = {} if urls is None else urls
        self.uploads = {} if uploads is None else uploads
        self.state = "Initialized"
        self.batches: Dict[str, Batch] = {}
        self.scripts: List[List[Dict[str, Any]]] = []

    def host(self, text: str) -> str:
        return text.replace("/golem/", f"{self.root}/golem/")

    def execute(self, batch_id: str, script: List[Dict[str, Any]]) -> None:
        self.scripts.append(script)
        clock = time.monotonic()
        results: List[Tuple[float, Dict[str, Any]]] = []
        for index, command in enumerate(script):
            (name, body), = command.items()
            code, stdout, stderr, message, delay = self._one(name, body)
            clock += delay
            last = index == len(script) - 1
            results.append((clock, {
                "index": index, "eventDate": now_text(), "result": "Ok" if code == 0 else "Error",
                "stdout": stdout, "stderr": stderr, "message": message,
                "isBatchFinished": last or code != 0}))
            if code != 0 or math.isinf(clock):
                break
        self.batches[batch_id] = Batch(results, len(script))

    def _one(self, name: str, body: Dict[str, Any]) -> "Outcome":
        if name == "deploy":
            if self.deploy_gate is not None:
                assert self.deploy_gate.wait(60), "the test never let the deploy finish"
            if self.deploy_error:
                return -1, None, None, self.deploy_error, 0.0
            self.state = "Deployed"
            return 0, None, None, None, 0.0
        if name == "start":
            self.state = "Ready"
            return 0, None, None, None, 0.0
        if self.state != "Ready":
            return -1, None, None, "Activity is initialized - deploy() command is expected now", 0.0
        if name == "transfer":
            return self._transfer(body["from"], body["to"])
        if name == "run":
            return self._run(body)
        return -1, None, None, f"unsupported command {name}", 0.0

    def _run(self, body: Dict[str, Any]) -> Outcome:
        args = [body["entry_point"], *body.get("args", [])]
        answer = self.handler(args) if self.handler is not None else None
        if answer is None:
            done = subprocess.run([self.host(a) for a in args], capture_output=True, timeout=60)
            code, out, err, delay = done.returncode, done.stdout, done.stderr, 0.0
        else:
            code, out, err = answer[:3]
            delay = answer[3] if len(answer) > 3 else 0.0
            out, err = out.encode(), err.encode()
        captured = "capture" in body
        stdout = out.decode("utf-8", "replace").replace(f"{self.root}/golem/", "/golem/") if captured else None
        stderr = err.decode("utf-8", "replace").replace(f"{self.root}/golem/", "/golem/") if captured else None
        message = None if code == 0 else f"ExeScript command exited with code {code}"
        return code, stdout, stderr, message, delay

    def _transfer(self, source: str, target: str) -> Tuple[int, None, None, Optional[str], float]:
        try:
            data = self._read(source)
            self._write(target, data)
        except (KeyError, OSError) as exc:
            return -1, None, None, f"Local service error: Transfer error: {exc}", 0.0
        return 0, None, None, None, 0.0

    def _read(self, url: str) -> bytes:
        if url.startswith("container:"):
            return Path(self.host(url[len("container:"):])).read_bytes()
        return self.urls[url.split(":", 3)[3] if url.startswith("hash:") else url]

    def _write(self, url: str, data: bytes) -> None:
        if url.startswith("container:"):
            path = Path(self.host(url[len("container:"):]))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        else:
            self.uploads[url] = data


def script_of(body: bytes) -> List[Dict[str, Any]]:
    return json.loads(json.loads(body)["text"])
