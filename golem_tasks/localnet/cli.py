"""``golem-tasks localnet`` / ``python -m golem_tasks.localnet``: run a local network.

The help text the command prints is :data:`DESCRIPTION` (plain text); ``up`` records
its pid and client settings in a state file that ``env`` and ``down`` read.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional

from . import DEFAULT_IMAGES
from ..providers.gpu import GpuInfo
from .errors import LocalNetError
from .network import LocalNet
from .provider.negotiator import Negotiator


DESCRIPTION = """\
Run a whole Golem network on this machine, on 127.0.0.1 only: the real yagna daemon
(from the golem-node package), a loopback payment chain, a loopback image registry and
N providers that run commands in the local sandbox.

commands:
  up     start it and print the client environment as export lines; it then runs in
         this terminal until Ctrl-C or 'down' (use a second shell), or, with --detach,
         in the background while the command returns
  env    print the export lines of the running network again: each 'up' makes new
         ports and a new app key, so re-export after every 'up':
           eval "$(golem-tasks localnet env)"
  down   stop the running network (the one recorded in the state file)

'golem-tasks localnet up --help' explains the options of 'up'."""


def default_state_file() -> str:
    directory = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return os.path.join(directory, f"golem-tasks-localnet-{os.getuid()}.json")


def _read_state(path: str) -> Dict[str, Any]:
    try:
        with open(path) as f:
            return dict(json.load(f))
    except FileNotFoundError:
        raise SystemExit(f"no local network is running (no {path})") from None


def _write_state(path: str, state: Dict[str, Any]) -> None:
    # Written aside and renamed: a reader (env, a detached up) never sees half of it.
    partial = f"{path}.{os.getpid()}.part"
    with open(partial, "w") as f:
        json.dump(state, f)
    os.replace(partial, path)


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


def _running(state_file: str) -> bool:
    return os.path.exists(state_file) and _alive(int(_read_state(state_file).get("pid", 0)))


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


def gpu_card(value: str) -> GpuInfo:
    """The card of ``--gpu MODEL[:GIB]``.

    Raises:
        ValueError: no model, or a memory that is not a positive number.
    """
    model, colon, memory = value.rpartition(":")
    if not colon:
        model, memory = value, ""
    try:
        gib = float(memory) if memory else None
    except ValueError:
        gib = -1.0
    if not model.strip() or (gib is not None and not gib > 0):
        raise ValueError(f"--gpu {value!r}: give MODEL or MODEL:GIB, e.g. --gpu 'NVIDIA GeForce RTX 3090:24'")
    return GpuInfo(model=model.strip(), memory_gib=gib)


def up(args: argparse.Namespace) -> int:
    if _running(args.state_file):
        print(
            f"a local network is already running ({args.state_file}); stop it with 'down'",
            file=sys.stderr,
        )
        return 1
    if args.detach:
        return _up_detached(args)
    stop = threading.Event()
    # SIGTERM (from `down`) ends the wait like Ctrl-C does; both then stop everything.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        images = image_files(args.image)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        gpus = [gpu_card(value) for value in args.gpu or ()]
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    net = LocalNet(
        providers=args.providers, sandbox=args.sandbox, workdir=args.workdir, debug=args.debug,
        images=images, gpus=gpus, negotiators=_outbound_negotiators(args),
    )
    try:
        net.start()
    except LocalNetError as exc:
        print(f"local network did not start: {exc}", file=sys.stderr)
        return 1
    try:
        state = {"pid": os.getpid(), "env": net.env, "workdir": net.workdir}
        _write_state(args.state_file, state)
        print(_exports(net.env), flush=True)
        assert net.requestor is not None
        print(
            f"# requestor {net.requestor.node_id}; started in {net.timings['total']:.1f} s",
            file=sys.stderr,
        )
        for provider in net.providers:
            print(f"# {provider.name} {provider.node_id}", file=sys.stderr)
        print("# Ctrl-C or 'golem-tasks localnet down' stops it", file=sys.stderr, flush=True)
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


def _outbound_negotiators(args: argparse.Namespace) -> Optional[List[Negotiator]]:
    """Providers with the outbound rules asked for (None: the defaults)."""
    if args.outbound_rule is None and not args.outbound_whitelist:
        return None
    rules: Dict[str, Any] = {"outbound_whitelist": tuple(args.outbound_whitelist or ())}
    if args.outbound_rule is not None:
        rules["outbound_rule"] = args.outbound_rule
    return [Negotiator(**rules) for _ in range(args.providers)]


def _up_detached(args: argparse.Namespace) -> int:
    """Run ``up`` (without ``--detach``) in a new session, wait until it recorded its
    state, print the exports and return; its output goes to ``<state file>.log``."""
    log_path = args.state_file + ".log"
    command = [sys.executable, "-m", "golem_tasks.localnet", "--state-file", args.state_file, "up",
               "--providers", str(args.providers)]
    for flag, value in (("--sandbox", args.sandbox), ("--workdir", args.workdir)):
        if value is not None:
            command += [flag, value]
    command += ["--debug"] * args.debug + ["--verbose"] * args.verbose
    for image in args.image or ():
        command += ["--image", os.path.abspath(image) if "=" not in image else image]
    for card in args.gpu or ():
        command += ["--gpu", card]
    for domain in args.outbound_whitelist or ():
        command += ["--outbound-whitelist", domain]
    if args.outbound_rule is not None:
        command += ["--outbound-rule", args.outbound_rule]
    with open(log_path, "w") as log:
        # A new session: the network outlives this shell's Ctrl-C and the command itself.
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            print(f"local network did not start (exit code {child.returncode}):\n{_tail(log_path)}",
                  file=sys.stderr)
            return 1
        state = _state_of(args.state_file, child.pid)
        if state is not None:
            print(_exports(state["env"]), flush=True)
            print(f"# running in the background (pid {child.pid}, log {log_path}); "
                  "'golem-tasks localnet down' stops it", file=sys.stderr)
            return 0
        time.sleep(0.1)
    child.terminate()
    child.wait()
    print(f"local network did not start within {args.timeout:g} s:\n{_tail(log_path)}", file=sys.stderr)
    return 1


def _state_of(path: str, pid: int) -> Optional[Dict[str, Any]]:
    """The state ``pid`` recorded in ``path``, or None while it has not (yet)."""
    try:
        with open(path) as f:
            state = dict(json.load(f))
    except (FileNotFoundError, ValueError):  # not written yet, or half written
        return None
    return state if state.get("pid") == pid else None


def _tail(path: str, lines: int = 20) -> str:
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:]).rstrip()


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
    raw = argparse.RawDescriptionHelpFormatter
    main = argparse.ArgumentParser(prog="golem-tasks localnet", description=DESCRIPTION, formatter_class=raw)
    main.add_argument("--state-file", default=default_state_file(), metavar="PATH",
                      help="where 'up' records its pid and environment for 'env' and 'down' "
                           "(default: %(default)s)")
    commands = main.add_subparsers(dest="command", required=True, metavar="{up,env,down}")
    start = commands.add_parser(
        "up", help="start a local network", formatter_class=raw,
        description="Start a local network, print its client environment as export lines, and run it\n"
                    "until Ctrl-C or 'golem-tasks localnet down' (from a second shell), or with\n"
                    "--detach in the background.")
    start.add_argument("--providers", type=int, default=2, metavar="N",
                       help="how many local providers to run (default: 2)")
    start.add_argument("--detach", action="store_true",
                       help="run in the background: print the export lines once the network is up "
                            "and return; its output goes to the state file's path + '.log'")
    start.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                       help="with --detach: how long to wait for the network to come up (default: 120)")
    start.add_argument("--sandbox", choices=("bwrap", "host"), default=None,
                       help="how providers run commands: 'bwrap' (bubblewrap, isolated) or 'host' (plain "
                            "processes in a directory per provider); default: bwrap when it works here")
    start.add_argument("--workdir", default=None, metavar="DIR",
                       help="keep the daemon's data and the provider sandboxes here, and leave them "
                            "afterwards (default: a temporary directory, removed on stop)")
    start.add_argument("--debug", action="store_true", help="let the yagna daemon log at debug level")
    start.add_argument("--image", action="append", metavar="TAG=FILE",
                       help="serve this GVMI file under TAG; providers run commands in it (repeatable)")
    start.add_argument("--gpu", action="append", metavar="MODEL[:GIB]",
                       help="one more provider offering this card through the vm-nvidia runtime "
                            "(no CUDA: its commands run in the local sandbox too; repeatable)")
    start.add_argument("--outbound-whitelist", action="append", metavar="DOMAIN",
                       help="providers accept manifests whose URLs are on these domains (repeatable), like "
                            "'ya-provider whitelist add'; none by default, as a fresh ya-provider")
    start.add_argument("--outbound-rule", choices=("whitelist", "all", "none"), default=None,
                       help="ya-provider's everyone rule for outbound manifests (default: whitelist)")
    start.add_argument("-v", "--verbose", action="store_true",
                       help="log what the providers do (offers, agreements, activities)")
    start.set_defaults(run=up)
    commands.add_parser(
        "env", help="print the export lines of the running network",
        description='Print the export lines of the running network: eval "$(golem-tasks localnet env)".',
    ).set_defaults(run=env)
    stop = commands.add_parser("down", help="stop the running network",
                               description="Stop the running local network and wait until it has stopped.")
    stop.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                      help="how long to wait for it to stop (default: 30)")
    stop.set_defaults(run=down)
    return main


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    level = logging.INFO if getattr(args, "verbose", False) else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(message)s")
    return int(args.run(args))
