"""The exe-unit's runtime: ExeScript commands executed in a local sandbox.

This plays yagna's exe-unit state machine (``exe-unit/src/exe_unit.rs``,
``exec_stateful``) over a :class:`golem_tasks.providers.local.LocalProvider` session:
``deploy`` downloads the image the agreement names (``golem.srv.comp.task_package``)
and engages a fresh sandbox running in it (bubblewrap); when the registry has no file
for the image (a tag given without one), commands run on this machine's root file
system, in bubblewrap when available. ``deploy``'s extra ``volumes`` are mounted as
fresh writable directories (:mod:`.volumes`). ``start`` makes it Ready,
``run`` executes a program with real exit codes and captured output, ``transfer``
copies between ``container:`` paths and URLs. State changes are reported through
``on_state`` as ``[current, pending]`` pairs, the way the real exe-unit does.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

from ...commands import DownloadFile, Run, SendFile
from ...errors import GolemTasksError
from ...providers.images import file_hash
from ...providers.local import LocalProvider, LocalSession
from . import capture as _capture
from . import volumes as _volumes
from .faults import NONE, Faults
from .batch import Batch, command_name
from .transfer import TransferError, Transfers, container_path

logger = logging.getLogger(__name__)

StatePair = List[Optional[str]]

_INVALID_STATE: Dict[Tuple[str, Optional[str]], str] = {
    ("Initialized", None): "Activity is initialized - deploy() command is expected now",
    ("Deployed", None): "Activity is deployed - start() command is expected now",
    ("Ready", None): "Cannot send command after a successful start()",
}


class CommandFailed(Exception):
    """A command failed; ``code`` and the message become its result (as in yagna)."""

    def __init__(self, message: str, code: int = -1) -> None:
        super().__init__(message)
        self.code = code


def _state_error(state: StatePair, busy: bool = False) -> CommandFailed:
    pair = f"StatePair({state[0]}, {'Some(' + str(state[1]) + ')' if state[1] else 'None'})"
    if busy:
        return CommandFailed(f"Local service error: State error: Busy: {pair}")
    text = _INVALID_STATE.get((str(state[0]), state[1]))
    if text is None:
        text = f"This command is not allowed when activity is in the {state[0]} state"
    return CommandFailed(f"Local service error: State error: {text}")


class Runtime:
    """Runs batches, one command at a time, against one sandbox session.

    Args:
        sandbox: engages the session at ``deploy`` (its settings also serve an image's).
        transfers: URL transfers for ``transfer`` commands.
        on_state: called with each new ``[current, pending]`` state pair.
        task_package: the agreement's ``golem.srv.comp.task_package``
            (``hash:sha3:<hash>:<url>``), None when it names none.
        outbound: the URLs of the agreement's manifest and whether it asks for every URL:
            commands reach those hosts only, through the local sandbox's filtering proxy
            (a URL outside them fails with a 403 naming the manifest), or the whole
            network when unrestricted; without a manifest, the sandbox's own setting.
        faults: test knobs: slower or failing ``run`` commands (:class:`.faults.Faults`).
    """

    def __init__(
        self, sandbox: LocalProvider, transfers: Transfers, on_state: Callable[[StatePair], None],
        task_package: Optional[str] = None, outbound: Tuple[Tuple[str, ...], bool] = ((), False),
        faults: Faults = NONE,
    ) -> None:
        self.sandbox = sandbox
        self.outbound, self.unrestricted = outbound
        self.faults = faults
        self.task_package = task_package
        self._image_provider: Optional[LocalProvider] = None
        self.transfers = transfers
        self.on_state = on_state
        self.state: StatePair = ["Initialized", None]
        self.cpu_seconds = 0.0  # wall time of programs: the sandbox reports no CPU time
        self._session: Optional[LocalSession] = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._scratch = tempfile.mkdtemp(prefix="golem-exeunit-")

    def _set_state(self, state: StatePair) -> None:
        self.state = state
        self.on_state(list(state))

    # -- batches ---------------------------------------------------------------------

    def run_batch(self, batch: Batch) -> None:
        """Execute ``batch`` (in the caller's thread); stops at the first failing command."""
        try:
            for index, command in enumerate(batch.commands):
                if self._stopped.is_set():
                    break
                batch.started(index)
                code, message, stdout, stderr = self._execute(command, batch, index)
                batch.finished(index, code, message, stdout, stderr)
                if code != 0:
                    logger.info("batch %s stopped at command %d: %s", batch.id, index, message)
                    break
        finally:
            batch.close()

    def _execute(
        self, command: Dict[str, Any], batch: Batch, index: int
    ) -> Tuple[int, Optional[str], Any, Any]:
        name = command_name(command)
        body = command[name] or {}
        try:
            if name in ("sign", "terminate"):
                if name == "terminate":
                    self._set_state(["Initialized", None])
                return 0, None, None, None
            return self._stateful(name, body, batch, index)
        except CommandFailed as exc:
            return exc.code, str(exc), None, None
        except Exception as exc:  # never leave a batch without a result
            logger.exception("command %s failed unexpectedly", name)
            return -1, f"Runtime error: {exc}", None, None

    def _stateful(
        self, name: str, body: Dict[str, Any], batch: Batch, index: int
    ) -> Tuple[int, Optional[str], Any, Any]:
        with self._lock:
            state = list(self.state)
            if state[1] is not None:
                raise _state_error(state, busy=True)
            if state[0] == "Initialized" and name == "deploy":
                pending: StatePair = ["Initialized", "Deployed"]
            elif state[0] == "Deployed" and name == "start":
                pending = ["Deployed", "Ready"]
            elif state[0] == "Ready" and name not in ("deploy", "start"):
                pending = ["Ready", "Ready"]
            else:
                raise _state_error(state)
            self._set_state(pending)
        try:
            return self._dispatch(name, body, batch, index)
        finally:
            # A failed deploy still ends Deployed: yagna sets the target state regardless.
            self._set_state([pending[1], None])

    def _dispatch(
        self, name: str, body: Dict[str, Any], batch: Batch, index: int
    ) -> Tuple[int, Optional[str], Any, Any]:
        if name == "deploy":
            if self._session is None:
                try:
                    volumes = _volumes.requested(body)
                except ValueError as exc:
                    raise CommandFailed(str(exc)) from None
                self._session = self._deploy(volumes)
            return 0, None, None, None
        if name == "start":
            return 0, None, None, None
        if name == "run":
            return self._run(body, batch, index)
        if name == "transfer":
            self._transfer(str(body.get("from", "")), str(body.get("to", "")))
            return 0, None, None, None
        raise CommandFailed(f"ExeScript command error: unsupported command {name}")

    # -- run ---------------------------------------------------------------------------

    def _run(
        self, body: Dict[str, Any], batch: Batch, index: int
    ) -> Tuple[int, Optional[str], Any, Any]:
        session = self._require_session()
        args = (str(body["entry_point"]), *[str(a) for a in body.get("args") or ()])
        capture = body.get("capture")
        # Streamed output goes out as runtime events while the program runs.
        live = _capture.LiveOutput(capture, lambda stream, value: batch.output(index, stream, value))
        if self.faults.fail_runs is not None:
            return 1, "ExeScript command exited with code 1", None, \
                _capture.render(self.faults.fail_runs.encode(), capture, "stderr")
        started = time.monotonic()
        try:
            result = session.execute([Run(args, check=False, on_output=live if live.wanted else None)])[0]
            # A slower machine: the result comes out later, and the time is billed.
            self._stopped.wait(self.faults.extra_wait(time.monotonic() - started))
        except GolemTasksError as exc:
            raise CommandFailed(f"Runtime error: {exc}") from exc
        finally:
            self.cpu_seconds += time.monotonic() - started
        out, err = result.stdout.encode(), result.stderr.encode()
        stdout, stderr = (
            _capture.render(out, capture, "stdout"),
            _capture.render(err, capture, "stderr"),
        )
        if result.exit_code != 0:
            return (
                result.exit_code,
                f"ExeScript command exited with code {result.exit_code}",
                stdout,
                stderr,
            )
        return 0, None, stdout, stderr

    # -- transfer ----------------------------------------------------------------------

    def _transfer(self, source: str, destination: str) -> None:
        session = self._require_session()
        local = os.path.join(self._scratch, uuid.uuid4().hex)
        try:
            src_path = container_path(source)
            if src_path is not None:
                session.execute([DownloadFile(src_path, local)])
            else:
                self.transfers.fetch(source, local)
            dst_path = container_path(destination)
            if dst_path is not None:
                _volumes.check_target(dst_path, session.info.volumes)
                session.execute([SendFile(local, dst_path)])
            else:
                self.transfers.push(local, destination)
        except (TransferError, GolemTasksError, OSError, ValueError) as exc:
            raise CommandFailed(f"Local service error: Transfer error: {exc}") from exc
        finally:
            if os.path.exists(local):
                os.unlink(local)

    def _deploy(self, volumes: Tuple[str, ...] = ()) -> LocalSession:
        """A session in the agreement's image when the registry serves its file, else
        in the shared sandbox (this machine's root file system); one of its own when
        the deploy asks for extra volumes."""
        image = self._download_image()
        if image is None and not volumes and not self.outbound and not self.unrestricted:
            return self.sandbox.engage()
        cache = os.path.join(str(self.sandbox.root), "images")
        root = tempfile.mkdtemp(prefix="image-" if image else "activity-", dir=str(self.sandbox.root))
        try:
            golem_volumes, mounts = _volumes.layout(volumes, os.path.join(root, "volumes"))
            # A manifest's network (outbound hook, outbound13): its URLs only, or all of it.
            network = self.unrestricted or (self.sandbox.network and not self.outbound)
            provider = LocalProvider(
                root, sandbox=self.sandbox.sandbox, network=network, image=image, image_cache=cache,
                volumes=golem_volumes, mounts=mounts, outbound=None if self.unrestricted else self.outbound or None)
        except GolemTasksError as exc:
            shutil.rmtree(root, ignore_errors=True)
            raise CommandFailed(f"Local service error: Deploy error: {exc}") from exc
        self._image_provider = provider
        return provider.engage()

    def _download_image(self) -> Optional[str]:
        """The GVMI file of the task package, downloaded once per hash; None when the
        agreement names no image or its URL serves none (a tag the loopback registry
        knows without a file, or a made-up URL): commands then run on the host's root."""
        parts = (self.task_package or "").split(":", 3)
        if len(parts) != 4 or parts[:2] != ["hash", "sha3"] or not parts[3].startswith("http"):
            return None
        sha3, url = parts[2], parts[3]
        target = os.path.join(str(self.sandbox.root), "images", f"{sha3}.gvmi")
        if os.path.isfile(target):
            return target
        os.makedirs(os.path.dirname(target), exist_ok=True)
        partial = f"{target}.{uuid.uuid4().hex}.part"
        # localnet is offline: never through a proxy the environment names.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            try:
                with opener.open(url, timeout=60) as answer, open(partial, "wb") as out:
                    shutil.copyfileobj(answer, out)
            except (urllib.error.URLError, OSError) as exc:
                logger.info("no image file at %s (%s): commands run on this machine's root file system", url, exc)
                return None
            digest = file_hash(partial)
            if digest != sha3:
                raise CommandFailed(f"Local service error: Deploy error: image {url} has hash {digest}, "
                                    f"the agreement names {sha3}")
            os.replace(partial, target)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
        return target

    def _require_session(self) -> LocalSession:
        if self._session is None:
            raise CommandFailed("Runtime error: no sandbox deployed")
        return self._session

    # -- shutdown ----------------------------------------------------------------------

    def stop(self) -> None:
        """Kill whatever runs, release the sandbox and remove scratch files. Idempotent."""
        self._stopped.set()
        session, self._session = self._session, None
        if session is not None:
            session.release()
        provider, self._image_provider = self._image_provider, None
        if provider is not None:
            provider.close()
            shutil.rmtree(str(provider.root), ignore_errors=True)
        shutil.rmtree(self._scratch, ignore_errors=True)
