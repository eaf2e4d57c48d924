"""``golem-tasks localnet`` / ``python -m golem_tasks.localnet``: run a local network.

Commands::

    up [--providers N]   start everything, print the client environment, run until
                         Ctrl-C / SIGTERM / ``down``, then stop everything
    env                  print ``export YAGNA_API_URL=... YAGNA_APPKEY=...
                         GOLEM_TASKS_REGISTRY_URL=...`` of the running one
    down                 stop the running one (SIGTERM to ``up``, wait for it)

``up`` records its pid and client settings in a state file (``--state-file``; default
in ``$XDG_RUNTIME_DIR`` or the temp directory) that ``env`` and ``down`` read.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional

from . import DEFAULT_IMAGES
from .errors import LocalNetError
from .network import LocalNet


def default_state_file() -> str:
    directory = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return os.path.join(directory, f"golem-tasks-localnet-{os.getuid()}.json")


def _read_state(path: str) -> Dict[str, Any]:
    try:
        with open(path) as f:
            return dict(json.load(f))
    except FileNotFoundError:
        raise SystemExit(f"no local network is running (no {path})") from None


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (exited, not yet reaped by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _exports(env: Dict[str, str]) -> str:
    return "\n".join(f"export {key}={value}" for key, value in sorted(env.items()))


def image_files(values: Optional[List[str]]) -> Dict[str, Optional[str]]:
    """The registry's images: the examples' tags, plus each ``TAG=FILE`` given.

    Raises:
        ValueError: a value is not ``TAG=FILE`` or the file does not exist.
    """
    images: Dict[str, Optional[str]] = {tag: None for tag in DEFAULT_IMAGES}
    for value in values or ():
        tag, _, path = value.partition("=")
        if not tag or not path:
            raise ValueError(f"--image {value!r}: give TAG=FILE, e.g. --image me/tool:1=tool.gvmi")
        if not os.path.isfile(path):
            raise ValueError(f"--image {value!r}: {path} is not a file (build one with gvmkit-build)")
        images[tag] = os.path.abspath(path)
    return images


def up(args: argparse.Namespace) -> int:
    if os.path.exists(args.state_file) and _alive(int(_read_state(args.state_file).get("pid", 0))):
        print(
            f"a local network is already running ({args.state_file}); stop it with 'down'",
            file=sys.stderr,
        )
        return 1
    stop = threading.Event()
    # SIGTERM (from `down`) ends the wait like Ctrl-C does; both then stop everything.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        images = image_files(args.image)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    net = LocalNet(
        providers=args.providers, sandbox=args.sandbox, workdir=args.workdir, debug=args.debug,
        images=images,
    )
    try:
        net.start()
    except LocalNetError as exc:
        print(f"local network did not start: {exc}", file=sys.stderr)
        return 1
    try:
        state = {"pid": os.getpid(), "env": net.env, "workdir": net.workdir}
        with open(args.state_file, "w") as f:
            json.dump(state, f)
        print(_exports(net.env), flush=True)
        assert net.requestor is not None
        print(
            f"# requestor {net.requestor.node_id}; started in {net.timings['total']:.1f} s",
            file=sys.stderr,
        )
        for provider in net.providers:
            print(f"# {provider.name} {provider.node_id}", file=sys.stderr)
        print("# Ctrl-C or 'down' stops it", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        net.stop()
        if (
            os.path.exists(args.state_file)
            and _read_state(args.state_file).get("pid") == os.getpid()
        ):
            os.unlink(args.state_file)
    return 0


def env(args: argparse.Namespace) -> int:
    state = _read_state(args.state_file)
    if not _alive(int(state["pid"])):
        raise SystemExit(f"the local network recorded in {args.state_file} is not running")
    print(_exports(state["env"]))
    return 0


def down(args: argparse.Namespace) -> int:
    state = _read_state(args.state_file)
    pid = int(state["pid"])
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + args.timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            print(
                f"local network (pid {pid}) still running after {args.timeout:g} s", file=sys.stderr
            )
            return 1
    if os.path.exists(args.state_file):
        os.unlink(args.state_file)
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="golem-tasks localnet", description=__doc__.split("\n")[0])
    main.add_argument("--state-file", default=default_state_file())
    commands = main.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start a local network and run until stopped")
    start.add_argument("--providers", type=int, default=2)
    start.add_argument("--sandbox", choices=("bwrap", "host"), default=None)
    start.add_argument("--workdir", default=None, help="keep the daemon's data here")
    start.add_argument("--debug", action="store_true", help="daemon debug logs")
    start.add_argument("--image", action="append", metavar="TAG=FILE",
                       help="serve this GVMI file under TAG; providers run commands in it (repeatable)")
    start.add_argument("-v", "--verbose", action="store_true", help="log what the providers do")
    start.set_defaults(run=up)
    commands.add_parser("env", help="print the client environment").set_defaults(run=env)
    stop = commands.add_parser("down", help="stop the running local network")
    stop.add_argument("--timeout", type=float, default=30.0)
    stop.set_defaults(run=down)
    return main


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    level = logging.INFO if getattr(args, "verbose", False) else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(message)s")
    return int(args.run(args))
