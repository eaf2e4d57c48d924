# Run a job, then "run the script again": the second map runs nothing, its results come
# from the journal. After a crash, only the fragments that were in flight run again.
from golem_tasks import FragmentStarted, Golem


def square(ctx, n):
    results = yield ctx.run("/bin/sh", "-c", f"echo $(({n} * {n}))")
    return int(results[0].stdout)


for run in (1, 2):
    started = []
    with Golem(max_workers=2, progress=False) as golem:
        golem.add_event_consumer(started.append, kinds=(FragmentStarted,))
        squares = list(golem.map(square, range(10), journal="squares.journal"))
    print(f"run {run}: {squares[:4]}... ({len(started)} fragment(s) ran)")
    assert squares == [n * n for n in range(10)]
assert not started  # everything came from the journal
# run 1: [0, 1, 4, 9]... (10 fragment(s) ran)
# run 2: [0, 1, 4, 9]... (0 fragment(s) ran)


# Keyed by an id instead of the position: the input may be reordered or extended.
def size(ctx, photo):
    results = yield ctx.run("/bin/echo", str(photo["size"]))
    return int(results[0].stdout)


photos = [{"id": "a1", "size": 3}, {"id": "b2", "size": 5}]
with Golem(max_workers=2, progress=False) as golem:
    assert list(golem.map(size, photos, journal="photos.journal", key=lambda photo: photo["id"])) == [3, 5]
photos.insert(0, {"id": "c3", "size": 7})  # a new photo in front: only it runs
with Golem(max_workers=2, progress=False) as golem:
    assert list(golem.map(size, photos, journal="photos.journal", key=lambda photo: photo["id"])) == [7, 3, 5]
