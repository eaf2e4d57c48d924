import golem_tasks
from golem_tasks import Golem

# With the progress bar off (piped output, progress=False), one call shows the
# library's INFO lines on stderr, the end-of-job summary among them.
golem_tasks.log_to_stderr(level="INFO")


def hello(ctx, n):
    results = yield ctx.run("/bin/echo", str(n))
    return results[0].stdout.strip()


with Golem(max_workers=2, progress=False) as golem:
    assert list(golem.map(hello, range(4))) == ["0", "1", "2", "3"]
# stderr: ... INFO golem_tasks.summary: job 1: 4 done, 0 failed, 0 retried in 0.05 s
#           local-1 (bwrap): 2 done, 0 failed, busy 0.02 s
#           local-2 (bwrap): 2 done, 0 failed, busy 0.02 s
