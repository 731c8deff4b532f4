"""``resilience init`` writes a starter scenario that loads, and refuses what it cannot do."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from resilience.cli import app
from resilience.scenario.loader import load_scenario


def test_init_writes_a_starter_that_loads_for_a_command_or_a_url(tmp_path: Path) -> None:
    runner = CliRunner()
    started = tmp_path / "started.yaml"
    done = runner.invoke(app, ["init", str(started), "--command", "uvicorn app:app --port {port}"])
    assert done.exit_code == 0, done.output
    scenario = load_scenario(started)
    assert scenario.target_kind == "http"
    assert scenario.target.command == "uvicorn app:app --port {port}"  # type: ignore[union-attr]
    assert "{postgres.url}" in started.read_text()
    running = tmp_path / "running.yaml"
    done = runner.invoke(app, ["init", str(running), "--url", "http://127.0.0.1:8080"])
    assert done.exit_code == 0, done.output
    assert load_scenario(running).target.url == "http://127.0.0.1:8080"  # type: ignore[union-attr]
    checked = runner.invoke(app, ["run", str(running), "--check"])
    assert checked.exit_code == 0, checked.output


def test_init_refuses_to_overwrite_or_to_guess(tmp_path: Path) -> None:
    runner = CliRunner()
    path = tmp_path / "s.yaml"
    path.write_text("mine\n")
    done = runner.invoke(app, ["init", str(path), "--url", "http://127.0.0.1:1"])
    assert done.exit_code == 2
    assert "exists" in done.output
    assert path.read_text() == "mine\n"
    both = runner.invoke(
        app, ["init", str(tmp_path / "b.yaml"), "--url", "http://x", "--command", "a {port}"]
    )
    assert both.exit_code == 2
    no_port = runner.invoke(app, ["init", str(tmp_path / "c.yaml"), "--command", "app"])
    assert no_port.exit_code == 2
    assert "{port}" in no_port.output
