"""The runner on the shipped fake stack: faults on schedule, always removed, open-model timing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from resilience.clock import ManualClock
from resilience.scenario.faults import plan
from resilience.scenario.history import read_history
from resilience.scenario.loader import parse_scenario
from resilience.scenario.model import Scenario
from resilience.scenario.runner import run_scenario
from resilience.scenario.testing import FakeTarget, ToxicAwareController, fake_stack

BASE = """\
name: unit
seed: 5
workload:
  duration: {duration}
  warmup: 0.5s
  rate: {rate}
  concurrency: {concurrency}
  mix: {{lookup: 0.9, job: 0.1}}
  keys: {{catalogue_size: 150, unknown_share: 0.05, invalid_share: 0.05}}
steady_state: {{probes: 5, timeout: 2s}}
faults:
  - {{name: pg-down, at: 1s, duration: 1s, target: postgres, action: disable}}
  - {{name: slow, at: 2.5s, duration: 0.5s, target: postgres, toxic: latency,
      attributes: {{latency: 50}}}}
gates:
  - breaker.opens >= 1 @ during pg-down
  - errors == 0
  - invalid.refused_rate == 1
"""


def _scenario(duration: str = "4s", rate: int = 300, concurrency: int = 512) -> Scenario:
    return parse_scenario(BASE.format(duration=duration, rate=rate, concurrency=concurrency))


async def test_faults_are_applied_on_schedule_and_removed(tmp_path: Path) -> None:
    stack = fake_stack(reset_timeout_s=0.5)
    result = await run_scenario(_scenario(), stack=stack, history_path=tmp_path / "h.jsonl")
    assert result.status == "completed", result.error
    assert result.exit_code == 0, [r.message for r in result.results]
    controller = stack.faults
    assert isinstance(controller, ToxicAwareController)
    assert controller.active == set()
    assert [c for c in controller.calls if c[0] != "clear_all"] == [
        ("apply", "pg-down"),
        ("clear", "pg-down"),
        ("apply", "slow"),
        ("clear", "slow"),
    ]
    history = read_history(tmp_path / "h.jsonl")
    events = [(r["event"], r["name"], r["t_us"] / 1e6) for r in history.faults]
    planned = [(e.event, e.fault.name, e.t_s) for e in plan(_scenario().faults)]
    assert [e[:2] for e in events] == [p[:2] for p in planned]
    for (_, _, actual), (_, _, wanted) in zip(events, planned, strict=True):
        assert wanted <= actual < wanted + 0.25
    assert history.meta["mode"] == "fake"
    assert history.end is not None
    assert {o.phase for o in history.ops} == {"warmup", "before", "during", "after"}


async def test_faults_are_removed_after_an_injected_crash(tmp_path: Path) -> None:
    controller = ToxicAwareController()
    slugs = [f"svc-{i}" for i in range(150)]
    target = FakeTarget(slugs, controller, crash_after=400)
    from resilience.clock import SYSTEM_CLOCK
    from resilience.scenario.stack import StaticStack

    stack = StaticStack(target=target, faults=controller, clock=SYSTEM_CLOCK, slugs=slugs)
    result = await run_scenario(_scenario(), stack=stack, history_path=tmp_path / "h.jsonl")
    # the target raising is recorded as errors, not a harness crash; the run still ends clean
    assert controller.active == set()
    assert ("clear_all", "*") in controller.calls
    assert result.exit_code == 1
    errors = next(r for r in result.results if r.gate.gate.metric == "errors")
    assert errors.status == "fail"
    assert errors.observed
    assert errors.observed > 0


async def test_a_crash_of_the_harness_itself_still_removes_faults(tmp_path: Path) -> None:
    stack = fake_stack()
    controller = stack.faults
    assert isinstance(controller, ToxicAwareController)

    original = controller.clear

    async def exploding_clear(fault: object) -> None:
        raise RuntimeError("controller bug")

    controller.clear = exploding_clear  # type: ignore[method-assign]
    result = await run_scenario(_scenario(), stack=stack, history_path=tmp_path / "h.jsonl")
    controller.clear = original  # type: ignore[method-assign]
    assert controller.active == set()  # clear_all ran at the end anyway
    assert result.exit_code == 2
    assert result.fault_errors
    assert "controller bug" in result.fault_errors[0]


async def test_cancellation_removes_faults_and_closes_the_history(tmp_path: Path) -> None:
    stack = fake_stack()
    controller = stack.faults
    assert isinstance(controller, ToxicAwareController)
    task = asyncio.ensure_future(
        run_scenario(_scenario(duration="10s"), stack=stack, history_path=tmp_path / "h.jsonl")
    )
    await asyncio.sleep(1.5)  # pg-down is active now
    assert "proxy:postgres" in controller.active
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert controller.active == set()
    history = read_history(tmp_path / "h.jsonl")
    assert history.end is not None
    assert history.end["status"] == "interrupted"


async def test_fault_that_cannot_be_applied_is_exit_code_2(tmp_path: Path) -> None:
    stack = fake_stack()
    assert isinstance(stack.faults, ToxicAwareController)
    stack.faults.fail_on = "slow"
    result = await run_scenario(_scenario(), stack=stack, history_path=tmp_path / "h.jsonl")
    assert result.exit_code == 2
    assert "refusing to apply 'slow'" in result.fault_errors[0]


async def test_open_model_records_lateness_instead_of_slowing_arrivals(tmp_path: Path) -> None:
    """With one slot and 20 ms database lookups, arrivals queue: their lateness is recorded."""
    text = BASE.format(duration="2s", rate=100, concurrency=1).split("faults:")[0]
    scenario = parse_scenario(text + "gates: [late_rate < 0.9]\n")
    stack = fake_stack(db_latency_s=0.02, cache_size=1)
    result = await run_scenario(scenario, stack=stack, history_path=tmp_path / "h.jsonl")
    history = read_history(tmp_path / "h.jsonl")
    assert len(history.ops) > 150  # every scheduled arrival was issued
    assert max(o.late_us for o in history.ops) > 200_000
    assert result.results[0].status == "fail"


async def test_unlimited_concurrency_starts_on_schedule(tmp_path: Path) -> None:
    text = BASE.format(duration="2s", rate=100, concurrency=512).split("faults:")[0]
    scenario = parse_scenario(text + "gates: [late_rate < 0.3]\n")
    stack = fake_stack(db_latency_s=0.05, cache_size=1)
    result = await run_scenario(scenario, stack=stack, history_path=tmp_path / "h.jsonl")
    assert result.results[0].status == "pass", result.results[0].message


async def test_runs_on_an_injected_clock(tmp_path: Path) -> None:
    """A ManualClock (time moves only when slept) runs a 4 s scenario without waiting."""
    clock = ManualClock()
    stack = fake_stack(clock=clock, reset_timeout_s=0.5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await run_scenario(_scenario(), stack=stack, history_path=tmp_path / "h.jsonl")
    assert result.status == "completed"
    assert loop.time() - started < 3.0
    history = read_history(tmp_path / "h.jsonl")
    assert history.ops
    assert history.ops[-1].t_us < 4_000_000


async def test_an_environment_that_cannot_start_is_exit_code_2(tmp_path: Path) -> None:
    from contextlib import asynccontextmanager

    from resilience.scenario.runner import RunAborted
    from resilience.scenario.suite import run_suite

    @asynccontextmanager
    async def broken(scenario: Scenario):  # type: ignore[no-untyped-def]
        raise RunAborted("the local environment could not start: no postgres binary")
        yield

    suite = await run_suite([_scenario()], directory=tmp_path, stack_factory=broken)
    [result] = suite.results
    assert result.status == "aborted"
    assert suite.exit_code == 2
    assert "no postgres binary" in (tmp_path / "report.json").read_text()


async def test_a_run_this_backend_cannot_do_is_skipped_with_the_reason(tmp_path: Path) -> None:
    from contextlib import asynccontextmanager

    from resilience.scenario.result import RunSkipped
    from resilience.scenario.suite import run_suite

    @asynccontextmanager
    async def external(scenario: Scenario):  # type: ignore[no-untyped-def]
        raise RunSkipped("process faults: the external backend cannot pause its servers")
        yield

    suite = await run_suite([_scenario()], directory=tmp_path, stack_factory=external)
    [result] = suite.results
    assert result.status == "skipped"
    assert result.verdict == "SKIPPED"
    assert "cannot pause" in (result.error or "")
    assert suite.exit_code == 2  # every run skipped: nothing was checked


async def test_a_steady_state_that_never_holds_aborts_before_the_workload(tmp_path: Path) -> None:
    stack = fake_stack()
    assert isinstance(stack.faults, ToxicAwareController)
    await stack.faults.apply(_scenario().faults[0])  # postgres down before the run starts
    result = await run_scenario(_scenario(), stack=stack, history_path=tmp_path / "h.jsonl")
    assert result.status == "aborted"
    assert result.exit_code == 2
    assert "steady state does not hold" in (result.error or "")
    assert not read_history(tmp_path / "h.jsonl").ops


async def test_disable_then_enable_actions_make_one_fault_window(tmp_path: Path) -> None:
    text = BASE.format(duration="3s", rate=200, concurrency=512).split("faults:")[0] + (
        "faults:\n"
        "  - {name: cut, at: 1s, target: postgres, action: disable}\n"
        "  - {name: restore, at: 2s, target: postgres, action: enable}\n"
        "gates: ['breaker.opens >= 1 @ during: cut', 'fallback_rate < 0.2 @ after: cut']\n"
    )
    stack = fake_stack(reset_timeout_s=0.3)
    result = await run_scenario(
        parse_scenario(text), stack=stack, history_path=tmp_path / "h.jsonl"
    )
    history = read_history(tmp_path / "h.jsonl")
    [(start, stop)] = history.fault_windows()["cut"]
    assert start == pytest.approx(1.0, abs=0.1)
    assert stop == pytest.approx(2.0, abs=0.1)
    assert {o.phase for o in history.ops if 1.1 < o.t_us / 1e6 < 1.9} == {"during"}
    assert {o.phase for o in history.ops if o.t_us / 1e6 > 2.1} == {"after"}
    assert result.exit_code == 0, [r.message for r in result.results]
