from golem_tasks import CommandExecutionError, FragmentFailed, Golem


def parse(ctx, path):
    try:
        results = yield ctx.run("/bin/cat", path)
    except CommandExecutionError as error:  # a failed command is raised at the yield
        return f"unreadable ({error.exit_code}): {error.stderr.strip()}"
    return results[0].stdout


def strict(ctx, path):
    results = yield ctx.run("/bin/cat", path)  # not caught: retried, then FragmentFailed
    return results[0].stdout


def exit_code(ctx, path):
    results = yield ctx.run("/bin/cat", path, check=False)  # a non-zero exit is a plain result
    return results[0].exit_code


with Golem(max_workers=2, max_retries=1) as golem:
    print(golem.run(parse, "/no/such/file"))
    assert golem.run(exit_code, "/no/such/file") == 1

    # as_completed: FragmentResult(index, item, value) in the order fragments finish
    for done in golem.as_completed(exit_code, ["/etc/hostname", "/missing"]):
        print(done.index, done.item, done.value)

    # map raises a failure at its position, or yields it in place with return_exceptions=True
    values = list(golem.map(strict, ["/etc/hostname", "/missing"], return_exceptions=True))
    failure = values[1]
    assert isinstance(failure, FragmentFailed)
    print(failure)  # every attempt, with the first line of what the command printed on stderr
    assert "No such file" in str(failure) and len(failure.attempts) == 2
