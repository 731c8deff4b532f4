"""``resilience run --simulate``: the command line of simulated runs (``--models``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from resilience.cli import app
from resilience.sim.distributions import Fixed
from resilience.sim.models_file import save_models
from resilience.sim.stack import ModelSettings

SCENARIO = """\
name: cli-sim
description: a short steady run for the command line
seed: 5
workload:
  duration: 8s
  rate: 50
  warmup: 1s
  keys: {catalogue_size: 40}
gates:
  - errors == 0
  - lookup.db avg < 50ms
steady_state: {probes: 3, timeout: 10s}
"""


def _scenario(tmp_path: Path) -> Path:
    path = tmp_path / "cli-sim.yaml"
    path.write_text(SCENARIO)
    return path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["run", "--no-progress", *args])
    return result.exit_code, result.output


def test_models_file_changes_the_simulated_run(tmp_path: Path) -> None:
    """A models file with a 80 ms query time shows in the DB-path gate of a simulated run."""
    scenario = _scenario(tmp_path)
    code, output = _run("--simulate", str(scenario), "-o", str(tmp_path / "default"))
    assert code == 0, output
    models = tmp_path / "models.json"
    save_models(ModelSettings(db_query=Fixed(0.080)), models)
    code, output = _run(
        "--simulate", "--models", str(models), str(scenario), "-o", str(tmp_path / "slow")
    )
    assert code == 1, output  # lookup.db avg < 50ms fails on the slow model
    assert "lookup.db" in output
    default = (tmp_path / "default" / "history.jsonl").read_bytes()
    assert default != (tmp_path / "slow" / "history.jsonl").read_bytes()


def test_a_bad_models_file_is_exit_code_2(tmp_path: Path) -> None:
    models = tmp_path / "models.json"
    models.write_text('{"db_query": {"kind": "gamma"}}')
    code, output = _run(
        "--simulate", "--models", str(models), str(_scenario(tmp_path)), "-o", str(tmp_path)
    )
    assert code == 2
    assert "unknown kind 'gamma'" in output


def test_models_without_simulate_is_refused(tmp_path: Path) -> None:
    models = tmp_path / "models.json"
    save_models(ModelSettings(), models)
    code, output = _run("--models", str(models), str(_scenario(tmp_path)), "-o", str(tmp_path))
    assert code == 2
    assert "--simulate" in output


def test_a_migration_scenario_is_skipped_in_simulation_not_passed(tmp_path: Path) -> None:
    """The simulator does not model the backfill: SKIPPED with the reason, never PASS."""
    root = Path(__file__).resolve().parents[2]
    scenario = root / "scenarios" / "10-migration-backfill.yaml"
    code, output = _run("--simulate", str(scenario), "-o", str(tmp_path / "one"))
    assert code == 2, output  # nothing was checked
    assert "SKIPPED migration-backfill" in output
    assert "does not model the migration backfill" in output
    assert "PASS" not in output
    # in a suite the skipped scenario is shown but does not decide the verdict
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "a.yaml").write_text(SCENARIO)
    (suite / "b.yaml").write_text(scenario.read_text())
    code, output = _run("--simulate", str(suite), "-o", str(tmp_path / "both"))
    assert code == 0, output
    assert "1 SKIPPED" in output


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("28-background-monitor-crash", "does not model the service's background components"),
        ("29-postgres-down-alert", "does not model the service's notifications"),
    ],
)
def test_crash_and_notification_scenarios_are_skipped_in_simulation(
    tmp_path: Path, name: str, reason: str
) -> None:
    """No background components or event stream in the simulator: SKIPPED, not a fault error."""
    scenario = Path(__file__).resolve().parents[2] / "scenarios" / f"{name}.yaml"
    code, output = _run("--simulate", str(scenario), "-o", str(tmp_path))
    assert code == 2, output
    assert "SKIPPED" in output
    assert reason in " ".join(output.split())
    assert "fault control failed" not in output


OWN_SERVICE = """\
name: own-service
description: a team's own HTTP service, started from its own command
target:
  command: "python -m http.server {port} --bind 127.0.0.1"
  url: "http://127.0.0.1:{port}"
  ready: /
workload:
  duration: 5s
  rate: 20
  requests:
    - {name: index, path: /}
gates:
  - http.error_rate == 0
"""


@pytest.mark.parametrize(
    "command",
    [["run", "--no-progress", "--simulate"], ["calibrate"]],
    ids=["run --simulate", "calibrate"],
)
def test_a_teams_own_http_service_is_not_simulated_as_the_reference_one(
    tmp_path: Path, command: list[str]
) -> None:
    """The simulator runs the reference service's code: a scenario of another service is
    SKIPPED by ``run --simulate`` and refused by ``calibrate`` (exit 2, with why),
    instead of figures of the wrong service (``tune`` runs its trials for real:
    tests/targets/test_tune_own_service.py)."""
    scenario = tmp_path / "own.yaml"
    scenario.write_text(OWN_SERVICE)
    result = CliRunner().invoke(app, [*command, str(scenario), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())
    assert "own-service" in output
    assert "target is an HTTP service of its own" in output
    assert "PASS" not in output
