import tempfile
from pathlib import Path

from golem_tasks import Golem

corpus = Path(tempfile.mkdtemp()) / "corpus.txt"
corpus.write_text("golem task golem provider golem\n" * 100)


def upload(ctx):
    # Runs exactly once on each engaged provider, before its first fragment.
    yield ctx.batch().send_file(corpus, "/golem/work/corpus.txt")


def count(ctx, word):
    results = yield ctx.run("/bin/sh", "-c", f"grep -o -w {word} /golem/work/corpus.txt | wc -l")
    return word, int(results[0].stdout)


with Golem(max_workers=2, initializer=upload) as golem:
    counts = dict(golem.map(count, ["golem", "task", "banana"]))
assert counts == {"golem": 300, "task": 100, "banana": 0}
