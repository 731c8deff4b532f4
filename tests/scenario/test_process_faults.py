"""Process faults in the timeline: what each action does, and that all are undone.

The server control here records its calls (the real one, signals to real
servers, is tested in tests/backends/test_server_control.py); the runner and
the fault controller under test are the real ones.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from resilience.scenario.loader import ScenarioError, parse_scenario
from resilience.scenario.process_faults import ProcessFaultController
from resilience.scenario.runner import run_scenario
from resilience.scenario.stack import StaticStack
from resilience.scenario.testing import fake_stack


class RecordingServers:
    """A server control that records calls and keeps each server's state."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.state = {"postgres": "running", "redis": "running"}

    def pause(self, name: str) -> None:
        self.calls.append(f"pause {name}")
        self.state[name] = "paused"

    def resume(self, name: str) -> None:
        self.calls.append(f"resume {name}")
        if self.state[name] == "paused":
            self.state[name] = "running"

    def resume_all(self) -> None:
        for name in self.state:
            self.resume(name)

    def kill(self, name: str, *, keep_data: bool = False) -> None:
        self.calls.append(f"kill {name} keep_data={keep_data}")
        self.state[name] = "down"

    def stop(self, name: str, *, keep_data: bool = False) -> None:
        self.calls.append(f"stop {name} keep_data={keep_data}")
        self.state[name] = "down"

    def start(self, name: str) -> None:
        self.calls.append(f"start {name}")
        self.state[name] = "running"


TIMELINE = """
name: process
description: process faults on a fake target, long enough to state its intent
seed: 3
workload: {{duration: {duration}, warmup: 0.2s, rate: 50, mix: {{lookup: 1.0}}}}
steady_state: {{probes: 2, timeout: 2s}}
faults:
{faults}
"""


def _stack(servers: RecordingServers) -> tuple[StaticStack, ProcessFaultController]:
    base = fake_stack()
    controller = ProcessFaultController(servers, base.faults)
    stack = StaticStack(
        target=base.target, faults=controller, clock=base.clock, slugs=base.slugs, mode="fake"
    )
    return stack, controller


def _scenario(faults: str, duration: str = "2s") -> object:
    return parse_scenario(TIMELINE.format(duration=duration, faults=faults))


async def test_each_action_runs_in_its_window_and_the_server_is_back_after(
    tmp_path: Path,
) -> None:
    servers = RecordingServers()
    stack, _ = _stack(servers)
    scenario = _scenario(
        "  - {name: freeze, at: 0.3s, duration: 0.3s, target: postgres, action: pause}\n"
        "  - {name: crash, at: 0.7s, duration: 0.3s, target: postgres, action: kill}\n"
        "  - {name: cold, at: 1.1s, duration: 0.2s, target: redis, action: restart,"
        " keep_data: true}\n"
    )
    result = await run_scenario(scenario, stack=stack, history_path=tmp_path / "h.jsonl")  # type: ignore[arg-type]
    assert result.status == "completed"
    assert [c for c in servers.calls if not c.startswith("resume")] == [
        "pause postgres",
        "kill postgres keep_data=False",
        "start postgres",
        "stop redis keep_data=True",
        "start redis",
    ]
    assert "resume postgres" in servers.calls
    assert set(servers.state.values()) == {"running"}


@pytest.mark.parametrize("action", ["pause", "kill", "restart"])
async def test_cancelling_the_run_mid_fault_leaves_every_server_running(
    tmp_path: Path, action: str
) -> None:
    servers = RecordingServers()
    stack, controller = _stack(servers)
    scenario = _scenario(
        f"  - {{name: f, at: 0.3s, duration: 5s, target: postgres, action: {action}}}\n",
        duration="8s",
    )
    task = asyncio.ensure_future(
        run_scenario(scenario, stack=stack, history_path=tmp_path / "h.jsonl")  # type: ignore[arg-type]
    )
    await asyncio.sleep(1.0)
    assert servers.state["postgres"] != "running"
    task.cancel()  # what Ctrl-C and SIGTERM do to a run
    with pytest.raises(asyncio.CancelledError):
        await task
    assert servers.state == {"postgres": "running", "redis": "running"}
    assert controller.down == {}


def test_a_pause_without_duration_lasts_until_a_later_resume() -> None:
    from resilience.scenario.faults import active_faults

    scenario = _scenario(
        "  - {name: freeze, at: 0.5s, target: postgres, action: pause}\n"
        "  - {name: thaw, at: 1.5s, target: postgres, action: resume}\n"
    )
    faults = scenario.faults  # type: ignore[attr-defined]
    assert active_faults(faults, 1.0) == ["freeze"]
    assert active_faults(faults, 1.6) == []


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("{name: f, at: 1s, duration: 1s, target: postgres, action: resume}", "instantaneous"),
        (
            "{name: f, at: 1s, target: postgres, action: kill, keep_data: true}",
            "'keep_data' applies to a Redis",
        ),
        ("{name: f, at: 1s, target: redis, action: freeze}", "action"),
    ],
)
def test_bad_process_faults_are_refused_naming_the_problem(fault: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        _scenario(f"  - {fault}\n")
