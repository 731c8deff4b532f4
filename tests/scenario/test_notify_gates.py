"""The crash fault's validation and the notification gate metrics, from history records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from resilience.cli import app
from resilience.scenario.loader import ScenarioError, load_scenario
from resilience.scenario.notify import notify_metrics

CRASH = """\
name: crash
workload:
  duration: 10s
  rate: 10
faults:
  - name: crash
    at: 2s
    duration: 2s
    target: service
    action: crash
    component: {component}
gates:
  - notify.missed == 0
"""


def test_a_crash_of_an_unknown_component_is_refused_at_load_time_naming_the_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "crash.yaml"
    path.write_text(CRASH.format(component="monitr"))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    result = CliRunner().invoke(app, ["run", str(path)])
    assert f"{path}:6" in message
    assert "unknown component 'monitr'" in message
    assert "did you mean 'monitor'" in message
    assert result.exit_code == 2
    assert "unknown component 'monitr'" in result.output


def test_a_known_component_loads_and_crash_only_targets_the_service(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(CRASH.format(component="monitor"))
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(CRASH.format(component="monitor").replace("target: service", "target: redis"))
    scenario = load_scenario(good)
    with pytest.raises(ScenarioError, match="'action: crash' needs 'target: service'"):
        load_scenario(wrong)
    assert scenario.faults[0].component == "monitor"


def _note(t_s: float, event: dict[str, Any], arrival_wall: float | None = None) -> dict[str, Any]:
    return {
        "type": "notify",
        "t_us": int(t_s * 1e6),
        "arrival_wall": 1000.0 + t_s if arrival_wall is None else arrival_wall,
        "event": event,
    }


RECORDS = [
    _note(1.0, {"type": "health", "status": "healthy"}),
    _note(
        3.05,
        {"type": "error", "occurred_at": 1003.0, "correlation_id": "a", "severity": "critical"},
    ),
    _note(3.5, {"type": "health", "status": "degraded"}),
    _note(4.0, {"type": "alert", "name": "FallbackRateHigh", "state": "firing"}),
    _note(6.0, {"type": "alert", "name": "FallbackRateHigh", "state": "resolved"}),
    _note(7.5, {"type": "health", "status": "healthy"}),
    {
        "type": "notify_db",
        "t_us": 10_000_000,
        "run_t0_wall": 1000.0,
        "rows": [
            {"correlation_id": "a", "severity": "critical", "occurred_wall": 1003.0},
            {"correlation_id": "lost", "severity": "error", "occurred_wall": 1008.0},
        ],
    },
]


def test_notify_metrics_measure_latency_misses_alerts_and_health_per_window() -> None:
    during = notify_metrics(RECORDS, [(3.0, 5.0)])
    after = notify_metrics(RECORDS, [(5.0, 10.0)])
    before = notify_metrics(RECORDS, [(0.0, 3.0)])
    assert during["notify.latency"] == [pytest.approx(0.05)]
    assert during["notify.missed"] == 0
    assert during["alerts.fired"] == 1
    assert during["alerts.fired.FallbackRateHigh"] == 1
    assert during["alerts.firing"] == 1
    assert during["health.degraded"] == 1.0
    assert during["health.healthy"] == 0.0
    assert after["notify.missed"] == 1  # "lost" is in the database, never on the stream
    assert after["alerts.fired"] == 0
    assert after["alerts.firing"] == 0
    assert after["health.degraded"] == 1.0  # still degraded when the window opened
    assert after["health.healthy"] == 1.0
    assert before["health.degraded"] == 0.0
    assert before["notify.latency"] == []


def test_a_name_label_keeps_one_rules_alerts() -> None:
    """``alerts.fired{name=Rule}`` counts that rule only (the issue's spelling of the gate)."""
    mine = notify_metrics(RECORDS, [(3.0, 5.0)], {"name": "FallbackRateHigh"})
    other = notify_metrics(RECORDS, [(3.0, 5.0)], {"name": "LookupLatencyHigh"})
    assert (mine["alerts.fired"], mine["alerts.firing"]) == (1, 1)
    assert (other["alerts.fired"], other["alerts.firing"]) == (0, 0)


def test_without_a_stream_the_notify_metrics_are_absent() -> None:
    assert notify_metrics([], [(0.0, 10.0)]) == {}


def test_only_gates_on_the_event_stream_subscribe_to_a_remote_target() -> None:
    from resilience.scenario.notify import NAMES, uses_stream

    assert all(uses_stream([name]) for name in NAMES)
    assert uses_stream(["http", "notify.latency"])
    assert uses_stream(["alerts.fired.FallbackRateHigh"])
    assert uses_stream(["health.degraded"])
    assert not uses_stream(["http", "prom.tiny_requests_total", "lookup"])
    assert not uses_stream([])
