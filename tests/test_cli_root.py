"""The root command: --version, and help that reads well with and without a terminal."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

from resilience.cli import app
from resilience.cli.root import command

CLI = [sys.executable, "-c", "from resilience.cli import main; main()"]
COMMANDS = ["run", "analyze", "up", "down", "serve", "migrate", "load", "tune", "calibrate"]


def test_version_prints_the_installed_version() -> None:
    result = subprocess.run([*CLI, "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == f"resilience {metadata.version('resilience')}"


@pytest.mark.parametrize("name", COMMANDS)
def test_help_without_a_terminal_cuts_nothing_and_tags_no_flag(name: str) -> None:
    result = subprocess.run([*CLI, name, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "<bool>" not in result.stdout
    assert "…" not in result.stdout
    assert "╭" not in result.stdout  # plain layout, not rich panels
    assert max(len(line) for line in result.stdout.splitlines()) <= 100


def test_run_help_without_a_terminal_keeps_whole_option_texts() -> None:
    result = subprocess.run([*CLI, "run", "--help"], capture_output=True, text=True, check=False)
    text = " ".join(result.stdout.split())
    assert "a new folder in reports/ named by time and scenario" in text
    assert "--check Only validate the scenario files, then exit." in text


def test_root_help_lists_every_command_with_its_whole_summary() -> None:
    result = subprocess.run([*CLI, "--help"], capture_output=True, text=True, check=False)
    assert "--version" in result.stdout
    assert "run        Run chaos scenarios and gate on the results (no arguments: the default" in (
        result.stdout
    )


def test_help_in_a_terminal_is_rich_and_tags_no_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        command(app, terminal=True)(["run", "--help"], prog_name="resilience")
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "╭" in out
    assert "--check" in out
    assert "<bool>" not in out
    assert "…" not in out
