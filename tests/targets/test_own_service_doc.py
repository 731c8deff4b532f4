"""Every command of docs/own-service.md, run as written (from a copy of the examples)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "own-service.md"
RESILIENCE = str(Path(sys.executable).with_name("resilience"))
LONG = pytest.mark.skipif(
    os.environ.get("RESILIENCE_LONG_TESTS") != "1",
    reason="minutes of real runs: opt in with RESILIENCE_LONG_TESTS=1",
)


def _commands() -> list[str]:
    return [
        line.removeprefix("$ ").strip()
        for line in DOC.read_text().splitlines()
        if line.startswith("$ resilience ")
    ]


def test_the_page_has_commands_to_run() -> None:
    commands = _commands()
    assert len(commands) >= 4
    assert all(shlex.split(c)[0] == "resilience" for c in commands)


@pytest.mark.slow
@LONG
def test_every_command_of_the_page_succeeds(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    state = Path(tempfile.mkdtemp(prefix="resilience-doc-state-"))
    state.chmod(0o755)
    env = {**os.environ, "RESILIENCE_STATE_DIR": str(state)}
    try:
        for command in _commands():
            argv = [RESILIENCE, *shlex.split(command)[1:]]
            done = subprocess.run(
                argv,
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        assert (tmp_path / "reports" / "notes-redis" / "target.log").exists()
    finally:
        shutil.rmtree(state, ignore_errors=True)
