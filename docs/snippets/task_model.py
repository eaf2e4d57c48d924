from golem_tasks import Golem


def where(ctx, item):
    # One fragment: this call, for one item, on one engaged provider.
    results = yield ctx.run("/bin/sh", "-c", f"echo {item} from $(hostname)")
    return ctx.provider_name, results[0].stdout.strip()


with Golem(max_workers=2) as golem:  # at most 2 providers engaged at once
    for provider, said in golem.map(where, ["a", "b", "c", "d"]):  # the job: 4 fragments
        print(provider, "->", said)
    print("still engaged:", golem.engaged)  # providers are reused by the next job
