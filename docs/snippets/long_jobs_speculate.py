# One provider 20 times slower than the others, played by the fake provider (no network):
# with speculate=True its straggling fragments get a backup copy on an idle provider.
from golem_tasks import Golem, JobFinished
from golem_tasks.testing import FakeProvider


def double(ctx, n):  # idempotent: a backup copy may run it a second time
    results = yield ctx.run("echo", str(2 * n))
    return int(results[0].stdout)


fake = FakeProvider(lambda command, session: command.args[1], latency=0.05, assert_all_used=False)
fake.slow_down("fake-1", 20)  # the first provider engaged: 1 s a command instead of 0.05 s

finished = []
with Golem(fake, max_workers=4, speculate=True, progress=False) as golem:
    golem.add_event_consumer(finished.append, kinds=(JobFinished,))
    assert list(golem.map(double, range(20))) == [2 * n for n in range(20)]  # each once, in order
job = finished[0]
print(f"{job.done} done; backups: {job.backups} started, {job.backups_won} won")
assert job.backups_won >= 1
# 20 done; backups: 1 started, 1 won
