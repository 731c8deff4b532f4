"""README examples work: the sample scenario is the shipped one; `resilience run` lines resolve."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from resilience.cli import app
from resilience.scenario.discovery import resolve
from resilience.scenario.loader import load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")

# Options of `resilience run` that take a value: dropped with it for --check.
_VALUED = {"-o", "--report-dir", "--gate", "--gates", "-g", "--backend", "--models"}


def _yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", README, flags=re.DOTALL)


def _run_commands() -> list[list[str]]:
    found = re.findall(r"resilience run(?![`\w:-])([^`\n#|]*)", README)
    commands = []
    for rest in found:
        args = shlex.split(rest)
        kept: list[str] = []
        skip = False
        for arg in args:
            if skip:
                skip = False
            elif arg in _VALUED:
                skip = True
            elif not arg.startswith("-") or arg == "--simulate":
                kept.append(arg)
        commands.append(kept)
    return commands


def test_the_readme_has_a_sample_scenario_and_run_commands() -> None:
    assert _yaml_blocks()
    assert any(cmd for cmd in _run_commands())


@pytest.mark.parametrize("block", _yaml_blocks())
def test_the_readme_sample_scenario_is_an_excerpt_of_the_shipped_file(
    block: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    sample = parse_scenario(block, "README.md")
    [path] = resolve([sample.name])
    shipped = load_scenario(path)
    raw = yaml.safe_load(block)
    for key in ("seed", "service", "faults", "environment", "migration"):
        if key in raw:
            assert getattr(sample, key) == getattr(shipped, key), key
    for key in raw.get("workload", {}):
        assert getattr(sample.workload, key) == getattr(shipped.workload, key), key
    shipped_gates = {g.source for g in shipped.scoped_gates()}
    for gate in sample.scoped_gates():
        assert gate.source in shipped_gates, f"README gate {gate.source!r} is not in {path}"


@pytest.mark.parametrize("args", _run_commands(), ids=lambda a: " ".join(a) or "(suite)")
def test_every_resilience_run_line_of_the_readme_names_valid_scenarios(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, ["run", "--check", *[a for a in args if a != "--simulate"]])
    assert result.exit_code == 0, result.output
