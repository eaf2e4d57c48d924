from golem_tasks import Golem


def square(ctx, n):
    """A worker: build a batch of commands, yield it, get one result per command back."""
    batch = ctx.batch(timeout=60)
    batch.send_json({"n": n}, "/golem/input/job.json")
    batch.run("python3", "-c", "import json, sys; print(json.load(open(sys.argv[1]))['n'] ** 2)",
              "/golem/input/job.json")
    results = yield batch
    return int(results[-1].stdout)


with Golem(max_workers=4) as golem:
    squares = list(golem.map(square, range(10)))

print(squares)  # [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]
assert squares == [n * n for n in range(10)]
