"""Tuning's parameter space and the rate bounds it reports (the search is in test_search.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from resilience.scenario.gates import hours_needed, poisson_upper, rate_upper_bound
from resilience.sim.space import Param, ParamError, combinations, parse_param

from .conftest import make_scenario

FIELDS = {
    "breaker": ["name", "failure_threshold", "reset_timeout_s", "half_open_max_calls"],
    "retry": ["max_attempts", "initial_delay_s"],
    "cache": ["ttl_s", "max_size"],
}


def test_parse_lists_ranges_durations_and_unit_suffixes() -> None:
    assert parse_param("breaker.failure_threshold=3,5,8", FIELDS).values == (3, 5, 8)
    reset = parse_param("breaker.reset_timeout=10s,1m", FIELDS)
    assert reset.name == "breaker.reset_timeout_s"
    assert reset.values == (10.0, 60.0)
    attempts = parse_param("retry.max_attempts=1..4", FIELDS)
    assert attempts.grid_values() == (1, 2, 3, 4)
    ttl = parse_param("cache.ttl=5m..30m:5m", FIELDS)
    assert ttl.grid_values() == (300.0, 600.0, 900.0, 1200.0, 1500.0, 1800.0)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("breaker.failure_treshold=3", "did you mean breaker.failure_threshold"),
        ("nosuch.x=1", "unknown setting"),
        ("breaker.failure_threshold", "name=v1,v2"),
        ("retry.max_attempts=4..1", "below its low end"),
        ("retry.max_attempts=1,1", "listed twice"),
        ("cache.ttl=a..b", "numbers or durations"),
        ("retry.max_attempts=3..3", "range is empty"),
        ("breaker.reset_timeout=0s..10s:log", "must start above 0"),
        ("breaker.reset_timeout=1s..10s:2s:log", "takes no step"),
        ("retry.max_attempts=1..4:9", "larger than the range"),
        ("cache.ttl=1s..5s:fast", "positive step or 'log'"),
        ("breakr.failure_threshold=3", "did you mean breaker.failure_threshold"),
    ],
)
def test_bad_params_are_explained(spec: str, message: str) -> None:
    with pytest.raises(ParamError, match=message):
        parse_param(spec, FIELDS)


def test_ranges_become_optuna_distributions() -> None:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    reset = parse_param("breaker.reset_timeout_s=1s..120s:log", FIELDS).distribution()
    assert isinstance(reset, FloatDistribution)
    assert (reset.low, reset.high, reset.log) == (1.0, 120.0, True)
    attempts = parse_param("retry.max_attempts=1..4", FIELDS).distribution()
    assert isinstance(attempts, IntDistribution)
    assert (attempts.low, attempts.high) == (1, 4)
    listed = parse_param("breaker.failure_threshold=3,5,8", FIELDS).distribution()
    assert listed == IntDistribution(0, 2)  # numbers: ordinal, searched by index
    named = parse_param("breaker.name=a,b", FIELDS).distribution()
    assert isinstance(named, CategoricalDistribution)
    assert named.choices == ("a", "b")
    stepped = parse_param("cache.ttl=1m..5m:1m", FIELDS).distribution()
    assert isinstance(stepped, FloatDistribution)
    assert stepped.step == 60.0


def test_a_log_range_has_no_grid_but_samples_evenly_in_log() -> None:
    reset = parse_param("breaker.reset_timeout_s=1s..100s:log", FIELDS)
    with pytest.raises(ParamError, match="log-scaled range has no grid"):
        reset.grid_values()
    assert reset.at(0.0) == 1.0
    assert reset.at(0.5) == pytest.approx(10.0)


def test_float_range_needs_a_step_for_the_grid() -> None:
    with pytest.raises(ParamError, match="needs a step"):
        combinations([parse_param("breaker.reset_timeout=1.5s..9s", FIELDS)])


def test_grid_is_the_cartesian_product() -> None:
    params = [Param("a", values=(1, 2, 3)), Param("b", values=("x", "y"))]
    combos = combinations(params)
    assert len(combos) == 6
    assert combos[0] == {"a": 1, "b": "x"}
    assert combos[-1] == {"a": 3, "b": "y"}


def test_latin_hypercube_uses_every_stratum_once() -> None:
    params = [Param("a", low=0.0, high=1.0), Param("b", low=0, high=9, integer=True)]
    combos = combinations(params, sample="lhs", samples=10, seed=4)
    assert len(combos) == 10
    assert sorted(int(c["a"] * 10) for c in combos) == list(range(10))  # type: ignore[operator]
    assert sorted(c["b"] for c in combos) == list(range(10))  # type: ignore[type-var]
    assert combos == combinations(params, sample="lhs", samples=10, seed=4)


def test_random_sample_is_seeded_and_in_range() -> None:
    params = [Param("a", low=5.0, high=6.0)]
    combos = combinations(params, sample="random", samples=30, seed=1)
    assert all(5.0 <= c["a"] <= 6.0 for c in combos)  # type: ignore[operator]
    assert combos == combinations(params, sample="random", samples=30, seed=1)
    assert combos != combinations(params, sample="random", samples=30, seed=2)


def test_poisson_upper_bounds() -> None:
    """Known values of the exact one-sided 95 % bound."""
    assert poisson_upper(0) == pytest.approx(-math.log(0.05))
    assert poisson_upper(1) == pytest.approx(4.7439, abs=1e-3)
    assert poisson_upper(5) == pytest.approx(10.5130, abs=1e-3)
    assert rate_upper_bound(0, 7200.0) == pytest.approx(1.4979, abs=1e-3)
    assert hours_needed(1.0) == pytest.approx(2.9957, abs=1e-3)


def test_rate_gates_are_checked_on_their_upper_bound(tmp_path: Path) -> None:
    """0 opens in 38 s meets "< 1 per hour" on the estimate but not at 95 %: inconclusive."""
    from resilience.scenario.gates import parse_scoped_gate
    from resilience.sim.run import run_simulated

    scenario = make_scenario(faults=[])
    gates = [parse_scoped_gate("breaker.opens per_hour < 1"), parse_scoped_gate("errors == 0")]
    result = run_simulated(scenario, history_path=tmp_path / "h.jsonl", gates=gates)
    rate, errors = result.results[:2]
    assert errors.bound is None
    bound = rate.bound
    assert bound is not None
    assert bound.count == 0
    assert rate.observed == 0.0
    assert rate.status == "inconclusive"
    assert rate.inconclusive
    assert rate.verdict_on == "upper bound"
    assert result.passed  # inconclusive does not fail the run
    assert bound.upper == pytest.approx(rate_upper_bound(0, bound.window_s))
    assert bound.window_needed_s == pytest.approx(3 * 3600, rel=0.01)


def test_a_simulated_hour_shows_a_rare_event_rate(tmp_path: Path) -> None:
    """Three clean simulated hours are enough for "< 1 per hour" at 95 %: the gate passes."""
    from resilience.scenario.gates import parse_scoped_gate
    from resilience.sim.run import run_simulated

    scenario = make_scenario(
        workload={"duration": 3 * 3600 + 120, "rate": 2, "warmup": 60}, faults=[]
    )
    gates = [parse_scoped_gate("breaker.opens per_hour < 1")]
    result = run_simulated(scenario, history_path=tmp_path / "h.jsonl", gates=gates)
    (rate,) = result.results[:1]
    assert rate.status == "pass", rate.message
    assert rate.bound is not None
    assert rate.bound.upper < 1.0
    assert rate.verdict_on == "upper bound"
