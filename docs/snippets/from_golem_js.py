from golem_tasks import Golem

golem = Golem(max_workers=2, progress=False)


@golem.before_each  # golem-js's beforeEach: once per engaged provider
def setup(ctx):
    yield ctx.run("/bin/sh", "-c", "echo ready > /golem/work/ready")


def task(ctx, name):  # golem-js's ctx => { ... } callback, as a generator
    results = yield ctx.run("/bin/sh", "-c", f"cat /golem/work/ready; echo {name}")
    return results[0].stdout.split()


with golem:
    assert golem.run(task, "one") == ["ready", "one"]  # golem-js: await executor.run(...)
    assert list(golem.map(task, ["a", "b"])) == [["ready", "a"], ["ready", "b"]]  # executor.map
    golem.for_each(task, ["c", "d"])  # executor.forEach
