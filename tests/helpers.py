"""Workers and small tools shared by the scheduler tests."""

from __future__ import annotations

import tenacity

from golem_tasks import Golem
from golem_tasks.testing import FakeProvider

NO_WAIT = tenacity.wait_none()


def echo(ctx, item):
    """Runs `echo ITEM` and returns (item, stdout, provider id)."""
    results = yield ctx.run("echo", str(item))
    return item, results[0].stdout, ctx.provider_id


def make_golem(fake: FakeProvider, **kwargs) -> Golem:
    kwargs.setdefault("progress", False)
    kwargs.setdefault("retry_wait", NO_WAIT)
    return Golem(fake, **kwargs)


def echo_provider(**kwargs) -> FakeProvider:
    """A fake that answers `echo X` with X."""
    fake = FakeProvider(assert_all_used=False, **kwargs)
    fake.on_run(lambda line: line.startswith("echo "), handler=lambda command, session: command.args[1])
    return fake
