"""The gate forms probing found missing (issue 15): label filters, breaker-state and
per-occurrence scoping, phase comparisons — grammar, errors and evaluation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from resilience.scenario.gates import (
    GateSyntaxError,
    Phase,
    Timeline,
    evaluate_scoped,
    parse_scoped_gate,
    windows_for,
)
from resilience.scenario.model import Scenario
from resilience.sim.run import run_simulated

# -- grammar -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "lookup{reason=connection} count >= 1",
        "lookup{reason=not_found} count == 0 @ during: cut",
        'prom.http_requests{status="500",method=GET} count == 0',
        "db.calls max <= 2 @ each half_open",
        "breaker.opens <= 1 @ each flap",
        "success_rate >= 0.9 @ during: open",
        "errors == 0 @ during: flap#3",
        "cache.hit_rate @ during: slicer >= 0.95 * cache.hit_rate @ before",
        "lookup.db p(99) <= 2 * lookup.db p(99) @ before if any",
    ],
)
def test_new_forms_parse_and_their_source_parses_back(text: str) -> None:
    gate = parse_scoped_gate(text)
    assert parse_scoped_gate(gate.source) == gate
    assert gate.source == text.replace('"500"', "500")  # quotes only where needed


def test_label_filters_and_quoted_values() -> None:
    gate = parse_scoped_gate('prom.x{status="500", path="/a b"} count == 0').gate
    assert gate.metric == "prom.x"
    assert gate.labels == (("status", "500"), ("path", "/a b"))
    assert gate.labelled == 'prom.x{status=500,path="/a b"}'


def test_phases_each_occurrence_and_breaker_states() -> None:
    assert parse_scoped_gate("x < 1 @ during flap#3").phase == Phase("during", "flap", None, 3)
    assert parse_scoped_gate("x < 1 @ each half_open").phase == Phase("each", "half_open")


def test_phase_comparison_keeps_both_phases() -> None:
    gate = parse_scoped_gate("cache.hit_rate @ during slicer >= 0.95 * cache.hit_rate @ before")
    assert gate.phase == Phase("during", "slicer")
    assert gate.gate.ref is not None
    assert gate.gate.ref.phase == Phase("before")
    assert gate.gate.threshold == 0.95


@pytest.mark.parametrize(
    ("text", "column", "problem"),
    [
        ("lookup{reason connection} count > 1", 7, "expected name=value"),
        ("lookup{reason=a count > 1", 6, "not closed"),
        ("lookup{} count > 1", 6, "empty label filter"),
        ("x < 1 @ eahc flap", 8, "did you mean 'each'"),
        ("x < 1 @ each", 12, "'each' needs a fault or breaker state"),
        ("x < 1 @ after flap#2", 18, "'#n' picks one occurrence"),
        ("x < 1 @ during flap#0", 19, "occurrences count from 1"),
        ("x >= 0.9 * @ before", 10, "expected a metric after '*'"),
        ("x >= 0.9 * y avgg", 13, "did you mean 'avg'"),
        ("x >= 2ms * y", 9, "a factor before '*' takes no unit"),
        ("x @ before >= 1 @ after", 16, "phase given twice"),
        ("x >= 0.9 * y @ recovery within 5s", 15, "cannot be scoped to 'recovery'"),
    ],
)
def test_errors_name_the_problem_with_a_caret(text: str, column: int, problem: str) -> None:
    with pytest.raises(GateSyntaxError) as caught:
        parse_scoped_gate(text)
    assert problem in caught.value.problem
    assert caught.value.column == column, str(caught.value)
    assert "^" in str(caught.value)


# -- evaluation on a timeline ------------------------------------------------------------

TIMELINE = Timeline(
    0.0,
    30.0,
    {"flap": [(5.0, 7.0), (12.0, 14.0), (20.0, 22.0)]},
    {"open": [(5.0, 8.0)], "half_open": [(8.0, 8.5), (15.0, 15.5)], "closed": [(0.0, 5.0)]},
)


def test_windows_of_an_occurrence_each_and_a_breaker_state() -> None:
    assert windows_for(Phase("during", "flap", None, 2), TIMELINE) == [(12.0, 14.0)]
    assert windows_for(Phase("each", "flap"), TIMELINE) == [(5.0, 7.0), (12.0, 14.0), (20.0, 22.0)]
    assert windows_for(Phase("during", "half_open"), TIMELINE) == [(8.0, 8.5), (15.0, 15.5)]
    with pytest.raises(KeyError, match="has 3 occurrence"):
        windows_for(Phase("during", "flap", None, 4), TIMELINE)


def _calls(windows: Sequence[tuple[float, float]]) -> Mapping[str, Any]:
    """db.calls: 2 in the first half-open window, 3 in the second; 0.9 hit rate before."""
    calls = sum(3 if a >= 15.0 else 2 for a, _ in windows)
    hit_rate = 0.9 if windows[0][0] < 5.0 else 0.8
    return {"db.calls": calls, "cache.hit_rate": hit_rate, "window_s": 1.0}


def test_each_judges_every_window_and_names_the_failing_one() -> None:
    ok, bad = evaluate_scoped(
        [
            parse_scoped_gate("db.calls max <= 3 @ each half_open"),
            parse_scoped_gate("db.calls max <= 2 @ each half_open"),
        ],
        TIMELINE,
        _calls,
    )
    assert (ok.status, ok.observed) == ("pass", 3)
    assert bad.status == "fail"
    assert "window 2 of 2 (15.0–15.5 s)" in bad.message


def test_a_phase_comparison_uses_the_reference_phase() -> None:
    ok, bad = evaluate_scoped(
        [
            parse_scoped_gate("cache.hit_rate @ during flap >= 0.85 * cache.hit_rate @ before"),
            parse_scoped_gate("cache.hit_rate @ during flap >= 0.95 * cache.hit_rate @ before"),
        ],
        TIMELINE,
        _calls,
    )
    assert ok.status == "pass"
    assert bad.status == "fail"
    assert "0.95 * cache.hit_rate @ before = 0.855" in bad.message
    assert bad.gate.source.startswith("cache.hit_rate @ during: flap >= 0.95")


def test_label_filters_without_a_filtering_source_fail_clearly() -> None:
    [result] = evaluate_scoped(
        [parse_scoped_gate("lookup{reason=connection} count >= 1")], TIMELINE, _calls
    )
    assert result.status == "fail"
    assert "label filters are not available" in result.message


# -- on a simulated run ------------------------------------------------------------------------


def test_the_new_forms_on_a_simulated_outage(tmp_path: Path) -> None:
    scenario = Scenario.model_validate(
        {
            "name": "vocabulary",
            "seed": 4,
            "service": {"breaker.reset_timeout_s": "2s"},
            "workload": {
                "duration": 24,
                "rate": 60,
                "warmup": 2,
                "mix": {"lookup": 1.0},
                "keys": {"catalogue_size": 400},
            },
            "faults": [
                {
                    "name": "flap",
                    "at": 4,
                    "duration": 3,
                    "every": 8,
                    "times": 2,
                    "target": "postgres",
                    "action": "disable",
                }
            ],
            "gates": [
                "lookup{reason=connection} count >= 1 @ during flap",
                "lookup{reason=not_found} count == 0 @ during flap#2",
                "lookup{path=fallback,reason=circuit_open} count >= 1",
                "breaker.opens <= 1 @ each flap",
                "db.calls max <= 1 @ each half_open",
                "success_rate @ after >= 0.9 * success_rate @ before",
            ],
            "steady_state": {"probes": 3, "timeout": "10s"},
        }
    )
    result = run_simulated(scenario, history_path=tmp_path / "h.jsonl")
    by_gate = {r.gate.source: r for r in result.results}
    for source, r in by_gate.items():
        assert r.status == "pass", f"{source}: {r.message}"
    assert by_gate["breaker.opens <= 1 @ each flap"].observed == 1


# -- report formatting ----------------------------------------------------------------------


def test_recovery_shows_the_time_beside_the_rule_and_durations_share_one_unit() -> None:
    from rich.console import Console

    from resilience.scenario.gates import check
    from resilience.scenario.loader import parse_scenario
    from resilience.scenario.reports.terminal import gate_table
    from resilience.scenario.runner import RunResult

    scenario = parse_scenario(
        "name: units\nseed: 1\nworkload: {duration: 10s, rate: 10}\n"
        "gates: [lookup.db max < 1s, lookup.cache p(99) < 1ms]\n"
    )
    result = RunResult(scenario=scenario, history_path=Path("unused.jsonl"))
    metrics = {"lookup.db": [0.6888], "lookup.cache": [0.000019], "window_s": 5.0}
    result.results = [check(g, metrics) for g in scenario.scoped_gates()]
    [recovery] = evaluate_scoped(
        [parse_scoped_gate("degraded_rate < 0.02 @ recovery within 8s")],
        Timeline(0.0, 20.0, {"f": [(2.0, 5.0)]}),
        lambda ws: {"degraded_rate": 0.5 if ws[0][0] < 8.0 else 0.0, "window_s": 1.0},
    )
    result.results.append(recovery)
    console = Console(record=True, width=200)
    console.print(gate_table(result))
    text = console.export_text()
    for shown in ("688.8ms", "< 1000ms", "0.019ms"):
        assert shown in text
    for mixed in ("0.6888s", "19us"):
        assert mixed not in text
    assert recovery.observed_text == "recovered in 3.0s"
    assert recovery.target_text == "< 0.02 again within 8s"


def test_a_scenario_names_occurrences_and_breaker_states_it_has() -> None:
    from resilience.errors import InvalidInput
    from resilience.scenario.loader import parse_scenario

    head = (
        "name: occ\nseed: 1\nworkload: {duration: 10s, rate: 10}\nfaults:\n"
        "  - {name: flap, at: 2s, duration: 1s, every: 3s, times: 2, target: postgres,"
        " action: disable}\ngates:\n"
    )
    ok = parse_scenario(head + "  - errors == 0 @ during flap#2\n  - errors == 0 @ each open\n")
    assert len(ok.scoped_gates()) == 2
    with pytest.raises(InvalidInput, match=r"occurrence #3 of fault 'flap', which occurs 2"):
        parse_scenario(head + "  - errors == 0 @ during flap#3\n")
