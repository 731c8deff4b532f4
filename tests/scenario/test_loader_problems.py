"""Problems a user hit: binary files, cross-field errors at their own line, all problems at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from resilience.cli import app
from resilience.scenario.loader import ScenarioError, check_files, load_scenario, parse_scenario

GOOD = """\
name: good
workload:
  duration: 20s
  rate: 100
"""

TWO_PROBLEMS = """\
name: two
workload:
  duration: 20s
  rate: 100
faults:
  - name: pg-down
    at: 5s
    duration: 2s
    target: postgres
    action: disable
  - name: late
    at: 30s
    duration: 2s
    target: redis
    action: disable
gates:
  - errors == 0
  - 'errors == 0 @ during: pg-dwn'
"""


def _issues(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "x.yaml")
    return [str(i) for i in info.value.issues]


def test_a_binary_file_is_a_scenario_error_naming_the_file(tmp_path: Path) -> None:
    binary = tmp_path / "blob.yaml"
    binary.write_bytes(b"name: x\n\xff\xfe\x00\x81garbage")
    with pytest.raises(ScenarioError) as info:
        load_scenario(binary)
    [issue] = info.value.issues
    assert str(issue).startswith(f"{binary}:2: ")
    assert "not a UTF-8 text file (byte 0xff" in str(issue)


def test_check_goes_on_past_a_binary_file_and_reports_each_file(tmp_path: Path) -> None:
    (tmp_path / "01-good.yaml").write_text(GOOD)
    (tmp_path / "02-blob.yaml").write_bytes(bytes(range(256)))
    (tmp_path / "03-also-good.yaml").write_text(GOOD.replace("good", "also-good"))
    result = CliRunner().invoke(app, ["run", "--check", str(tmp_path)])
    assert result.exit_code == 2
    assert "ok " in result.output
    assert "01-good.yaml: good" in result.output
    assert "03-also-good.yaml: also-good" in result.output
    assert "02-blob.yaml" in result.output
    assert "not a UTF-8 text file" in result.output
    assert "1 of 3 file(s) invalid" in result.output
    assert "Traceback" not in result.output


def test_running_a_binary_file_exits_2_naming_it(tmp_path: Path) -> None:
    binary = tmp_path / "blob.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    result = CliRunner().invoke(app, ["run", str(binary)])
    assert result.exit_code == 2
    assert "blob.yaml" in result.output
    assert "not a UTF-8 text file" in result.output


def test_check_files_keeps_every_file_and_flags_a_reused_name(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    first, second = check_files([tmp_path])
    assert first.scenario is not None
    assert first.issues == []
    assert second.scenario is None
    assert "also used by" in str(second.issues[0])


def test_fault_beyond_the_duration_and_unknown_gate_fault_are_each_at_their_own_line() -> None:
    issues = _issues(TWO_PROBLEMS)
    assert len(issues) == 2, issues
    late, gate = sorted(issues)
    assert late.startswith("x.yaml:12: faults[1].at: fault 'late' starts at 30 s"), late
    assert gate.startswith("x.yaml:18: gates[1]: gate"), gate
    assert "did you mean 'pg-down'" in gate


def test_a_fault_ending_after_the_workload_points_at_its_duration() -> None:
    text = (
        GOOD + "faults:\n  - at: 15s\n    duration: 10s\n    target: redis\n    action: disable\n"
    )
    [issue] = _issues(text)
    assert issue.startswith("x.yaml:7: faults[0].duration: "), issue
    assert "ends at 25 s" in issue


def test_duplicate_fault_names_are_reported_at_the_second_name() -> None:
    fault = "  - name: f\n    at: 1s\n    duration: 1s\n    target: redis\n    action: disable\n"
    [issue] = _issues(GOOD + "faults:\n" + fault + fault)
    assert issue.startswith("x.yaml:11: faults[1].name: two faults are named 'f'"), issue


def test_an_unknown_metric_is_reported_beside_a_timeline_problem() -> None:
    text = TWO_PROBLEMS.replace("  - errors == 0\n", "  - erors == 0\n")
    issues = _issues(text)
    assert len(issues) == 3, issues
    assert any("x.yaml:17: gates[0]: unknown metric 'erors'" in i for i in issues)
