from golem_tasks import CommandOutput, Golem

SCRIPT = "for i in 1 2 3; do echo step $i; done; echo done >&2"


def noisy(ctx):
    # on_output gets the text while the program runs, one call at a time
    results = yield ctx.run("/bin/sh", "-c", SCRIPT, on_output=lambda stream, text: print(stream, text, end=""))
    return results[0].stdout  # the result still holds all of it


seen = []
with Golem(max_workers=1) as golem:
    # Every consumer of CommandOutput events sees the same chunks (opt-in: name the class).
    golem.add_event_consumer(seen.append, kinds=(CommandOutput,))
    assert golem.run(noisy) == "step 1\nstep 2\nstep 3\n"

assert "".join(e.text for e in seen if e.stream == "stdout") == "step 1\nstep 2\nstep 3\n"
