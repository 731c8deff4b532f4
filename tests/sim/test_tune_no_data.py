"""Gates that saw no data, in tuning: NO DATA as ``resilience run`` says it, never PASS/FAIL."""

from __future__ import annotations

from pathlib import Path

from resilience.scenario.gates import parse_scoped_gate
from resilience.sim.report import tune_json, tune_table_rows
from resilience.sim.run import run_simulated
from resilience.sim.space import parse_param
from resilience.sim.trial import (
    TrialJob,
    gate_label,
    prefix_plan,
    prefix_scenario,
    run_trial,
)
from resilience.sim.tune import tune

from .test_search import FIELDS, OBJECTIVES, objectives, outage

EMPTY = "lookup.db p(99) < 50ms @ during: pg"
"""No lookup reaches the database while it is down: this gate sees no data."""
ALLOWED = f"{EMPTY} if any"
HOLDS = ["fallback_rate < 0.5 @ before", "breaker.opens >= 1 @ during: pg"]


def _labels(run: object) -> dict[str, str]:
    return {g: gate_label(st, v) for g, st, _, v in run.gates}  # type: ignore[attr-defined]


def test_trial_labels_are_the_labels_of_resilience_run(tmp_path: Path) -> None:
    """Same history, same verdicts: NO DATA fails, NO DATA (allowed) holds, as in a run."""
    scenario = outage(gates=[*HOLDS, EMPTY, ALLOWED])
    trial = run_trial(TrialJob(scenario, {}, OBJECTIVES))
    result = run_simulated(scenario, history_path=tmp_path / "h.jsonl")
    assert _labels(trial) == {str(r.gate): r.label for r in result.results}
    assert _labels(trial)[EMPTY] == "NO DATA"
    assert _labels(trial)[ALLOWED] == "NO DATA (allowed)"
    assert trial.failed_gates == [EMPTY]
    assert not trial.passed
    assert result.passed is False  # resilience run fails it for the same gate


def test_the_prefix_keeps_if_any_phases_and_references_as_written() -> None:
    comparison = "cache.hit_rate @ during: pg >= 0.5 * cache.hit_rate @ before"
    scenario = outage(gates=[*HOLDS, ALLOWED, comparison])
    plan = prefix_plan(scenario)
    assert plan is not None
    cut = prefix_scenario(scenario, plan)
    kept = {g.source: g for g in cut.scoped_gates()}
    assert set(kept) == {*HOLDS, ALLOWED, comparison}
    assert kept[ALLOWED].allow_no_data
    assert kept[ALLOWED] == parse_scoped_gate(ALLOWED)


def test_a_prefix_without_data_prunes_as_no_data_and_if_any_does_not() -> None:
    params = [parse_param("retry.max_attempts=1,2", FIELDS)]
    strict = tune([outage(gates=[*HOLDS, EMPTY])], params, objectives(), search="grid")
    assert [c.state for c in strict.candidates] == ["pruned", "pruned"]
    assert all(c.pruned_by == [EMPTY] for c in strict.candidates)
    _, cells = tune_table_rows(strict, strict.candidates)
    assert {row[-1] for row in cells} == {f"pruned: NO DATA {EMPTY}"}

    allowed = tune([outage(gates=[*HOLDS, ALLOWED])], params, objectives(), search="grid")
    assert [c.state for c in allowed.candidates] == ["complete", "complete"]
    assert all(c.passed for c in allowed.candidates)
    _, cells = tune_table_rows(allowed, allowed.candidates)
    assert {row[-1] for row in cells} == {"PASS"}
    gates = tune_json(allowed)["candidates"][0]["runs"][-1]["gates"]
    assert {g["gate"]: (g["label"], g["passed"]) for g in gates}[ALLOWED] == (
        "NO DATA (allowed)",
        True,
    )


def test_full_runs_without_data_show_no_data_in_table_and_json() -> None:
    params = [parse_param("retry.max_attempts=1,2", FIELDS)]
    result = tune(
        [outage(gates=[*HOLDS, EMPTY, "fallback_rate < 0 @ after pg"])],
        params,
        objectives(),
        search="grid",
        prune=False,
    )
    assert not result.feasible
    assert not result.front
    _, cells = tune_table_rows(result, result.candidates)
    for row in cells:
        assert row[-1] == f"FAIL fallback_rate < 0 @ after: pg; NO DATA {EMPTY}"
    runs = tune_json(result)["candidates"][0]["runs"]
    labels = {g["gate"]: g["label"] for g in runs[0]["gates"]}
    assert labels[EMPTY] == "NO DATA"
    assert labels["fallback_rate < 0 @ after: pg"] == "FAIL"
