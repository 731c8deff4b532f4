"""The Target seam: the runner dispatches by operation name and records what the target saw."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from resilience.clock import SYSTEM_CLOCK
from resilience.scenario.faults import RecordingFaultController
from resilience.scenario.history import read_history
from resilience.scenario.loader import parse_scenario
from resilience.scenario.metrics import metrics_for
from resilience.scenario.runner import run_scenario
from resilience.scenario.stack import StaticStack
from resilience.scenario.testing import fake_stack
from resilience.targets import Call, Observation, ReferenceTarget, as_target, register_operation
from resilience.targets.reference import OPERATIONS

SCENARIO = """\
name: seam
seed: 3
workload:
  duration: 1.5s
  rate: 200
  mix: {lookup: 0.7, job: 0.3}
  keys: {catalogue_size: 50, invalid_share: 0.1}
steady_state: {probes: 3, timeout: 1s, required: false}
gates:
  - ops >= 1
"""


class EchoTarget:
    """A target of another kind: every call answers with a status picked from its key kind."""

    kind = "echo"
    operations = ("lookup", "job")

    def __init__(self) -> None:
        self.calls: list[Call] = []

    async def call(self, call: Call) -> Observation:
        self.calls.append(call)
        if call.key_kind == "invalid":
            return Observation("error", "refused", "bad key", 120, 1, 400)
        return Observation("ok", "echo", None, 80, 1, 200)

    def stats(self) -> Mapping[str, Any]:
        return {"calls": len(self.calls)}


async def test_runner_dispatches_by_operation_name_to_any_target(tmp_path: Path) -> None:
    target = EchoTarget()
    stack = StaticStack(
        target=target,
        faults=RecordingFaultController(),
        clock=SYSTEM_CLOCK,
        slugs=[f"s-{i}" for i in range(50)],
    )
    result = await run_scenario(parse_scenario(SCENARIO), stack=stack, history_path=tmp_path / "h")
    assert result.status == "completed", result.error
    history = read_history(tmp_path / "h")
    assert history.target_kind == "echo"
    assert {c.op for c in target.calls} == {"lookup", "job"}
    assert len({c.idempotency_key for c in target.calls}) == len(target.calls)
    assert {(o.status, o.outcome) for o in history.ops} == {(200, "ok"), (400, "error")}
    m = metrics_for(history, [(0.0, 1.5)])
    assert "cache.hit_rate" not in m  # the reference vocabulary belongs to the reference kind
    assert m["lookup.count"] == sum(1 for o in history.ops if o.op == "lookup")
    assert m["lookup.echo"]
    assert all(x == 80e-6 for x in m["lookup.echo"])
    invalid = sum(1 for o in history.ops if o.key == "invalid")
    assert m["errors"] == invalid > 0


async def test_where_filter_counts_only_matching_operations(tmp_path: Path) -> None:
    stack = fake_stack(reset_timeout_s=0.5)
    result = await run_scenario(parse_scenario(SCENARIO), stack=stack, history_path=tmp_path / "h")
    history = result.history
    assert history is not None
    everything = metrics_for(history, [(0.0, 1.5)])
    jobs = metrics_for(history, [(0.0, 1.5)], where={"op": "job"})
    assert jobs["ops"] == sum(1 for o in history.ops if o.op == "job") > 0
    assert jobs["lookups"] == 0
    assert everything["ops"] == len(history.ops)
    invalid = metrics_for(history, [(0.0, 1.5)], where={"op": "lookup", "reason": "invalid_slug"})
    assert invalid["ops"] == invalid["invalid.count"] > 0
    with pytest.raises(ValueError, match="no op-record field 'colour'"):
        metrics_for(history, [(0.0, 1.5)], where={"colour": "red"})


def test_a_history_from_before_targets_reads_as_reference_with_status_0(tmp_path: Path) -> None:
    path = tmp_path / "old.jsonl"
    lines = [
        {"type": "meta", "version": 1, "scenario": "x", "config": {}},
        {
            "type": "op",
            "t_us": 1,
            "op": "lookup",
            "key": "known",
            "slug": "a",
            "outcome": "success",
            "path": "db",
            "reason": None,
            "latency_us": 5,
            "attempts": 1,
            "late_us": 0,
            "phase": "steady",
        },
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    history = read_history(path)
    assert history.target_kind == "reference"
    assert history.ops[0].status == 0
    assert metrics_for(history, [(0.0, 1.0)])["success_rate"] == 1.0


async def test_a_registered_operation_reaches_the_service() -> None:
    seen: list[str] = []

    async def booking(service: Any, call: Call) -> Observation:
        seen.append(call.key)
        return Observation("booked", "upstream", None, 10, 1)

    register_operation("booking_test", booking)
    try:
        target = ReferenceTarget(object())
        answer = await target.call(Call(1, "booking_test", "known", "room-1", "k-1"))
        assert answer.outcome == "booked"
        assert seen == ["room-1"]
        assert "booking_test" in target.operations
    finally:
        OPERATIONS.pop("booking_test", None)
    unknown = await target.call(Call(2, "nothing", "known", "x", "k-2"))
    assert unknown.outcome == "error"
    assert "nothing" in (unknown.reason or "")
    with pytest.raises(ValueError, match="operation names"):
        register_operation("bad name!", booking)


def test_as_target_keeps_targets_and_wraps_reference_services() -> None:
    echo = EchoTarget()
    assert as_target(echo) is echo
    wrapped = as_target(fake_stack().target, ["a"])
    assert isinstance(wrapped, ReferenceTarget)
    assert wrapped.kind == "reference"
