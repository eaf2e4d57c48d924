"""Upload a shared file once per provider with the initializer, then run many
small fragments against it: count how often each word occurs in a corpus.

    python examples/shared_file.py golem task provider
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import golem_options, parse, parser  # noqa: E402

from golem_tasks import Golem  # noqa: E402

#: Any image with a shell and coreutils will do on the Golem provider.
IMAGE = "golem/alpine:latest"

CORPUS_LINES = [
    "a golem is an animated being made of clay",
    "the golem network lets a requestor rent a provider",
    "every provider runs a task in a fresh sandbox",
]


def make_corpus(directory: Path, repeat: int) -> Path:
    path = directory / "corpus.txt"
    path.write_text("\n".join(CORPUS_LINES * repeat) + "\n")
    return path


def make_initializer(corpus: Path):
    def upload_corpus(ctx):
        # Runs exactly once on every provider engaged, before its first fragment.
        yield ctx.batch().send_file(corpus, "/golem/input/corpus.txt")
    return upload_corpus


def count(ctx, word):
    # grep exits 1 when nothing matches: keep that as a result, not an error.
    results = yield ctx.run("grep", "-c", "-w", "-i", word, "/golem/input/corpus.txt", check=False)
    return int(results[0].stdout.strip() or 0)


def main(argv: Optional[List[str]] = None) -> Dict[str, int]:
    p = parser(__doc__, IMAGE)
    p.add_argument("words", nargs="*", default=["golem", "provider", "sandbox", "banana"],
                   help="the words to count, one fragment each (default: golem provider sandbox banana)")
    p.add_argument("--repeat", type=int, default=1000,
                   help="how many copies of the corpus text the shared file holds (default: 1000)")
    args = parse(p, argv)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = make_corpus(Path(tmp), args.repeat)
        with Golem(initializer=make_initializer(corpus), **golem_options(args)) as golem:
            counts = dict(zip(args.words, golem.map(count, args.words)))
    for word, n in counts.items():
        print(f"{word}: {n} line(s)")
    return counts


if __name__ == "__main__":
    main()
