"""Every code snippet of the documentation site runs (or, needing a daemon, compiles),
so none can rot. The pages include them from docs/snippets/ (pymdownx.snippets)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from golem_tasks.providers.outbound import DENIED

from .test_local_provider import bwrap_problem

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SNIPPETS = sorted((DOCS / "snippets").glob("*.py"))
#: Snippets that need a yagna daemon: compiled here, run against a local network in
#: tests/localnet/test_docs_golem.py.
GOLEM = [s for s in SNIPPETS if s.name.startswith("golem_")]
LOCAL = [s for s in SNIPPETS if s not in GOLEM and not s.name.startswith("test_")]
PYTEST = [s for s in SNIPPETS if s.name.startswith("test_")]
RUN_TIMEOUT = 240  # generous: only catches a hang


def included() -> set:
    names = set()
    for page in DOCS.rglob("*.md"):
        names.update(re.findall(r'^\s*--8<-- "([^"]+)"', page.read_text(), flags=re.M))
    return names


def test_every_snippet_is_shown_on_a_page_and_every_included_one_exists():
    names = included()
    assert {s.name for s in SNIPPETS} <= names, "a snippet no page shows"
    assert names <= {s.name for s in SNIPPETS}, "a page includes a snippet that does not exist"


def test_every_snippet_compiles():
    for snippet in SNIPPETS:
        compile(snippet.read_text(), str(snippet), "exec")


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YAGNA_", "GOLEM_TASKS_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return env


@pytest.mark.slow
@pytest.mark.parametrize("snippet", LOCAL, ids=[s.stem for s in LOCAL])
def test_snippet_runs_on_the_local_provider(snippet, tmp_path):
    done = subprocess.run([sys.executable, str(snippet)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, env=_env(), check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("snippet", PYTEST, ids=[s.stem for s in PYTEST])
def test_pytest_snippet_passes_under_pytest(snippet, tmp_path):
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
                           str(tmp_path), str(snippet)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, env=_env(), check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bwrap", "host"])
def test_the_outbound_snippet_reaches_its_url_and_is_refused_another_in_either_sandbox(kind, tmp_path):
    env = _env()
    if kind == "bwrap" and bwrap_problem():
        pytest.skip(f"bwrap sandbox unavailable: {bwrap_problem()}")
    if kind == "host":
        env["PATH"] = str(tmp_path)  # no bwrap on PATH: the local provider falls back to the host sandbox
    done = subprocess.run([sys.executable, str(DOCS / "snippets" / "outbound_local.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env, check=False)
    assert done.returncode == 0, done.stderr
    ok, refused = done.stdout.splitlines()
    assert ok == "hello from the internet"
    assert refused.startswith(f"403 {DENIED}: 127.0.0.1:") and "add a URL of that host and port to outbound=" in refused
