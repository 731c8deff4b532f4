"""The tuning search: objectives, exact early stopping, several scenarios, noise, reports, CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from resilience.sim.objectives import ObjectiveError, measure, parse_objective
from resilience.sim.report import tune_html, tune_json
from resilience.sim.space import parse_param
from resilience.sim.trial import (
    TrialJob,
    prefix_plan,
    prefix_scenario,
    run_trial,
)
from resilience.sim.tune import tune
from tests.servers import requires_servers

from .conftest import make_scenario

FIELDS = {
    "breaker": ["name", "failure_threshold", "reset_timeout_s", "half_open_max_calls"],
    "retry": ["max_attempts", "initial_delay_s"],
    "cache": ["ttl_s", "max_size"],
}
OBJECTIVES = (("fallback_rate", False), ("lookup p(95)", False), ("cache.hit_rate", True))


def outage(name: str = "outage", seed: int = 5, **changes: Any) -> Any:
    """30 s at 50 lookups/s, PostgreSQL down from 3 to 7 s; the breaker must open during it."""
    data: dict[str, Any] = {
        "name": name,
        "seed": seed,
        "workload": {"duration": 30, "rate": 50, "warmup": 1, "keys": {"catalogue_size": 400}},
        "faults": [
            {"name": "pg", "at": 3, "duration": 4, "target": "postgres", "action": "disable"}
        ],
        "gates": [
            "fallback_rate < 0.5 @ before",
            "breaker.opens >= 1 @ during pg",
            "degraded_rate < 0.2 @ after pg",
        ],
        "steady_state": {"probes": 3, "timeout": "10s"},
    }
    data.update(changes)
    return make_scenario(**data)


def objectives() -> list[Any]:
    return [parse_objective(text, maximize=up) for text, up in OBJECTIVES]


def test_objectives_are_gate_metrics_measured_as_the_gate_measures_them(tmp_path: Path) -> None:
    from resilience.scenario.gates import parse_scoped_gate
    from resilience.sim.run import run_simulated

    scenario = outage()
    p95 = parse_objective("lookup p(95) @ during pg", maximize=False)
    alias = parse_objective("hit_rate", maximize=True)
    assert alias.scoped.gate.metric == "cache.hit_rate"
    gates = [
        parse_scoped_gate("lookup p(95) < 10s @ during pg"),
        parse_scoped_gate("cache.hit_rate > 0"),
    ]
    result = run_simulated(scenario, history_path=tmp_path / "h.jsonl", gates=gates)
    values = measure([p95, alias], result.history)
    assert values == [result.results[0].observed, result.results[1].observed]
    assert p95.is_duration
    assert p95.format(0.00123) == "1.23 ms"
    per_op = parse_objective("lookup.error_rate", maximize=False)  # a per-operation metric
    assert measure([per_op], result.history)[0] is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cache.hitrate", "did you mean 'cache.hit_rate'"),
        ("lookup p(95", "unknown aggregation"),
        ("nosuch", "unknown metric 'nosuch'"),
        ("", "name a metric"),
    ],
)
def test_unknown_objectives_are_explained(text: str, message: str) -> None:
    with pytest.raises(ObjectiveError, match=message):
        parse_objective(text, maximize=False)


def test_a_prefix_decides_the_before_and_during_gates_exactly_as_the_full_run() -> None:
    scenario = outage()
    plan = prefix_plan(scenario)
    assert plan is not None
    assert plan.until_s == 8.0  # the outage ends at 7 s, plus a second for in-flight lookups
    assert set(plan.gates) == {"fallback_rate < 0.5 @ before", "breaker.opens >= 1 @ during: pg"}
    cut = prefix_scenario(scenario, plan)
    assert cut.workload.duration == 8.0
    for threshold in (2, 500):
        params = {"breaker.failure_threshold": threshold}
        short = run_trial(TrialJob(scenario, params, OBJECTIVES, until_s=plan.until_s))
        full = run_trial(TrialJob(scenario, params, OBJECTIVES))
        decided = {g: (s, o) for g, s, o, _ in full.gates}
        for gate, status, observed, _ in short.gates:
            if gate in decided:
                assert (status, observed) == decided[gate], gate


def test_no_prefix_when_the_gates_are_decided_only_at_the_end() -> None:
    late = outage(
        faults=[{"name": "pg", "at": 20, "duration": 5, "target": "postgres", "action": "disable"}],
        gates=["breaker.opens >= 1 @ during pg"],
    )
    assert prefix_plan(late) is None  # 26 s of 30: not worth a second run


def test_optuna_search_prunes_failing_trials_and_is_reproducible() -> None:
    scenario = outage()
    params = [
        parse_param("breaker.failure_threshold=2..400:log", FIELDS),
        parse_param("retry.max_attempts=1..3", FIELDS),
    ]
    first = tune([scenario], params, objectives(), search="optuna", trials=10, seed=3)
    again = tune([scenario], params, objectives(), search="optuna", trials=10, seed=3)
    assert [c.params for c in first.candidates] == [c.params for c in again.candidates]
    assert len(first.candidates) + first.reused == 10  # a configuration proposed again: reused
    assert first.pruned, "a breaker needing hundreds of failures never opens in 4 s"
    for c in first.pruned:
        assert c.pruned_by == ["breaker.opens >= 1 @ during: pg"]
        assert not c.full_runs()  # the rest of the timeline never ran
    assert first.front
    assert all(c.passed for c in first.front)
    other = tune([scenario], params, objectives(), search="optuna", trials=10, seed=4)
    assert [c.params for c in other.candidates] != [c.params for c in first.candidates]


def test_grid_runs_every_combination_and_a_config_must_hold_in_every_scenario() -> None:
    a, b = outage("outage-a", seed=5), outage("outage-b", seed=6)
    params = [
        parse_param("breaker.failure_threshold=2,400", FIELDS),
        parse_param("retry.max_attempts=1,2", FIELDS),
    ]
    result = tune([a, b], params, objectives(), search="grid", prune=False)
    assert len(result.candidates) == 4
    for c in result.candidates:
        assert {r.scenario for r in c.full_runs()} == {"outage-a", "outage-b"}
        assert c.passed == all(r.passed for r in c.full_runs())
        if c.params["breaker.failure_threshold"] == 400:
            assert not c.passed
    worst = result.candidates[0]
    both = [worst.spread(0, "outage-a"), worst.spread(0, "outage-b")]
    assert worst.pessimistic(result.objectives)[0] == max(s.high for s in both if s)  # type: ignore[index]


def test_noise_reruns_the_front_with_other_seeds_and_judges_the_worst() -> None:
    scenario = outage()
    params = [parse_param("breaker.failure_threshold=2,3", FIELDS)]
    result = tune([scenario], params, objectives(), search="grid", repeats=3, prune=False)
    assert result.front
    for c in result.front:
        seeds = {r.seed for r in c.full_runs()}
        assert len(seeds) == 3
        fallback = c.spread(0)
        hit = c.spread(2)
        assert fallback is not None
        assert hit is not None
        assert fallback.n == 3
        assert c.pessimistic(result.objectives) == [fallback.high, c.spread(1).high, hit.low]  # type: ignore[union-attr]


def test_reports_show_the_front_importance_and_every_trial() -> None:
    scenario = outage()
    params = [
        parse_param("breaker.failure_threshold=2..12", FIELDS),
        parse_param("breaker.reset_timeout_s=1s..20s:log", FIELDS),
    ]
    result = tune([scenario], params, objectives(), search="random", trials=8, seed=1)
    page = tune_html(result)
    assert "<svg" in page
    assert "Pareto front" in page
    assert "importance" in page
    data = json.loads(json.dumps(tune_json(result), default=str))
    assert len(data["candidates"]) == 8
    assert data["front"] == [c.number for c in result.ranked()]
    assert set(data["importance"]["fallback_rate"]) == {
        "breaker.failure_threshold",
        "breaker.reset_timeout_s",
    }


def _write(tmp_path: Path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: cli-tune\nseed: 2\nworkload: {duration: 12s, rate: 40, warmup: 1s}\n"
        "faults:\n  - {name: pg, at: 3s, duration: 3s, target: postgres, action: disable}\n"
        "gates:\n  - fallback_rate < 0.5 @ before\n  - breaker.opens >= 1 @ during pg\n"
    )
    return path


def test_cli_tune_searches_and_writes_reports(tmp_path: Path) -> None:
    from resilience.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "tune",
            str(_write(tmp_path)),
            "--param",
            "breaker.failure_threshold=1..30",
            "--param",
            "breaker.reset_timeout_s=1s..60s:log",
            "--trials",
            "6",
            "--repeats",
            "2",
            "--minimize",
            "lookup p(95)",
            "--maximize",
            "cache.hit_rate",
            "--workers",
            "1",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Pareto front" in result.output
    data = json.loads((out / "tune.json").read_text())
    assert data["objectives"] == [
        {"metric": "lookup p(95)", "direction": "minimize"},
        {"metric": "cache.hit_rate", "direction": "maximize"},
    ]
    assert (out / "tune.html").read_text().startswith("<!doctype html>")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--param", "breaker.nope=1"], "fields of breaker"),
        (["--param", "breakr.reset_timeout=1s..2s"], "did you mean breaker.reset_timeout_s"),
        (["--param", "retry.max_attempts=4..1"], "below its low end"),
        (["--param", "retry.max_attempts=2..2"], "range is empty"),
        (["--param", "retry.max_attempts=1..3", "--minimize", "lookup p(99"], "aggregation"),
        (["--param", "retry.max_attempts=1..3", "--maximize", "hitrate"], "did you mean"),
        (["--param", "retry.max_attempts=1..3", "--search", "bayes"], "use optuna"),
    ],
)
def test_cli_tune_refuses_bad_input_with_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    from resilience.cli import app

    result = CliRunner().invoke(app, ["tune", str(_write(tmp_path)), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


@pytest.mark.slow
@requires_servers
def test_confirm_runs_the_best_for_real_and_recommends_a_service_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir_private: Path
) -> None:
    from resilience.cli import app

    monkeypatch.setenv("RESILIENCE_STATE_DIR", str(state_dir_private))
    out = tmp_path / "out"
    result = _confirm_one(app, tmp_path, out)
    _check_confirmation(result, out)


def _confirm_one(app: Any, tmp_path: Path, out: Path) -> Any:
    return CliRunner().invoke(
        app,
        [
            "tune",
            str(_write(tmp_path)),
            "--param",
            "breaker.failure_threshold=2..12",
            "--param",
            "breaker.reset_timeout_s=1s..30s:log",
            "--trials",
            "6",
            "--repeats",
            "2",
            "--confirm",
            "1",
            "--workers",
            "1",
            "-o",
            str(out),
        ],
    )


def _check_confirmation(result: Any, out: Path) -> None:
    import yaml

    data = json.loads((out / "tune.json").read_text())
    (confirmed,) = data["confirmations"]
    (real,) = confirmed["real"]
    assert real["status"] == "completed", real["error"]
    assert Path(real["history"]).exists()
    assert "simulated vs real" in result.output
    if confirmed["passed"]:
        assert result.exit_code == 0, result.output
        block = result.output.split("settings:", 1)[1].split("evidence:", 1)[0]
        assert yaml.safe_load(block) == {"service": confirmed["params"]}
    else:  # the real run missed a gate: said so, no recommendation
        assert result.exit_code == 1, result.output
        assert "no recommendation" in result.output


def test_nsga2_is_a_choice_and_seeded_too() -> None:
    scenario = outage()
    params = [parse_param("breaker.failure_threshold=2..12", FIELDS)]
    first = tune([scenario], params, objectives(), trials=5, seed=8, sampler="nsga2")
    again = tune([scenario], params, objectives(), trials=5, seed=8, sampler="nsga2")
    assert first.sampler == "nsga2"
    assert [c.params for c in first.candidates] == [c.params for c in again.candidates]


def test_pruning_changes_the_cost_not_the_front() -> None:
    scenario = outage()
    params = [
        parse_param("breaker.failure_threshold=2,400", FIELDS),
        parse_param("retry.max_attempts=1,3", FIELDS),
    ]
    pruned = tune([scenario], params, objectives(), search="grid", prune=True)
    full = tune([scenario], params, objectives(), search="grid", prune=False)
    assert len(pruned.pruned) == 2  # the two breakers needing 400 failures
    assert not full.pruned
    assert [c.params for c in pruned.front] == [c.params for c in full.front]
    assert [c.pessimistic(pruned.objectives) for c in pruned.front] == [
        c.pessimistic(full.objectives) for c in full.front
    ]

    def simulated_s(result: Any) -> float:
        return sum(r.until_s or 30.0 for c in result.candidates for r in c.runs)

    assert simulated_s(pruned) == 4 * 8.0 + 2 * 30.0  # every prefix, then two full runs
    assert simulated_s(full) == 4 * 30.0
