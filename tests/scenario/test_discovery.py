"""Scenarios by name, from the checkout's scenarios/ or the suite shipped in the package."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from resilience.cli import app
from resilience.scenario.discovery import default_suite, resolve, shipped_suite

ROOT = Path(__file__).resolve().parents[2]

OWN = """\
name: postgres-down
description: this checkout's own scenario of that name
workload: {duration: 5s, rate: 10}
"""


def test_a_scenario_is_named_by_its_name_or_its_file_stem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./scenarios here: the shipped suite answers
    shipped = shipped_suite()
    assert shipped is not None
    assert resolve(["postgres-down"]) == [shipped / "03-postgres-down.yaml"]
    assert resolve(["03-postgres-down"]) == [shipped / "03-postgres-down.yaml"]
    assert resolve(["redis-down", "redis-down"]) == [shipped / "08-redis-down.yaml"]
    assert default_suite() == shipped


def test_the_checkouts_own_scenarios_win_over_the_shipped_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "mine.yaml").write_text(OWN)
    monkeypatch.chdir(tmp_path)
    assert resolve(["postgres-down"]) == [Path("scenarios") / "mine.yaml"]
    assert default_suite() == Path("scenarios")
    shipped = shipped_suite()
    assert shipped is not None
    assert resolve(["redis-down"]) == [shipped / "08-redis-down.yaml"]  # not here: shipped


def test_an_unknown_name_exits_2_with_a_suggestion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["run", "postgres-dwn"])
    assert result.exit_code == 2
    assert "postgres-dwn" in result.output
    assert "did you mean 'postgres-down'?" in result.output


def test_run_check_by_name_from_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["run", "--check", "postgres-down"])
    assert result.exit_code == 0, result.output
    assert "postgres-down — 10 gates" in result.output


@pytest.mark.slow
def test_the_wheel_ships_the_scenarios_and_load_profiles(tmp_path: Path) -> None:
    """`pip install` then `resilience run` with no checkout (the wheel unpacked, run elsewhere)."""
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if build.returncode != 0 and "NewConnectionError" in build.stderr:
        pytest.skip("building the wheel needs setuptools from PyPI, which is not reachable")
    assert build.returncode == 0, build.stderr
    [wheel] = tmp_path.glob("resilience-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {Path(n).name for n in names if n.startswith("resilience/_bundled/scenarios/")}
    assert shipped == {p.name for p in (ROOT / "scenarios").rglob("*.yaml")}
    assert "loadtests/profiles/steady.yaml" in names
    assert "loadtests/locustfile.py" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    check = subprocess.run(
        [sys.executable, "-c", "from resilience.cli import main; main()", "run", "--check",
         "postgres-down"],
        cwd=elsewhere, env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert str(site / "resilience" / "_bundled" / "scenarios") in check.stdout


def test_tune_takes_a_scenario_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["tune", "steady-state", "--param", "breaker.failure_threshold=3", "-o", "out"]
    )
    assert result.exit_code in (0, 1), result.output  # ran: a verdict, not bad input
    assert (tmp_path / "out").exists()
