from golem_tasks import Golem


def word_count(ctx, text):
    batch = ctx.batch(timeout=30)  # several commands, one round trip to the provider
    batch.send_bytes(text.encode(), "/golem/input/text.txt")
    batch.run("/bin/sh", "-c", "wc -w < /golem/input/text.txt > /golem/output/count.txt")
    batch.run("/bin/cat", "/golem/output/count.txt")
    results = yield batch  # one CommandResult per command, in order
    return int(results[-1].stdout)


def two_steps(ctx):
    first = yield ctx.run("/bin/echo", "hello")  # ctx.run(...) is a one-command batch
    second = yield ctx.run("/bin/echo", first[0].stdout.strip().upper())  # the next depends on it
    return second[0].stdout.strip()


with Golem(max_workers=2) as golem:
    assert golem.run(word_count, "one two three") == 3
    assert golem.run(two_steps) == "HELLO"
