"""In a real Jupyter kernel: golem.report().timeline() is drawn inline, and a job with
journal= resumes in a later cell."""

from __future__ import annotations

import textwrap

import pytest

from .test_notebook import kernel, run_cell  # noqa: F401 - kernel is a fixture

pytest.importorskip("matplotlib")
pytestmark = pytest.mark.slow

SETUP = textwrap.dedent("""
    from golem_tasks import Golem
    from golem_tasks.testing import FakeProvider

    def square(ctx, n):
        results = yield ctx.run("echo", str(n))
        return int(results[0].stdout) ** 2

    def fake():
        provider = FakeProvider(assert_all_used=False)
        provider.on_run(lambda line: line.startswith("echo "), handler=lambda command, session: command.args[1])
        return provider
""")


def test_the_timeline_shows_inline_and_a_journal_resumes(kernel, tmp_path):  # noqa: F811
    _, client = kernel
    reply, _ = run_cell(client, SETUP)
    assert reply["status"] == "ok"
    journal = str(tmp_path / "nb.journal")
    cell = textwrap.dedent(f"""
        provider = fake()
        with Golem(provider, max_workers=2, progress=False) as golem:
            values = list(golem.map(square, range(6), journal={journal!r}))
        print(values, len(provider.runs))
        golem.report().timeline()
    """)
    reply, messages = run_cell(client, cell)
    assert reply["status"] == "ok", reply
    printed = "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")
    assert "[0, 1, 4, 9, 16, 25] 6" in printed
    shown = [m["content"]["data"] for m in messages if m["msg_type"] in ("execute_result", "display_data")]
    assert any("image/png" in data for data in shown), shown

    reply, messages = run_cell(client, cell)  # the same cell again: everything from the journal
    printed = "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")
    assert reply["status"] == "ok" and "[0, 1, 4, 9, 16, 25] 0" in printed
