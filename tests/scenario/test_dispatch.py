"""The dispatcher seam: a Dispatcher decides when operations start; the runner records them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from resilience.scenario import Dispatch, Dispatcher, TaskDispatcher
from resilience.scenario.history import read_history
from resilience.scenario.loader import parse_scenario
from resilience.scenario.runner import run_scenario
from resilience.scenario.testing import fake_stack

SCENARIO = """\
name: dispatch-test
seed: 3
workload: {duration: 2s, warmup: 0s, rate: 200, concurrency: 4}
steady_state: {probes: 2, timeout: 1s}
gates: [errors == 0]
"""


class InOrderDispatcher:
    """Starts each arrival at once, one at a time, in schedule order (a test double)."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    async def dispatch(self, work: Dispatch) -> None:
        for arrival in work.schedule:
            self.seen.append(arrival.seq)
            await work.operation(arrival, work.origin_s + arrival.t_s, lambda: None)


def test_a_custom_dispatcher_issues_every_arrival_and_the_runner_records_them(
    tmp_path: Path,
) -> None:
    dispatcher = InOrderDispatcher()
    seam: Dispatcher = dispatcher  # structural typing: no base class needed
    path = tmp_path / "h.jsonl"
    result = asyncio.run(
        run_scenario(
            parse_scenario(SCENARIO), stack=fake_stack(), history_path=path, dispatcher=seam
        )
    )
    assert result.status == "completed"
    history = read_history(path)
    assert sorted(op.t_us for op in history.ops) == [op.t_us for op in history.ops]
    assert len(history.ops) == len(dispatcher.seen) > 300
    assert dispatcher.seen == list(range(len(dispatcher.seen)))
    assert result.history == history


def test_the_default_dispatcher_keeps_the_concurrency_limit(tmp_path: Path) -> None:
    """With 4 slots, at most 4 operations of the fake target ever run at once."""
    running = 0
    peak = 0

    class Counting(TaskDispatcher):
        async def dispatch(self, work: Dispatch) -> None:
            async def operation(arrival: object, due: float, release: object) -> None:
                nonlocal running, peak
                running += 1
                peak = max(peak, running)

                def done() -> None:
                    nonlocal running
                    running -= 1
                    release()  # type: ignore[operator]

                await work.operation(arrival, due, done)  # type: ignore[arg-type]

            await super().dispatch(
                Dispatch(
                    schedule=work.schedule,
                    operation=operation,
                    origin_s=work.origin_s,
                    concurrency=work.concurrency,
                    clock=work.clock,
                    track=work.track,
                )
            )

    result = asyncio.run(
        run_scenario(
            parse_scenario(SCENARIO),
            stack=fake_stack(db_latency_s=0.02),
            history_path=tmp_path / "h.jsonl",
            dispatcher=Counting(),
        )
    )
    assert result.status == "completed"
    assert peak == 4  # reached, never exceeded
