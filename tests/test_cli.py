"""The golem-tasks command."""

from __future__ import annotations

import subprocess
import sys

from golem_tasks.cli import main


def test_help_lists_the_localnet_commands(capsys):
    assert main(["--help"]) == 0
    assert "localnet up" in capsys.readouterr().out


def test_unknown_command_says_what_exists(capsys):
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'frobnicate'" in err and "localnet" in err


def test_no_command_prints_usage_and_fails(capsys):
    assert main([]) == 2
    assert "usage: golem-tasks" in capsys.readouterr().out


def test_installed_console_script_runs():
    done = subprocess.run([sys.executable, "-m", "golem_tasks.cli", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "localnet" in done.stdout
