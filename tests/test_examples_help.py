"""The examples' --help, as a user first reads it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("name", ["hello", "pi", "hash_cracker", "shared_file"])
def test_help_describes_the_example_in_whole_sentences_and_every_option(name):
    wide = dict(os.environ, COLUMNS="250")  # each option and its help on one line
    done = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), "--help"], capture_output=True,
                          text=True, timeout=60, check=True, env=wide)
    usage, description, rest = done.stdout.split("\n\n", 2)
    assert description.rstrip().endswith("."), description
    assert "--image IMAGE" in rest and "the local provider ignores it" in rest
    lines = rest.splitlines()
    for line, following in zip(lines, lines[1:] + [""]):
        if re.match(r"  \S", line):  # an argument: its help on the line, or on the next, indented
            assert re.match(r"  \S.*?\s{2,}\S", line) or re.match(r"\s{3,}\S", following), line.strip()
