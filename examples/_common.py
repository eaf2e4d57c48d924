"""Command-line options every example shares."""

from __future__ import annotations

import argparse
import logging
from typing import List, Optional


def parser(doc: str, image: str) -> argparse.ArgumentParser:
    """The shared options; the description is the first paragraph of the example's
    docstring, whole (its first line alone stops mid-sentence)."""
    description = " ".join(doc.split("\n\n")[0].split())
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--provider", default=None, choices=("local", "golem"),
                   help="where fragments run: 'local' (this machine, the default) or 'golem' (the Golem "
                        "Network through the yagna daemon named by YAGNA_API_URL and YAGNA_APPKEY); "
                        "GOLEM_TASKS_PROVIDER sets the default")
    p.add_argument("--image", default=image,
                   help=f"the VM image the golem provider boots, a tag or a hash (default: {image}); "
                        "the local provider ignores it")
    p.add_argument("--max-workers", type=int, default=None,
                   help="how many providers are engaged at once (default: the CPU count locally, 5 on Golem)")
    p.add_argument("--speculate", action="store_true",
                   help="start a backup copy of a fragment that runs much longer than the others on an idle "
                        "provider; the first copy to finish wins (every example's worker may safely run twice)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="log what the scheduler does (INFO level)")
    return p


def parse(p: argparse.ArgumentParser, argv: Optional[List[str]]) -> argparse.Namespace:
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args


def golem_options(args: argparse.Namespace) -> dict:
    return {"provider": args.provider, "image": args.image, "max_workers": args.max_workers,
            "speculate": args.speculate, "progress": False if args.no_progress else None}
