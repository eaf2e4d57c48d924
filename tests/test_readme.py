"""The README's tour runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def runnable_blocks():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    return [b for b in blocks if b.startswith("from golem_tasks")]


@pytest.mark.slow
def test_readme_python_blocks_run(capsys):
    namespace: dict = {}
    blocks = runnable_blocks()
    assert len(blocks) >= 2
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - our own README
    assert "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]" in capsys.readouterr().out
    namespace["test_square"]()  # the unit-test example itself must pass


def test_readme_opens_with_the_two_commands():
    text = README.read_text()
    commands = re.findall(r"```bash\n(.*?)```", text, flags=re.S)[:2]
    assert "examples/hash_cracker.py" in commands[0]
    assert "pytest" in commands[1]
    ci = (README.parent / ".ci" / "run").read_text()
    assert commands[1].strip() in ci, ".ci/run must run the README's test command"


def test_every_python_block_in_the_readme_compiles():
    """The blocks that need a daemon or a worker defined elsewhere are not run, but
    each is Python that parses, fenced as python."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    for block in blocks:
        compile(block, str(README), "exec")
    assert any('Golem(provider="golem"' in block for block in blocks)
    assert "```text" not in README.read_text()
