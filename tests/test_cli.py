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


def test_version_prints_the_package_version(capsys):
    from golem_tasks import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"golem-tasks {__version__}"


def test_localnet_help_is_plain_text_and_explains_every_option():
    from golem_tasks.localnet.cli import parser

    top = parser()
    texts = [top.format_help()]
    for action in top._actions:  # the subcommands' own parsers
        if isinstance(action.choices, dict):
            texts += [sub.format_help() for sub in action.choices.values()]
            options = [a for sub in action.choices.values() for a in sub._actions]
    for text in texts:
        assert "``" not in text and "::" not in text, text
    assert 'eval "$(golem-tasks localnet env)"' in texts[0]
    assert all(a.help for a in options), [a.dest for a in options if not a.help]
    assert any("--detach" in a.option_strings for a in options)
