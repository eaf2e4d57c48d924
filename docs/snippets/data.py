import json
import tempfile
from pathlib import Path

from golem_tasks import Golem

workdir = Path(tempfile.mkdtemp())
(workdir / "numbers.txt").write_text("3\n4\n5\n")


def total(ctx, name):
    batch = ctx.batch()
    batch.send_file(workdir / name, "/golem/input/numbers.txt")          # a local file
    batch.send_json({"scale": 10}, "/golem/input/options.json")          # a JSON-able value
    batch.run("python3", "-c", """
import json
numbers = [int(line) for line in open('/golem/input/numbers.txt')]
scale = json.load(open('/golem/input/options.json'))['scale']
json.dump({'total': sum(numbers) * scale}, open('/golem/output/total.json', 'w'))
open('/golem/output/report.txt', 'w').write(f'{len(numbers)} numbers')
""")
    batch.download_json("/golem/output/total.json")                      # parsed: results[-2].data
    batch.download_file("/golem/output/report.txt", workdir / "report.txt")  # a local file
    results = yield batch
    return results[-2].data["total"]


with Golem(max_workers=1) as golem:
    assert golem.run(total, "numbers.txt") == 120
assert (workdir / "report.txt").read_text() == "3 numbers"
print(json.dumps({"total": 120, "report": (workdir / "report.txt").read_text()}))
