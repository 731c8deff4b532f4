"""Rate gates on small counts are judged on the 95 % Poisson upper bound of the rate."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resilience.scenario.gates import (
    SMALL_COUNT,
    check,
    hours_needed,
    parse_gate,
    poisson_upper,
    rate_upper_bound,
)
from resilience.scenario.gates.confidence import _poisson_cdf

_counts = st.integers(min_value=0, max_value=60)
_windows = st.floats(min_value=1.0, max_value=30 * 86400.0)
_limits = st.floats(min_value=0.01, max_value=500.0)
_aggregations = st.sampled_from(["per_s", "per_min", "per_hour"])
_PER = {"per_s": 1.0, "per_min": 60.0, "per_hour": 3600.0}


def test_known_values_of_the_bound() -> None:
    assert poisson_upper(0) == pytest.approx(-math.log(0.05))
    assert poisson_upper(1) == pytest.approx(4.7439, abs=1e-3)
    assert poisson_upper(5) == pytest.approx(10.5130, abs=1e-3)
    assert rate_upper_bound(0, 7200.0) == pytest.approx(1.4979, abs=1e-3)
    assert hours_needed(1.0) == pytest.approx(2.9957, abs=1e-3)


@given(st.integers(min_value=0, max_value=400))
def test_the_bound_leaves_five_percent_below_it(count: int) -> None:
    """At λ = bound, seeing at most ``count`` events has probability 5 % (exact bound)."""
    upper = poisson_upper(count)
    assert upper >= count
    assert _poisson_cdf(count, upper) == pytest.approx(0.05, abs=1e-6)
    assert poisson_upper(count + 1) > upper


@given(_counts, _windows, _limits, _aggregations)
def test_small_counts_are_judged_on_the_bound_large_ones_on_the_estimate(
    count: int, window_s: float, limit: float, aggregation: str
) -> None:
    gate = parse_gate(f"events {aggregation} < {limit}")
    result = check(gate, {"events": count, "window_s": window_s})
    per = _PER[aggregation]
    estimate = count * per / window_s
    upper = rate_upper_bound(count, window_s, per_s=per)
    bound = result.bound
    assert bound is not None
    assert result.observed == pytest.approx(estimate)
    assert bound.estimate == pytest.approx(estimate)
    assert bound.upper == pytest.approx(upper)
    assert bound.upper >= bound.estimate
    if not estimate < limit:
        assert result.status == "fail"
    elif count >= SMALL_COUNT:
        assert result.status == "pass"
        assert result.verdict_on == "estimate"
    elif upper < limit:
        assert result.status == "pass"
        assert result.verdict_on == "upper bound"
    else:  # the estimate meets the limit, the bound does not: too little data
        assert result.status == "inconclusive"
        assert result.inconclusive
        assert result.passed
        assert result.label == "INCONCLUSIVE"
        assert "not shown at 95%" in result.message


@given(_counts, _windows)
def test_only_upper_limited_rate_gates_get_a_bound(count: int, window_s: float) -> None:
    metrics = {"events": count, "ratio": 0.5, "lat": [0.001] * 3, "window_s": window_s}
    assert check(parse_gate("events per_hour > 1"), metrics).bound is None
    assert check(parse_gate("events < 5"), metrics).bound is None
    assert check(parse_gate("ratio per_hour < 5"), metrics).bound is None  # not a count
    assert check(parse_gate("lat avg < 1s"), metrics).bound is None
    assert check(parse_gate("lat rate < 1"), metrics).bound is not None  # samples counted


def test_zero_opens_in_five_minutes_is_inconclusive_and_names_the_run_needed() -> None:
    result = parse_gate("breaker.opens per_hour < 1")({"breaker.opens": 0, "window_s": 300.0})
    assert result.status == "inconclusive"  # data, too little of it: not NO DATA
    assert result.passed
    assert result.inconclusive
    assert result.observed == 0.0
    assert result.bound is not None
    assert result.bound.upper == pytest.approx(35.9, abs=0.1)
    assert result.bound.window_needed_s == pytest.approx(3 * 3600, rel=0.01)
    assert result.bound_text == "≤ 35.95"
    assert "a clean run of 3 h would show it" in result.message
    data = result.to_dict()
    assert data["inconclusive"] is True
    assert data["verdict_on"] == "upper bound"
    assert data["bound"]["count"] == 0  # type: ignore[index]


def test_zero_opens_in_four_hours_passes_on_the_bound() -> None:
    result = parse_gate("breaker.opens per_hour < 1")({"breaker.opens": 0, "window_s": 4 * 3600.0})
    assert result.status == "pass"
    assert result.verdict_on == "upper bound"
    assert result.bound is not None
    assert result.bound.upper == pytest.approx(0.749, abs=1e-3)


def test_every_report_shows_the_estimate_the_bound_and_what_the_verdict_used() -> None:
    from pathlib import Path

    from rich.console import Console

    from resilience.scenario.gates import parse_scoped_gate
    from resilience.scenario.loader import parse_scenario
    from resilience.scenario.reports import junit_tree, print_result, render_html, result_dict
    from resilience.scenario.runner import RunResult

    scenario = parse_scenario(
        "name: bounds\nseed: 1\nworkload: {duration: 10s, rate: 10}\n"
        "gates: [breaker.opens per_hour < 1, errors == 0]\n"
    )
    metrics = {"breaker.opens": 0, "errors": 0, "window_s": 300.0}
    result = RunResult(scenario=scenario, history_path=Path("unused.jsonl"))
    result.results = [check(g, metrics) for g in scenario.scoped_gates()]
    assert result.exit_code == 0  # inconclusive does not fail the run

    console = Console(record=True, width=200)
    print_result(result, console)
    text = console.export_text()
    assert "95 % bound" in text
    assert "≤ 35.95 *" in text
    assert "INCONCLUSIVE" in text
    assert "judged on the 95 % upper bound" in text

    suite = junit_tree([result]).getroot().find("testsuite")
    assert suite is not None
    case = suite.find("testcase[@name='breaker.opens per_hour < 1']")
    assert case is not None
    assert case.find("skipped") is not None
    out = case.findtext("system-out") or ""
    for part in ("count 0 in 300 s", "estimate 0", "upper bound 35.95", "verdict on the upper"):
        assert part in out

    page = render_html(result, None)
    for part in ("95 % upper bound", "≤ 35.95", "INCONCLUSIVE", "verdict on"):
        assert part in page

    (gate,) = [g for g in result_dict(result, None)["gates"] if g["gate"].startswith("breaker")]
    assert gate["observed"] == 0.0
    assert gate["bound"]["upper"] == pytest.approx(35.95, abs=0.01)
    assert gate["verdict_on"] == "upper bound"
    assert parse_scoped_gate("errors == 0").source in [
        g["gate"] for g in result_dict(result, None)["gates"]
    ]
