# tests/test_render.py: the fake_provider fixture comes with the package (a pytest plugin).
from golem_tasks.testing import run_worker


def count_lines(ctx, text):
    batch = ctx.batch()
    batch.send_bytes(text.encode(), "/golem/input/text.txt")
    batch.run("wc", "-l", "/golem/input/text.txt")
    results = yield batch
    return int(results[-1].stdout.split()[0])


def test_count_lines(fake_provider):
    fake_provider.on_run("wc -l /golem/input/text.txt", stdout="2 /golem/input/text.txt\n")
    assert run_worker(count_lines, "a\nb\n", provider=fake_provider) == 2
    assert fake_provider.runs == ["wc -l /golem/input/text.txt"]  # everything is recorded
