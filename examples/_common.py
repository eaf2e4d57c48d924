"""Command-line options every example shares."""

from __future__ import annotations

import argparse
import logging
from typing import List, Optional


def parser(description: str, image: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--provider", default=None, choices=("local", "golem"),
                   help="'local' (default: this machine) or 'golem' (the Golem Network through "
                        "yagna: set YAGNA_APPKEY, YAGNA_API_URL); or set GOLEM_TASKS_PROVIDER")
    p.add_argument("--image", default=image,
                   help=f"VM image for the golem provider, a tag or a hash (default {image})")
    p.add_argument("--max-workers", type=int, default=None, help="providers engaged at once")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="log what the scheduler does")
    return p


def parse(p: argparse.ArgumentParser, argv: Optional[List[str]]) -> argparse.Namespace:
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args


def golem_options(args: argparse.Namespace) -> dict:
    return {"provider": args.provider, "image": args.image, "max_workers": args.max_workers,
            "progress": False if args.no_progress else None}
