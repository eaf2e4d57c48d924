from golem_tasks import Golem, Task


def worker(ctx, tasks):
    # yapapi style: one generator gets a stream of tasks on one provider (no asyncio).
    for task in tasks:
        results = yield ctx.run("/bin/sh", "-c", f"echo $(({task.data} * 2))")
        value = int(results[0].stdout)
        if value < 0:
            task.reject_result("negative", retry=False)
        else:
            task.accept_result(value)


with Golem(progress=False) as golem:
    done = golem.execute_tasks(worker, [Task(data=n) for n in range(5)], max_workers=2, timeout=600)
    assert sorted(task.result for task in done) == [0, 2, 4, 6, 8]
