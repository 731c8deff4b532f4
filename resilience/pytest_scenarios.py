"""pytest integration: ``pytest scenarios/`` runs each scenario file as one test.

Thin on purpose: collection and reporting live here, running lives in
:mod:`resilience.scenario.runner`. Enable it from a ``conftest.py`` next to
the scenario files::

    from resilience.pytest_scenarios import *  # noqa: F403

Options: ``--scenario-stack`` (``real``: the scenario's environment, shared by
every scenario of the session; ``simulated``: the virtual-time simulator;
``fake``: the in-memory :mod:`resilience.scenario.testing` stack) and
``--scenario-reports DIR`` (reports per scenario; default a temporary
directory). A scenario passes when its exit code is 0; a failed gate fails
the test with the gate table, a file that does not load fails with the loader's
message.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "ScenarioFailed",
    "ScenarioFile",
    "ScenarioItem",
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_sessionfinish",
]

_POOL_KEY = pytest.StashKey[Any]()


class ScenarioFailed(Exception):
    """A scenario run whose verdict was not PASS."""

    def __init__(self, result: Any) -> None:
        super().__init__(result.verdict if result is not None else "invalid scenario")
        self.result = result


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resilience scenarios")
    group.addoption(
        "--scenario-stack",
        choices=("real", "simulated", "fake"),
        default="real",
        help="What scenarios run against (default: real).",
    )
    group.addoption(
        "--scenario-reports",
        default=None,
        help="Directory for per-scenario reports (default: a temporary directory).",
    )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix in (".yaml", ".yml"):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


def pytest_sessionfinish(session: pytest.Session) -> None:
    pool = session.config.stash.get(_POOL_KEY, None)
    if pool is not None:
        asyncio.run(pool.aclose())


class ScenarioFile(pytest.File):
    """One scenario YAML file: yields a single :class:`ScenarioItem`."""

    def collect(self) -> Iterator[pytest.Item]:
        from resilience.scenario.loader import ScenarioError, load_scenario

        try:
            scenario = load_scenario(self.path)
        except ScenarioError as exc:
            yield ScenarioItem.from_parent(self, name=self.path.stem, scenario=None, error=str(exc))
            return
        yield ScenarioItem.from_parent(self, name=scenario.name, scenario=scenario, error=None)


class ScenarioItem(pytest.Item):
    """Runs one scenario; passes when every gate holds."""

    def __init__(self, *, scenario: Any, error: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.load_error = error

    def runtest(self) -> None:
        if self.scenario is None:
            raise ScenarioFailed(None)
        config = self.config
        kind = config.getoption("--scenario-stack")
        base = config.getoption("--scenario-reports")
        root = Path(base) if base else Path(tempfile.mkdtemp(prefix="scenarios-"))
        out = root / self.scenario.name
        out.mkdir(parents=True, exist_ok=True)
        result = self._run(kind, out)
        from resilience.scenario.reports import write_reports

        write_reports(result, out)
        if result.skipped:
            pytest.skip(f"scenario {self.scenario.name}: {result.error}")
        if result.exit_code != 0:
            raise ScenarioFailed(result)

    def _run(self, kind: str, out: Path) -> Any:
        history = out / "history.jsonl"
        if kind == "simulated":
            from resilience.sim import run_simulated

            return run_simulated(self.scenario, history_path=history)
        from resilience.scenario.runner import run_scenario

        if kind == "fake":
            from resilience.scenario.testing import fake_stack

            return asyncio.run(
                run_scenario(self.scenario, stack=fake_stack(), history_path=history)
            )
        from resilience.scenario.real_stack import EnvironmentPool

        pool = self.config.stash.get(_POOL_KEY, None)
        if pool is None:
            pool = EnvironmentPool()
            self.config.stash[_POOL_KEY] = pool
        return asyncio.run(
            run_scenario(self.scenario, stack_factory=pool.factory(), history_path=history)
        )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if not isinstance(excinfo.value, ScenarioFailed):
            return str(super().repr_failure(excinfo))
        if self.load_error is not None:
            return self.load_error
        result = excinfo.value.result
        lines = [f"scenario {result.scenario.name}: {result.verdict}"]
        if result.error:
            lines.append(f"  {result.status}: {result.error}")
        lines.extend(f"  fault control: {p}" for p in result.fault_errors)
        for r in result.results:
            lines.append(f"  {r.label} {r.gate.source} (observed {r.observed_text})")
        if result.report_dir:
            lines.append(f"  report: {result.report_dir / 'report.html'}")
        return "\n".join(lines)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario: {self.name}"
