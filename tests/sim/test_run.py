"""Simulated runs: determinism, the history format, faults that show, speed-invariance."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resilience.scenario.history import read_history
from resilience.scenario.metrics import evaluate_history
from resilience.scenario.model import Scenario
from resilience.scenario.runner import run_scenario
from resilience.sim import run_virtual
from resilience.sim.dispatch import EagerDispatcher
from resilience.sim.run import build_stack_for, run_simulated

from .conftest import make_scenario


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_same_seed_gives_a_byte_identical_history(scenario: Scenario, tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    run_simulated(scenario, history_path=a)
    run_simulated(scenario, history_path=b)
    assert a.read_bytes() == b.read_bytes()


def test_a_different_seed_gives_a_different_history(scenario: Scenario, tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    run_simulated(scenario, history_path=a)
    run_simulated(scenario, history_path=b, seed=12)
    assert a.read_bytes() != b.read_bytes()


def test_generic_runner_path_is_deterministic_too(scenario: Scenario, tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    run_simulated(scenario, history_path=a, fast=False)
    run_simulated(scenario, history_path=b, fast=False)
    assert a.read_bytes() == b.read_bytes()


def test_history_has_the_real_format(scenario: Scenario, tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    result = run_simulated(scenario, history_path=path)
    assert result.status == "completed"
    records = _records(path)
    meta = records[0]
    assert meta["type"] == "meta"
    assert meta["mode"] == "simulated"
    # from the virtual clock (2026-01-01 + virtual time), not the machine's clock
    assert 1_767_225_600.0 <= meta["start_wall"] < 1_767_225_601.0
    kinds = {r["type"] for r in records}
    assert {"op", "fault", "breaker", "sample", "steady", "end"} <= kinds
    ops = [r for r in records if r["type"] == "op"]
    assert all(isinstance(r["t_us"], int) and isinstance(r["latency_us"], int) for r in ops)
    # about rate × duration operations were issued
    assert 3500 < len(ops) < 4500
    history = read_history(path)  # the scenario package reads it like a real one
    assert len(history.ops) == len(ops)
    assert result.history == history  # the gates were evaluated on exactly the file's records


def test_faults_show_in_the_history(scenario: Scenario, tmp_path: Path) -> None:
    """PostgreSQL and Redis down together: the breaker opens, lookups fall back, then recover."""
    path = tmp_path / "h.jsonl"
    run_simulated(scenario, history_path=path)
    records = _records(path)
    opened = [r for r in records if r["type"] == "breaker" and r["to"] == "open"]
    assert opened
    assert 18e6 <= opened[0]["t_us"] <= 24e6
    during = [
        r for r in records if r["type"] == "op" and r["op"] == "lookup" and 19e6 <= r["t_us"] < 24e6
    ]
    assert any(r["reason"] == "circuit_open" for r in during)
    after = [r for r in records if r["type"] == "op" and r["t_us"] >= 32e6 and r["op"] == "lookup"]
    assert all(r["outcome"] in ("success", "fallback", "invalid") for r in after)
    assert any(r["path"] == "db" and r["outcome"] == "success" for r in after) or any(
        r["path"] in ("cache", "redis") for r in after
    )
    steady_after = [r for r in records if r["type"] == "steady" and r["when"] == "after"]
    assert steady_after
    assert steady_after[0]["ok"] is True


def test_invalid_slugs_never_reach_the_database(tmp_path: Path) -> None:
    scenario = make_scenario(faults=[])
    path = tmp_path / "h.jsonl"
    result = run_simulated(scenario, history_path=path)
    invalid = [r for r in _records(path) if r["type"] == "op" and r["key"] == "invalid"]
    assert invalid
    assert all(r["attempts"] == 0 for r in invalid)
    assert result.passed, [r.message for r in result.results if not r.passed]


def test_overrides_change_the_service(scenario: Scenario, tmp_path: Path) -> None:
    """A huge failure threshold means the breaker never opens."""
    path = tmp_path / "h.jsonl"
    run_simulated(scenario, history_path=path, overrides={"breaker.failure_threshold": 10_000})
    assert not [r for r in _records(path) if r["type"] == "breaker" and r["to"] == "open"]


def _run_with_slowdown(scenario: Scenario, path: Path, pauses_s: list[float]) -> None:
    """Simulate while burning real time in a lookup listener (a slower machine)."""

    async def main() -> None:
        stack = build_stack_for(scenario)
        remaining = list(pauses_s)

        def slow(_: Any) -> None:
            if remaining:
                time.sleep(remaining.pop())

        stack.target.listeners.append(slow)
        await run_scenario(scenario, stack=stack, history_path=path, dispatcher=EagerDispatcher())

    run_virtual(main())


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.floats(min_value=0, max_value=0.002), min_size=1, max_size=40))
def test_gate_metrics_do_not_depend_on_wall_clock_speed(
    tmp_path_factory: Any, pauses_s: list[float]
) -> None:
    scenario = make_scenario(
        workload={"duration": 15, "rate": 60, "warmup": 1},
        faults=[
            {"name": "pg-down", "at": 5, "duration": 4, "target": "postgres", "action": "disable"},
            {"name": "r-down", "at": 4, "duration": 6, "target": "redis", "action": "disable"},
        ],
    )
    base = tmp_path_factory.mktemp("sim") / "base.jsonl"
    slow = tmp_path_factory.mktemp("sim") / "slow.jsonl"
    _run_with_slowdown(scenario, base, [])
    _run_with_slowdown(scenario, slow, pauses_s)
    gates = scenario.scoped_gates()
    observed = [r.observed for r in evaluate_history(read_history(base), gates)]
    assert observed == [r.observed for r in evaluate_history(read_history(slow), gates)]
    assert base.read_bytes() == slow.read_bytes()


def test_phase_rule_matches_the_planned_fault_windows() -> None:
    """The merged-window phase rule gives "during" exactly when a fault is planned to be active."""
    from resilience.scenario.faults import PhaseRule, active_faults

    scenario = make_scenario(
        faults=[
            {"name": "a", "at": 5, "duration": 3, "target": "postgres", "action": "disable"},
            {
                "name": "b",
                "at": 6,
                "duration": 1,
                "every": 10,
                "times": 3,
                "target": "redis",
                "toxic": "latency",
                "attributes": {"latency": 5},
            },
            {"name": "d", "at": 33, "target": "postgres", "action": "disable"},
            {"name": "c", "at": 36, "target": "postgres", "action": "enable"},
        ]
    )
    rule = PhaseRule(scenario.faults, warmup_s=2.0)
    for tenth in range(400):
        t = tenth / 10
        if t < 2.0:
            assert rule(t) == "warmup"
            continue
        assert (rule(t) == "during") == bool(active_faults(scenario.faults, t)), t
        assert rule(t) != "before" or t < 5


def test_eager_dispatcher_needs_the_virtual_loop(tmp_path: Path) -> None:
    """On a real asyncio loop the simulator's dispatcher refuses instead of misbehaving."""
    import asyncio

    from resilience.scenario.testing import fake_stack

    async def main() -> Any:
        return await run_scenario(
            make_scenario(workload={"duration": 1, "rate": 10, "warmup": 0}, faults=[]),
            stack=fake_stack(),
            history_path=tmp_path / "h.jsonl",
            dispatcher=EagerDispatcher(),
        )

    result = asyncio.run(main())
    assert result.status == "crashed"
    assert "VirtualEventLoop" in (result.error or "")


