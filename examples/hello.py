"""Hello, Golem: run `date` on a provider and print what it says.

    python examples/hello.py
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import golem_options, parse, parser  # noqa: E402

from golem_tasks import Golem  # noqa: E402

#: Any image with a shell and coreutils will do on the Golem provider.
IMAGE = "golem/alpine:latest"


def hello(ctx):
    results = yield ctx.run("/bin/sh", "-c", "date")
    return f"{ctx.provider_name} says: {results[0].stdout.strip()}"


def main(argv: Optional[List[str]] = None) -> str:
    args = parse(parser(__doc__, IMAGE), argv)
    with Golem(**golem_options(args)) as golem:
        answer = golem.run(hello)
    print(answer)
    return answer


if __name__ == "__main__":
    main()
