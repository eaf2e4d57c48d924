"""Crack a SHA-256 hash by brute force: the word list is split into fragments,
each chunk is sent to a provider as JSON, a Python script there hashes every word
and writes its answer as JSON, which is downloaded. The first hit stops everything:
the other providers' commands are killed and the providers released.

    python examples/hash_cracker.py
"""

from __future__ import annotations

import hashlib
import itertools
import string
import sys
import time
from pathlib import Path
from typing import Iterator, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import golem_options, parse, parser  # noqa: E402

from golem_tasks import Golem  # noqa: E402

#: Any image with python3 will do on the Golem provider.
IMAGE = "golem/python:3.11-slim"

# The provider-side program, sent once per provider by the initializer.
CRACKER = r"""
import hashlib, json, sys
words_path, target_path, out_path = sys.argv[1:4]
target = json.load(open(target_path))["sha256"]
match = next((w for w in json.load(open(words_path)) if hashlib.sha256(w.encode()).hexdigest() == target), None)
json.dump({"match": match}, open(out_path, "w"))
"""


def words(length: int) -> Iterator[str]:
    for letters in itertools.product(string.ascii_lowercase, repeat=length):
        yield "".join(letters)


def chunks(items: Iterator[str], size: int) -> Iterator[List[str]]:
    while True:
        chunk = list(itertools.islice(items, size))
        if not chunk:
            return
        yield chunk


def make_initializer(target: str):
    def setup(ctx):
        batch = ctx.batch()
        batch.send_bytes(CRACKER.encode(), "/golem/input/crack.py")
        batch.send_json({"sha256": target}, "/golem/input/target.json")
        yield batch
    return setup


def crack(ctx, chunk):
    batch = ctx.batch(timeout=300)
    batch.send_json(chunk, "/golem/input/words.json")
    batch.run("python3", "/golem/input/crack.py", "/golem/input/words.json",
              "/golem/input/target.json", "/golem/output/result.json")
    batch.download_json("/golem/output/result.json")
    results = yield batch
    return results[-1].data["match"]


def main(argv: Optional[List[str]] = None) -> Optional[str]:
    p = parser(__doc__, IMAGE)
    p.add_argument("--password", default="golem", help="the lowercase word whose hash is cracked (default: golem)")
    p.add_argument("--hash", default=None, help="a SHA-256 hex digest to crack instead of the password's")
    p.add_argument("--chunk-size", type=int, default=50_000,
                   help="words per fragment (default: 50000)")
    args = parse(p, argv)
    target = args.hash or hashlib.sha256(args.password.encode()).hexdigest()
    length = len(args.password)
    started = time.monotonic()
    found = None
    with Golem(initializer=make_initializer(target), **golem_options(args)) as golem:
        for done in golem.as_completed(crack, chunks(words(length), args.chunk_size)):
            if done.value is not None:
                found = done.value
                break  # stops the other fragments and releases the providers
    took = time.monotonic() - started
    print(f"found {found!r} in {took:.1f} s" if found else f"no {length}-letter word matches ({took:.1f} s)")
    return found


if __name__ == "__main__":
    main()