def test_history_is_identical_across_processes(tmp_path: Path) -> None:
    """Different hash seeds and address layouts (two fresh interpreters): same bytes."""
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from resilience.scenario.model import Scenario\n"
        "from resilience.sim import run_simulated\n"
        "sc = Scenario.model_validate_json(sys.argv[1])\n"
        "run_simulated(sc, history_path=sys.argv[2])\n"
    )
    scenario = make_scenario(workload={"duration": 30, "rate": 80, "warmup": 2})
    outputs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"h{hash_seed}.jsonl"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run(
            [sys.executable, "-c", code, scenario.model_dump_json(), str(out)],
            check=True,
            env=env,
            timeout=120,
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_jobs_accepted_during_an_outage_are_stored_exactly_once(tmp_path: Path) -> None:
    """PostgreSQL down: jobs go to the Redis outbox (modelled) and are drained once each."""
    scenario = make_scenario(
        workload={"duration": 30, "rate": 60, "warmup": 2, "mix": {"lookup": 0.5, "job": 0.5}},
        faults=[{"name": "pg", "at": 5, "duration": 10, "target": "postgres", "action": "disable"}],
    )
    path = tmp_path / "h.jsonl"

    async def main() -> Any:
        stack = build_stack_for(scenario)
        await run_scenario(scenario, stack=stack, history_path=path, dispatcher=EagerDispatcher())
        return stack

    stack = run_virtual(main())
    accepted = [
        r
        for r in _records(path)
        if r["type"] == "op" and r["op"] == "job" and r["outcome"] == "accepted"
    ]
    outbox = stack.target.outbox
    assert outbox is not None
    assert outbox.stats()["queued"] > 0  # some were queued while PostgreSQL was away
    assert outbox.stats()["drained"] == outbox.stats()["queued"]
    stored_keys = set(stack.jobs.by_key)
    assert len(stored_keys) == len(stack.jobs.by_id)  # one row per idempotency key
    assert len(stored_keys) >= len(accepted)


def test_a_hung_postgres_never_holds_a_lookup_past_the_retry_deadline(tmp_path: Path) -> None:
    """A hang, 1 s per attempt, deadline 1.5 s: every lookup ends by 1.5 s (issue 15, 5)."""
    scenario = make_scenario(
        workload={"duration": 14, "rate": 40, "warmup": 2, "mix": {"lookup": 1.0}},
        faults=[
            {
                "name": "hang",
                "at": 4,
                "duration": 10,
                "target": "postgres",
                "toxic": "timeout",
                "attributes": {"timeout": 0},
            }
        ],
        service={
            "db.timeout_s": "1s",
            "retry.deadline_s": "1.5s",
            "breaker.failure_threshold": 1000,
        },
        steady_state={"probes": 3, "timeout": "1s", "required": False},
    )
    path = tmp_path / "h.jsonl"
    run_simulated(scenario, history_path=path)
    hung = [
        r
        for r in _records(path)
        if r["type"] == "op" and r["outcome"] == "fallback" and r["reason"] == "timeout"
    ]
    retried = [r for r in hung if r["attempts"] == 2]  # (0: waited on another's query)
    assert len(retried) > 20
    slowest_s = max(r["latency_us"] for r in hung) / 1e6
    assert 1.0 < slowest_s <= 1.5 + 0.01  # a second attempt ran, cut at the deadline
    assert max(r["attempts"] for r in hung) == 2  # no third attempt past the deadline


def test_a_cold_start_touches_nothing_before_t0(tmp_path: Path) -> None:
    """probes: 0 — no steady-state lookups before the workload: the first lookups of the
    most popular slugs go to the database (warm: the probes cached them)."""

    def first_paths(steady: dict[str, Any], name: str) -> tuple[list[str], list[dict[str, Any]]]:
        scenario = make_scenario(
            workload={
                "duration": 6,
                "rate": 50,
                "warmup": 1,
                "mix": {"lookup": 1.0},
                "keys": {"catalogue_size": 500, "unknown_share": 0.0},
            },
            faults=[],
            steady_state=steady,
        )
        path = tmp_path / f"{name}.jsonl"
        run_simulated(scenario, history_path=path)
        records = _records(path)
        ops = [r for r in records if r["type"] == "op"]
        top = {r["slug"] for r in ops[:200]}
        seen: set[str] = set()
        firsts = []
        for r in ops:
            if r["slug"] in top and r["slug"] not in seen:
                seen.add(r["slug"])
                firsts.append(r["path"])
        return firsts, [r for r in records if r["type"] == "steady"]

    cold, cold_steady = first_paths({"probes": 0, "timeout": "5s"}, "cold")
    warm, _ = first_paths({"probes": 50, "timeout": "5s"}, "warm")
    assert cold_steady[0]["detail"] == "cold start: no probes before the workload"
    assert "cache" not in cold  # nothing was cached before t = 0
    assert "cache" in warm
