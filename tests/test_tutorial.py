"""examples/tutorial.ipynb runs top to bottom in a real Jupyter kernel (nbclient), and
each part shows what the text around it says it shows."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List

import pytest

nbformat = pytest.importorskip("nbformat", reason="the tutorial test needs nbformat (the test extra)")
nbclient = pytest.importorskip("nbclient", reason="the tutorial test needs nbclient (the test extra)")
pytest.importorskip("ipykernel", reason="the tutorial test needs ipykernel")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "examples" / "tutorial.ipynb"


@pytest.fixture(scope="module")
def cells() -> Dict[str, Any]:
    notebook = nbformat.read(TUTORIAL, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
        "the tutorial is committed without outputs"
    # cwd: the checkout, so the kernel imports this golem_tasks even when not installed
    client = nbclient.NotebookClient(notebook, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    tagged = {}
    for cell in notebook.cells:
        for tag in cell.metadata.get("tags", []):
            tagged[tag] = cell
    return tagged


def text(cell: Any, name: str) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == name)


def results(cell: Any) -> List[str]:
    return [o.data["text/plain"] for o in cell.outputs if o.output_type == "execute_result"]


def test_the_map_shows_a_bar_with_its_total_and_the_summary_under_it(cells):
    cell = cells["map"]
    assert results(cell) == ["[0, 1, 4, 9, 16, 25, 36, 49]"]
    shown = text(cell, "stderr")
    assert "8/8" in shown and "fragments" in shown and "done=8" in shown
    assert "job " in shown and "8 done, 0 failed" in shown.split("8/8")[-1]  # the summary follows the bar
    # each provider named once; demand-driven engagement may run all eight on either one
    assert re.search(r"^  local-\d+ ", shown, re.M) and not re.search(r"\(local-\d+\)", shown)


def test_a_failed_fragment_shows_every_attempt_with_what_the_command_said(cells):
    printed = text(cells["failure"], "stdout")
    assert "failed on every one of its 2 attempts" in printed
    assert printed.count("stderr:") == 2 and "data.csv" in printed and "No such file" in printed


def test_an_uncaught_failure_ends_the_cell_with_the_attempts_last(cells):
    (error,) = [o for o in cells["uncaught"].outputs if o.output_type == "error"]
    assert error.ename == "FragmentFailed"
    assert "attempt 2:" in error.evalue and "No such file" in error.evalue


def test_return_exceptions_puts_the_failure_in_place(cells):
    assert results(cells["in-place"]) == ["['str', 'FragmentFailed']"]


def test_the_fake_provider_answers_and_the_bar_shows_the_retry(cells):
    cell = cells["fake"]
    assert text(cell, "stdout").startswith("[0, 1, 4, 9]\n")
    assert "retried=1" in text(cell, "stderr")


def test_log_to_stderr_shows_the_summary_with_the_bar_off(cells):
    cell = cells["summary"]
    # demand-driven engagement: a second provider is engaged only if the first one falls behind
    assert re.fullmatch(r"6 done, 0 failed, on [12] provider\(s\)\n", text(cell, "stdout"))
    assert "INFO golem_tasks.summary: job " in text(cell, "stderr")


def test_a_straggler_on_a_slow_fake_provider_gets_a_backup_that_wins(cells):
    found = re.fullmatch(r"True backups: (\d+) started, (\d+) won\n", text(cells["speculate"], "stdout"))
    assert found and int(found[1]) >= int(found[2]) >= 1


def test_the_report_shows_the_cancelled_slow_copy_and_draws_the_timeline_inline(cells):
    cell = cells["report"]
    printed = text(cell, "stdout")
    assert "('fake-1', 'cancelled')" in printed and "'done')" in printed
    assert any("image/png" in o.data for o in cell.outputs if o.output_type in ("execute_result", "display_data"))


def test_the_journal_runs_nothing_the_second_time(cells):
    assert text(cells["journal"], "stdout") == (
        "run 1: [0, 1, 4, 9, 16, 25, 36, 49], 8 fragment(s) ran\n"
        "run 2: [0, 1, 4, 9, 16, 25, 36, 49], 0 fragment(s) ran\n")


def test_the_provider_record_counts_the_failed_command(cells):
    rows = [line.split() for line in text(cells["record"], "stdout").splitlines() if line.startswith("fake-")]
    assert sum(int(row[2]) for row in rows) == 6 and sum(int(row[3]) for row in rows) == 1  # done, failed
