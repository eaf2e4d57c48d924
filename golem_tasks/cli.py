"""The ``golem-tasks`` command: ``golem-tasks localnet up|env|down``."""

from __future__ import annotations

import sys
from typing import List, Optional

USAGE = """usage: golem-tasks COMMAND ...

commands:
  localnet up [--providers N]   run a whole Golem network on this machine (127.0.0.1 only)
  localnet env                  print its YAGNA_API_URL, YAGNA_APPKEY, GOLEM_TASKS_REGISTRY_URL
  localnet down                 stop it

localnet needs the extra: pip install 'golem_tasks[localnet]'"""


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    if args[0] == "localnet":
        from .localnet.cli import main as localnet_main
        return int(localnet_main(args[1:]) or 0)
    print(f"golem-tasks: unknown command {args[0]!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
