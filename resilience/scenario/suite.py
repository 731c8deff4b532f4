"""Running several scenarios: one environment per distinct ``environment:``, reports per run.

:func:`run_suite` runs the scenarios in order on shared environments (started
once, torn down at the end), writes each run's history and reports into its
own directory and the suite's summary next to them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path

from resilience.scenario.gates import ScopedGate
from resilience.scenario.model import Scenario
from resilience.scenario.reports import write_reports, write_suite_reports
from resilience.scenario.runner import ProgressSink, RunResult, StackFactory, run_scenario

__all__ = ["SuiteResult", "report_root", "run_suite"]

ProgressFactory = Callable[[], AbstractContextManager[ProgressSink]]


class SuiteResult:
    """The runs of a suite, where their reports went, and how long it all took."""

    def __init__(self, results: list[RunResult], wall_s: float, directory: Path) -> None:
        self.results = results
        self.wall_s = wall_s
        self.directory = directory

    @property
    def exit_code(self) -> int:
        from resilience.scenario.reports import suite_exit_code

        return suite_exit_code(self.results)


def report_root(base: Path, scenarios: Sequence[Scenario], now: datetime | None = None) -> Path:
    """``base/<timestamp>-<scenario>`` for one scenario, ``base/<timestamp>-suite`` for more."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    label = scenarios[0].name if len(scenarios) == 1 else "suite"
    return base / f"{stamp}-{label}"


async def run_suite(
    scenarios: Sequence[Scenario],
    *,
    directory: Path,
    stack_factory: StackFactory | None = None,
    progress: ProgressFactory | None = None,
    gates: Sequence[ScopedGate] | None = None,
    on_result: Callable[[RunResult], None] | None = None,
) -> SuiteResult:
    """Run ``scenarios`` in order; reports go to ``directory`` (a subdirectory per scenario
    when there are several). With no ``stack_factory`` the real stack is used, one
    environment per distinct ``environment:`` section, shared by the scenarios."""
    from resilience.scenario.real_stack import EnvironmentPool

    started = time.perf_counter()
    results: list[RunResult] = []
    single = len(scenarios) == 1
    async with EnvironmentPool() as pool:
        factory = stack_factory or pool.factory()
        for scenario in scenarios:
            out = directory if single else directory / scenario.name
            out.mkdir(parents=True, exist_ok=True)
            if progress is not None:
                with progress() as sink:
                    result = await run_scenario(
                        scenario,
                        stack_factory=factory,
                        history_path=out / "history.jsonl",
                        progress=sink,
                        gates=gates,
                    )
            else:
                result = await run_scenario(
                    scenario,
                    stack_factory=factory,
                    history_path=out / "history.jsonl",
                    gates=gates,
                )
            write_reports(result, out)
            results.append(result)
            if on_result is not None:
                on_result(result)
    wall_s = time.perf_counter() - started
    if not single:
        write_suite_reports(results, wall_s, directory)
    return SuiteResult(results, wall_s, directory)
