"""The spend guard in a notebook (issue 11: each feature works in one): a Jupyter kernel
runs the documentation's spend-guard example, a job on a local network whose priced
provider outgrows the budget. The cell's progress bar shows spent / projected / budget,
and the job stops while the provider's final invoice still fits."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import pytest

pytest.importorskip("jupyter_client", reason="the notebook test needs jupyter_client")
pytest.importorskip("ipykernel", reason="the notebook test needs ipykernel")

from ..test_notebook import kernel, run_cell  # noqa: E402,F401  (kernel: the fixture)

pytestmark = pytest.mark.slow

SNIPPET = Path(__file__).resolve().parents[2] / "docs" / "snippets" / "golem_spend_guard.py"


def streamed(messages: List[Dict[str, Any]], name: str) -> str:
    return "".join(m["content"]["text"] for m in messages
                   if m["msg_type"] == "stream" and m["content"]["name"] == name)


def test_a_notebook_cell_shows_the_spend_live_and_stops_within_the_budget(kernel, exeunit_ready):  # noqa: F811
    _, client = kernel
    code = f"import os\nos.environ['YAGNA_BIN'] = {exeunit_ready!r}\n" + SNIPPET.read_text()
    reply, messages = run_cell(client, code, timeout=300)  # a hang guard
    assert reply["status"] == "ok", reply
    out, bar = streamed(messages, "stdout"), streamed(messages, "stderr")
    assert "budget of 0.55 tGLM is spent" in out and "budget=" in out  # the stop names the fix
    assert "spent=" in bar and "projected=" in bar and "budget=0.55 tGLM" in bar  # live, in the cell's bar
