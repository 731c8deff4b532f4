"""Chaos scenarios: YAML suites, the open-model runner, gates and reports.

::

    scenario = load_scenario("scenarios/03-postgres-down.yaml")
    result = await run_scenario(scenario, history_path="out/history.jsonl")
    write_reports(result, Path("out"))
    result.exit_code  # 0 every gate holds, 1 a gate failed, 2 the run could not be done

Modules: :mod:`.model` (the schema), :mod:`.loader` (YAML with located
errors), :mod:`.workload` (arrival schedule), :mod:`.faults` (timeline and
controllers), :mod:`.stack` (the seams), :mod:`.dispatch` (how arrivals start: the
runner's dispatcher seam), :mod:`.runner`, :mod:`.history`,
:mod:`.metrics`, :mod:`.gates`, :mod:`.reports`, :mod:`.suite`,
:mod:`.progress`, :mod:`.real_stack`, :mod:`.testing` (a fake stack) and
:mod:`resilience.pytest_scenarios`. See docs/scenarios.md and docs/gates.md.
"""

from __future__ import annotations

from resilience.scenario.dispatch import Dispatch, Dispatcher, TaskDispatcher
from resilience.scenario.faults import (
    FaultControlError,
    FaultController,
    RecordingFaultController,
    ToxiproxyFaultController,
)
from resilience.scenario.history import History, HistoryError, read_history
from resilience.scenario.loader import ScenarioError, load_scenario, load_suite, parse_scenario
from resilience.scenario.metrics import METRIC_NAMES, evaluate_history, metrics_for
from resilience.scenario.model import Scenario
from resilience.scenario.reports import write_reports, write_suite_reports
from resilience.scenario.runner import RunAborted, RunResult, run_scenario
from resilience.scenario.stack import Stack, StaticStack, Target
from resilience.scenario.suite import SuiteResult, run_suite

__all__ = [
    "METRIC_NAMES",
    "Dispatch",
    "Dispatcher",
    "FaultControlError",
    "FaultController",
    "History",
    "HistoryError",
    "RecordingFaultController",
    "RunAborted",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "Stack",
    "StaticStack",
    "SuiteResult",
    "Target",
    "TaskDispatcher",
    "ToxiproxyFaultController",
    "evaluate_history",
    "load_scenario",
    "load_suite",
    "metrics_for",
    "parse_scenario",
    "read_history",
    "run_scenario",
    "run_suite",
    "write_reports",
    "write_suite_reports",
]
