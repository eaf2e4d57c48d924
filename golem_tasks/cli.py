"""The ``golem-tasks`` command: ``golem-tasks localnet up|env|down``."""

from __future__ import annotations

import sys
from typing import List, Optional

USAGE = """usage: golem-tasks COMMAND ...

commands:
  localnet up [--providers N]   run a whole Golem network on this machine (127.0.0.1 only)
  localnet env                  print its YAGNA_API_URL, YAGNA_APPKEY, GOLEM_TASKS_REGISTRY_URL
  localnet down                 stop it
  providers [--record PATH] [--forget ID]
                                how each provider did in earlier runs (the provider record)

localnet needs the extra: pip install 'golem_tasks[localnet]'"""


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    if args[0] == "localnet":
        from .localnet.cli import main as localnet_main
        return int(localnet_main(args[1:]) or 0)
    if args[0] == "providers":
        return providers(args[1:])
    print(f"golem-tasks: unknown command {args[0]!r}\n\n{USAGE}", file=sys.stderr)
    return 2


def providers(argv: List[str]) -> int:
    """``golem-tasks providers``: print the provider record, or forget a provider."""
    import argparse

    from .provider_record import ProviderRecord, default_path

    parser = argparse.ArgumentParser(prog="golem-tasks providers",
                                     description="How each provider did in earlier runs.")
    parser.add_argument("--record", default=None, help=f"the record file (default {default_path()})")
    parser.add_argument("--forget", metavar="ID", action="append", default=[],
                        help="drop a provider from the record (repeatable)")
    options = parser.parse_args(argv)
    with ProviderRecord(options.record or default_path()) as record:
        for provider_id in options.forget:
            print(f"forgot {provider_id} ({record.forget(provider_id)} run(s))")
        if not options.forget:
            print(record.format())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
