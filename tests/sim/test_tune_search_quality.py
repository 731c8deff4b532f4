"""Search quality: number lists searched by index, proposals again reused, TPE's start."""

from __future__ import annotations

from typing import Any

from resilience.sim.space import parse_param
from resilience.sim.tune import STARTUP_TRIALS, _sampler, tune

from .test_search import FIELDS, objectives, outage


def test_a_list_of_numbers_is_searched_by_index_in_ascending_order() -> None:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    p = parse_param("breaker.failure_threshold=13,2,5,8,3", FIELDS)
    assert p.ordinal
    assert p.ordered == (2, 3, 5, 8, 13)
    assert p.distribution() == IntDistribution(0, 4)
    assert [p.from_search(i) for i in range(5)] == [2, 3, 5, 8, 13]
    assert p.to_search(8) == 3
    durations = parse_param("breaker.reset_timeout=5s,10s,2m", FIELDS)
    assert durations.ordinal
    assert durations.from_search(2) == 120.0
    words = parse_param("breaker.name=a,b", FIELDS)
    assert not words.ordinal
    assert words.distribution() == CategoricalDistribution(("a", "b"))
    assert not parse_param("retry.max_attempts=3", FIELDS).ordinal  # one value: nothing to order


def test_the_study_samples_indices_and_the_candidates_get_the_values() -> None:
    params = [
        parse_param("breaker.failure_threshold=2,3,5,8,13", FIELDS),
        parse_param("retry.max_attempts=1..3", FIELDS),
    ]
    result = tune([outage()], params, objectives(), trials=6, seed=1)
    for c in result.candidates:
        raw = result.study.trials[c.number].params
        assert 0 <= raw["breaker.failure_threshold"] <= 4
        assert c.params["breaker.failure_threshold"] == params[0].from_search(
            raw["breaker.failure_threshold"]
        )
    grid = tune([outage()], params[:1], objectives(), search="grid")
    assert [c.params["breaker.failure_threshold"] for c in grid.candidates] == [2, 3, 5, 8, 13]


def test_a_configuration_proposed_again_is_answered_from_its_first_run() -> None:
    """Four configurations, twelve proposals: four simulations, the rest told the same."""
    import optuna

    params = [
        parse_param("breaker.failure_threshold=2,400", FIELDS),
        parse_param("retry.max_attempts=1,2", FIELDS),
    ]
    result = tune([outage()], params, objectives(), search="random", trials=12, seed=0)
    assert len(result.candidates) <= 4
    assert result.reused == 12 - len(result.candidates)
    trials = result.study.trials
    assert len(trials) == 12
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in trials)
    def told(t: Any) -> tuple[Any, ...]:
        constraints = {k: v for k, v in t.system_attrs.items() if k.startswith("constraints")}
        assert constraints or t.state != optuna.trial.TrialState.COMPLETE
        return t.state, t.values, constraints

    by_config: dict[Any, Any] = {}
    for t in trials:
        seen = by_config.setdefault(tuple(sorted(t.params.items())), t)
        assert told(t) == told(seen)
    ran = sum(len(c.runs) for c in result.candidates)
    assert ran <= 2 * len(result.candidates)  # a prefix and a full run at most, once each


def test_tpe_starts_from_ten_random_trials_and_considers_the_endpoints() -> None:
    assert STARTUP_TRIALS == 10
    sampler = _sampler("optuna", "tpe", 0)
    assert sampler._n_startup_trials == 10
    assert sampler._parzen_estimator_parameters.consider_endpoints


def test_the_k_best_are_the_front_then_the_fronts_behind_it() -> None:
    """--confirm 3 with a one-point front still confirms three feasible configurations."""
    params = [parse_param("breaker.failure_threshold=2,3,5,8", FIELDS)]
    result = tune([outage()], params, objectives(), search="grid")
    feasible = result.feasible
    assert len(feasible) >= 3
    best = result.best(3)
    assert best[: len(result.front)] == result.ranked()[:3]
    assert len(best) == 3
    assert all(c.passed for c in best)
    assert len({c.number for c in best}) == 3
    assert sorted(c.number for c in result.best(100)) == sorted(c.number for c in feasible)


def test_a_study_on_two_workers_is_the_same_for_the_same_seed() -> None:
    """Outcomes are told in the order asked: which run ends first does not matter."""
    from resilience.sim.cluster import local_pool

    params = [
        parse_param("breaker.failure_threshold=2..400:log", FIELDS),
        parse_param("retry.max_attempts=1..3", FIELDS),
    ]

    def study() -> list[tuple[int, dict[str, Any], str]]:
        with local_pool(2) as (pool, width):
            result = tune(
                [outage()], params, objectives(), trials=14, seed=5, executor=pool, width=width
            )
        return [(c.number, c.params, c.state) for c in result.candidates]

    first = study()
    assert first == study()
    assert first == [
        (c.number, c.params, c.state)
        for c in tune([outage()], params, objectives(), trials=14, seed=5, width=2).candidates
    ]
