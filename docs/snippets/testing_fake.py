from golem_tasks import FragmentFailed, Golem
from golem_tasks.testing import FakeProvider, run_worker


def render(ctx, frame):
    batch = ctx.batch(timeout=60)
    batch.send_json({"frame": frame}, "/golem/input/scene.json")
    batch.run("blender", "-b", "/golem/input/scene.json")
    batch.download_json("/golem/output/stats.json")
    results = yield batch
    return results[-1].data["seconds"]


# One worker call on a fake provider: no network, no processes, no threads.
with FakeProvider() as fake:
    fake.on_run("blender -b /golem/input/scene.json", files={"/golem/output/stats.json": {"seconds": 4}})
    assert run_worker(render, 7, provider=fake) == 4
    assert fake.runs == ["blender -b /golem/input/scene.json"]

# The whole scheduler against the fake, with a fault injected: the first command
# fails, the fragment is retried on another provider and still succeeds.
fake = FakeProvider()
fake.on_run(lambda line: line.startswith("blender"), files={"/golem/output/stats.json": {"seconds": 2}})
fake.fail_command(1)
with Golem(fake, max_workers=2, progress=False) as golem:
    assert list(golem.map(render, range(3))) == [2, 2, 2]

# A provider lost mid-run: its fragments move to the others.
fake = FakeProvider(latency=0.01)
fake.on_run(lambda line: True, files={"/golem/output/stats.json": {"seconds": 1}})
fake.lose_provider("fake-1", after_commands=1)
with Golem(fake, max_workers=2, progress=False) as golem:
    assert sum(golem.map(render, range(6))) == 6

# A command that always fails ends in FragmentFailed, listing every attempt.
fake = FakeProvider(assert_all_used=False)
fake.on_run(lambda line: True, exit_code=1, stderr="blender: scene.json: bad scene\n")
with Golem(fake, max_workers=1, max_retries=2, progress=False) as golem:
    try:
        golem.run(render, 1)
    except FragmentFailed as failure:
        assert len(failure.attempts) == 3 and "bad scene" in str(failure)
