"""examples/resumable.py, as a user runs it: with part of its results recorded, it runs
only the rest; the report says which fragments came from the journal."""

from __future__ import annotations

import csv
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "resumable.py"

pytestmark = pytest.mark.slow


def test_killed_then_resumed(tmp_path, monkeypatch):
    monkeypatch.setenv("GOLEM_TASKS_SANDBOX", "host")
    journal, report = tmp_path / "pi.journal", tmp_path / "pi.csv"
    command = [sys.executable, str(EXAMPLE), "--no-progress", "--max-workers", "2", "--fragments", "6",
               "--samples", "2000", "--journal", str(journal), "--report", str(report)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    assert "6 fragment(s) ran, 0 came from the journal" in first.stdout

    # Fewer recorded results than fragments, as after a crash (the SIGKILL itself is
    # tested with the fake provider in test_journal.py): drop half of them.
    db = sqlite3.connect(journal)
    with db:
        db.execute("DELETE FROM results WHERE idx >= 3")
    db.close()
    second = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    assert "3 fragment(s) ran, 3 came from the journal" in second.stdout
    assert second.stdout.splitlines()[-1] == first.stdout.splitlines()[-1]  # the same estimate
    with open(report, newline="") as rows:
        assert [row["status"] for row in csv.DictReader(rows)] == ["journal"] * 3 + ["done"] * 3
