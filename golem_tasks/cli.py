"""The ``golem-tasks`` command: ``golem-tasks localnet up|env|down`` and ``--version``."""

from __future__ import annotations

import sys
from typing import List, Optional

USAGE = """usage: golem-tasks [--version] COMMAND ...

commands:
  localnet up [--providers N] [--detach]
                 run a whole Golem network on this machine (127.0.0.1 only): the yagna
                 daemon, N providers, a payment chain stub and an image registry
  localnet env   print the export lines of the running one (YAGNA_API_URL, YAGNA_APPKEY,
                 GOLEM_TASKS_REGISTRY_URL): eval "$(golem-tasks localnet env)"
  localnet down  stop it

options:
  -h, --help     show this help and exit
  -V, --version  print the golem_tasks version and exit

'golem-tasks localnet --help' explains every localnet option. localnet needs the
extra: pip install 'golem_tasks[localnet]' (from a checkout: pip install '.[localnet]')."""


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from . import __version__
        print(f"golem-tasks {__version__}")
        return 0
    if args[0] == "localnet":
        from .localnet.cli import main as localnet_main
        return int(localnet_main(args[1:]) or 0)
    print(f"golem-tasks: unknown command {args[0]!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
