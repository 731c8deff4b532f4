"""The scenario schema and YAML loader: valid files load, every mistake is located and explained."""

from __future__ import annotations

from pathlib import Path

import pytest

from resilience.errors import InvalidInput
from resilience.scenario.loader import ScenarioError, load_scenario, load_suite, parse_scenario

SUITE = Path(__file__).resolve().parents[2] / "scenarios"

MINIMAL = """\
name: t
workload:
  duration: 20s
  rate: 100
"""


def _issues(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "x.yaml")
    return [str(i) for i in info.value.issues]


def test_minimal_scenario_gets_defaults() -> None:
    sc = parse_scenario(MINIMAL)
    assert sc.workload.duration == 20.0
    assert sc.workload.warmup == 0.0
    assert sc.environment.backend == "local"
    assert sc.gates is None
    assert len(sc.scoped_gates()) == 7  # TARGETS.md defaults


def test_durations_accept_units() -> None:
    sc = parse_scenario(MINIMAL.replace("20s", "1.5m") + "  warmup: 250ms\n")
    assert sc.workload.duration == 90.0
    assert sc.workload.warmup == 0.25


def test_unknown_key_names_file_line_field_and_suggests() -> None:
    [issue] = _issues(MINIMAL + "  warmpu: 2s\n")
    assert issue.startswith("x.yaml:5: workload.warmpu: unknown key 'warmpu'")
    assert "did you mean 'warmup'" in issue
    assert "valid: " in issue


def test_bad_choice_lists_valid_choices() -> None:
    [issue] = _issues(MINIMAL + "environment:\n  backend: lcoal\n")
    assert "x.yaml:6: environment.backend" in issue
    assert "did you mean 'local'" in issue
    assert "local, docker, external" in issue


def test_toxic_attribute_typo_is_caught() -> None:
    text = MINIMAL + (
        "faults:\n  - at: 1s\n    duration: 2s\n    target: postgres\n"
        "    toxic: latency\n    attributes: {latncy: 300}\n"
    )
    [issue] = _issues(text)
    assert "faults[0]" in issue
    assert "did you mean 'latency'" in issue


def test_unknown_toxic_type_suggests() -> None:
    text = MINIMAL + "faults:\n  - {at: 1s, duration: 2s, target: postgres, toxic: latncy}\n"
    [issue] = _issues(text)
    assert "did you mean 'latency'" in issue
    assert "reset_peer" in issue


def test_all_problems_are_reported_at_once() -> None:
    issues = _issues("name: t\nworkload:\n  duraton: 20s\n  rate: -1\n")
    assert len(issues) == 3  # duration missing, duraton unknown, rate not > 0
    assert any("workload.duration: required field is missing" in i for i in issues)


def test_yaml_syntax_error_has_a_line() -> None:
    [issue] = _issues("name: t\nworkload: [\n")
    assert issue.startswith("x.yaml:3")
    assert "not valid YAML" in issue


def test_duplicate_keys_are_errors() -> None:
    issues = _issues(MINIMAL + "name: again\n")
    assert any("x.yaml:5: name: duplicate key" in i for i in issues)


def test_gate_syntax_error_points_at_the_gate() -> None:
    [issue] = _issues(MINIMAL + "gates:\n  - cache.hit_rate >> 0.7\n")
    assert "x.yaml:6: gates[0]" in issue
    assert "two comparisons" in issue


def test_unknown_metric_suggests_a_known_one() -> None:
    [issue] = _issues(MINIMAL + "gates:\n  - cache.hit_rat >= 0.7\n")
    assert "x.yaml:6" in issue
    assert "did you mean 'cache.hit_rate'" in issue


def test_phase_naming_an_unknown_fault_is_an_error() -> None:
    text = MINIMAL + (
        "faults:\n  - {name: pg-down, at: 1s, duration: 2s, target: postgres, action: disable}\n"
        "gates:\n  - 'errors == 0 @ during: pg-dwn'\n"
    )
    [issue] = _issues(text)
    assert "did you mean 'pg-down'" in issue


def test_gate_forms_all_normalise_to_the_same_thing() -> None:
    faults = "faults:\n  - {name: f, at: 1s, duration: 2s, target: redis, action: disable}\n"
    forms = [
        "gates:\n  - errors == 0 @ during: f\n",  # YAML reads this as a one-key mapping
        "gates:\n  - 'errors == 0 @ during f'\n",
        "gates:\n  - {expr: errors == 0, phase: 'during: f'}\n",
        "gates:\n  'during: f': [errors == 0]\n",
    ]
    sources = {parse_scenario(MINIMAL + faults + g).scoped_gates()[0].source for g in forms}
    assert sources == {"errors == 0 @ during: f"}


def test_fault_past_the_end_of_the_workload_is_an_error() -> None:
    [issue] = _issues(
        MINIMAL + "faults:\n  - {at: 15s, duration: 10s, target: redis, action: disable}\n"
    )
    assert "ends at 25 s, after the workload" in issue


def test_service_overrides_are_checked_against_the_service_config() -> None:
    [issue] = _issues(MINIMAL + "service:\n  breaker.bogus: 1\n")
    assert "x.yaml:6: service.breaker.bogus" in issue


def test_scenario_error_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        parse_scenario("just a string")


def test_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "nope.yaml")


def test_the_default_suite_loads_and_every_scenario_states_its_intent() -> None:
    scenarios = load_suite([SUITE])
    assert len(scenarios) >= 10
    for sc in scenarios:
        assert len(sc.description) > 40, sc.name
        assert sc.workload.duration <= 40
    total = sum(sc.workload.duration for sc in scenarios)
    # 280 s before the process and protocol faults (12-16, 45 s), the notification
    # scenarios (28-29, 19 s) and the booking scenarios (20-24, 130 s); the suite's wall
    # time stays near 8 minutes on two cores
    assert total <= 470
