from concurrent.futures import ThreadPoolExecutor, as_completed

from golem_tasks import Golem


def local_square(n):
    return n * n


def remote_square(ctx, n):  # the same job as a worker: a generator taking ctx first
    results = yield ctx.run("/bin/sh", "-c", f"echo $(({n} * {n}))")
    return int(results[0].stdout)


with ThreadPoolExecutor(max_workers=4) as pool:
    expected = list(pool.map(local_square, range(8)))

with Golem(max_workers=4, progress=False) as golem:
    assert list(golem.map(remote_square, range(8))) == expected  # Executor.map
    futures = [golem.submit(remote_square, n) for n in range(8)]  # Executor.submit -> Future
    assert sorted(f.result() for f in as_completed(futures)) == expected
    assert golem.submit(remote_square, 3).result(timeout=60) == 9
