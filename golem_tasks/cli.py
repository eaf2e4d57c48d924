"""The ``golem-tasks`` command: ``golem-tasks localnet up|env|down`` and ``--version``."""

from __future__ import annotations

import os
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
  market scan [--image TAG] [--budget GLM] [--gpu] [--outbound URL] [--fragments N] [--seconds T]
                 [--providers K]
                 the offers the demand would take (the others with their reason) and the
                 cost of N fragments of T s on K providers (golem-tasks market scan --help)
  providers [--record PATH] [--forget ID]
                 how each provider did in earlier runs (the provider record)

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
    if args[0] == "market":
        return market_main(args[1:])
    if args[0] == "providers":
        return providers(args[1:])
    print(f"golem-tasks: unknown command {args[0]!r}\n\n{USAGE}", file=sys.stderr)
    return 2


def market_main(argv: List[str]) -> int:
    """``golem-tasks market scan``: a market preflight through the yagna daemon of
    ``YAGNA_APPKEY``/``YAGNA_API_URL``; nothing is reserved, signed or spent. Exit status
    0 when some offer matches, 1 when none does, 2 on a usage or daemon error."""
    import argparse

    parser = argparse.ArgumentParser(prog="golem-tasks market", description=market_main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    scan = commands.add_parser("scan", help="list the offers and price a job")
    scan.add_argument("--image", help="image tag or hash (default: GOLEM_TASKS_IMAGE, else golem/alpine:latest)")
    scan.add_argument("--budget", help="GLM the job may spend (default 1)")
    scan.add_argument("--subnet", help="market subnet (default: YAGNA_SUBNET, else public)")
    scan.add_argument("--network", help="payment network (default: YAGNA_PAYMENT_NETWORK, else the testnet)")
    scan.add_argument("--max-cpu-hour-price", help="refuse offers above this GLM per CPU-hour")
    scan.add_argument("--max-env-hour-price", help="refuse offers above this GLM per hour")
    scan.add_argument("--max-start-price", help="refuse offers that start above this GLM")
    scan.add_argument("--fragments", type=int, default=10, help="fragments to price (default 10)")
    scan.add_argument("--seconds", type=float, default=60.0, help="seconds one fragment runs (default 60)")
    scan.add_argument("--providers", type=int, default=5, help="providers working at once (default 5)")
    scan.add_argument("--wait", type=float, default=5.0, help="most seconds to wait for offers (default 5)")
    scan.add_argument("--gpu", action="store_true", help="ask for a GPU (the vm-nvidia runtime); shows the cards")
    scan.add_argument("--outbound", metavar="URL", action="append", default=None,
                      help="a URL the job reaches (repeatable): offers without outbound support are named")
    options = parser.parse_args(argv)

    from .errors import GolemTasksError
    from .providers.yagna import GolemProvider

    settings: dict = {"storage": None}
    image = options.image or os.environ.get("GOLEM_TASKS_IMAGE") or "golem/alpine:latest"
    settings["image_tag" if ":" in image else "image_hash"] = image
    for name in ("budget", "max_cpu_hour_price", "max_env_hour_price", "max_start_price"):
        value = getattr(options, name)
        if value is not None:
            settings[name] = value  # a decimal string, checked by GolemProvider
    if options.subnet:
        settings["subnet_tag"] = options.subnet
    if options.network:
        settings["payment_network"] = options.network
    if options.gpu:
        settings["gpu"] = True
    if options.outbound:
        settings["outbound"] = options.outbound
    try:
        with GolemProvider.from_env(**settings) as provider:
            result = provider.scan(seconds=options.wait)
            estimate = result.estimate(options.fragments, options.seconds, options.providers)
    except GolemTasksError as exc:
        print(f"golem-tasks market scan: {exc}", file=sys.stderr)
        return 2
    print(result.format(estimate))
    return 0 if result.matching else 1


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
