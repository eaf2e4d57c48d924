# What happened to each fragment, after the job: rows, CSV, a DataFrame, a timeline.
import io

from golem_tasks import Golem


def square(ctx, n):
    results = yield ctx.run("/bin/sh", "-c", f"echo $(({n} * {n}))")
    return int(results[0].stdout)


with Golem(max_workers=2, progress=False) as golem:
    list(golem.map(square, range(6)))
report = golem.report()

for row in report[:2]:
    print(row.index, row.status, row.provider_name, f"{row.duration:.3f} s",
          [(a.number, a.outcome, a.cause) for a in row.attempts])
# 0 done local-1 (bwrap) 0.004 s [(1, 'done', None)]
# 1 done local-2 (bwrap) 0.004 s [(1, 'done', None)]
assert [row.status for row in report] == ["done"] * 6

out = io.StringIO()
report.to_csv(out)  # or a path
print(out.getvalue().splitlines()[0])
# job_id,kind,index,status,provider_id,provider_name,attempts,retries,backups,causes,start,end,duration,cost

try:  # pip install 'golem_tasks[report]' for the DataFrame and the picture
    frame = report.to_pandas()
    print(frame[["index", "status", "provider_name", "duration"]].head(3))
    report.timeline().save("timeline.png")  # in a notebook, report.timeline() draws inline
except ImportError as missing:
    print(f"skipped: {missing}")
