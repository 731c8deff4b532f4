"""Reconciliation (issue 15): every acknowledged job stored exactly once, built into every run.

Properties of :func:`reconcile` (hypothesis), then a simulated run whose
database "loses" an acknowledged job and one that stores a job twice: the
implicit gates ``jobs.lost == 0`` / ``jobs.duplicated == 0`` fail them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from resilience.scenario.model import Scenario
from resilience.scenario.runner import run_scenario
from resilience.sim import run_virtual
from resilience.sim.dispatch import EagerDispatcher
from resilience.sim.run import build_stack_for
from resilience.targets.reconcile import IMPLICIT_GATES, reconcile

_keys = st.sets(st.integers(0, 200), min_size=1, max_size=60).map(
    lambda seqs: {f"run-{s}": {"seq": s, "source": "scenario"} for s in seqs}
)


@given(_keys, st.data())
def test_an_acknowledged_job_not_stored_is_always_caught(
    acknowledged: dict[str, dict[str, Any]], data: st.DataObject
) -> None:
    keys = sorted(acknowledged)
    missing = data.draw(st.sampled_from(keys))
    queued = data.draw(st.sets(st.sampled_from(keys))) - {missing}
    dead = data.draw(st.sets(st.sampled_from(keys))) - {missing} - queued
    stored = [(k, acknowledged[k]) for k in keys if k not in queued | dead | {missing}]
    stored += [(f"run-unacked-{i}", {"seq": 1000 + i}) for i in range(3)]  # not acknowledged
    result = reconcile(acknowledged, stored, queued=queued, dead_lettered=dead)
    assert result.lost == 1
    assert result.lost_keys == [missing]
    assert result.stored + result.queued + result.dead_lettered + result.lost == len(keys)
    assert (result.queued, result.dead_lettered) == (len(queued), len(dead))
    assert result.duplicated == 0


@given(_keys, st.data())
def test_a_duplicate_is_always_caught(
    acknowledged: dict[str, dict[str, Any]], data: st.DataObject
) -> None:
    keys = sorted(acknowledged)
    twice = data.draw(st.sampled_from(keys))
    stored = [(k, acknowledged[k]) for k in keys]
    stored.append((f"run-retry-of-{twice}", acknowledged[twice]))  # same job, second key
    result = reconcile(acknowledged, stored)
    assert result.duplicated == 1
    assert result.duplicated_keys == [twice]
    assert (result.lost, result.stored) == (0, len(keys))


def test_stored_with_other_answers_is_lost_and_queued_is_not_stored() -> None:
    acknowledged = {"r-1": {"seq": 1}, "r-2": {"seq": 2}, "r-3": {"seq": 3}}
    result = reconcile(
        acknowledged, [("r-1", {"seq": 1}), ("r-2", {"seq": 99})], queued={"r-3"}, drained=False
    )
    assert result.metrics() == {
        "jobs.acknowledged": 3,
        "jobs.stored": 1,
        "jobs.queued": 1,
        "jobs.dead_lettered": 0,
        "jobs.lost": 1,
        "jobs.duplicated": 0,
    }
    assert result.lost_keys == ["r-2"]
    assert not result.drained


def _scenario() -> Scenario:
    return Scenario.model_validate(
        {
            "name": "reconcile",
            "seed": 3,
            "workload": {
                "duration": 8,
                "rate": 40,
                "warmup": 1,
                "mix": {"lookup": 0.5, "job": 0.5},
                "keys": {"catalogue_size": 50},
            },
            "gates": ["errors == 0"],
            "steady_state": {"probes": 3, "timeout": "5s"},
        }
    )


def _run(tmp_path: Path, sabotage: str) -> Any:
    scenario = _scenario()

    async def main() -> Any:
        stack = build_stack_for(scenario)
        jobs = stack.jobs
        original = jobs.insert_job
        calls = 0

        async def insert_job(**fields: Any) -> Any:
            nonlocal calls
            job = await original(**fields)
            calls += 1
            if calls == 5 and sabotage == "lose":  # acknowledged, then gone
                del jobs.by_id[jobs.by_key.pop(fields["idempotency_key"])]
            if calls == 5 and sabotage == "duplicate":  # a second row for the same job
                await original(**{**fields, "idempotency_key": fields["idempotency_key"] + "-x"})
            return job

        jobs.insert_job = insert_job  # type: ignore[method-assign]
        return await run_scenario(
            scenario,
            stack=stack,
            history_path=tmp_path / f"{sabotage}.jsonl",
            dispatcher=EagerDispatcher(),
        )

    return run_virtual(main())


def test_every_run_that_posts_jobs_reconciles_and_shows_the_gates(tmp_path: Path) -> None:
    result = _run(tmp_path, "none")
    by_gate = {r.gate.source: r for r in result.results}
    assert set(IMPLICIT_GATES) <= set(by_gate)
    assert by_gate["jobs.lost == 0"].status == "pass"
    [check] = result.history.checks
    assert check["metrics"]["jobs.stored"] == check["metrics"]["jobs.acknowledged"] > 10
    assert result.exit_code == 0


def test_a_lost_acknowledged_job_fails_the_run(tmp_path: Path) -> None:
    result = _run(tmp_path, "lose")
    by_gate = {r.gate.source: r for r in result.results}
    assert by_gate["jobs.lost == 0"].status == "fail"
    assert by_gate["jobs.lost == 0"].observed == 1
    assert result.history.checks[0]["detail"]["lost_keys"]
    assert result.exit_code == 1


def test_a_duplicated_job_fails_the_run(tmp_path: Path) -> None:
    result = _run(tmp_path, "duplicate")
    by_gate = {r.gate.source: r for r in result.results}
    assert by_gate["jobs.duplicated == 0"].status == "fail"
    assert by_gate["jobs.lost == 0"].status == "pass"
    assert result.exit_code == 1
