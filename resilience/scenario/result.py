"""What a run produced: :class:`RunResult` (verdict and exit code) and :class:`RunAborted`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from resilience.scenario.gates import GateResult
from resilience.scenario.history import History
from resilience.scenario.model import Scenario

__all__ = ["RunAborted", "RunResult", "RunSkipped"]


class RunAborted(RuntimeError):
    """The run could not start: the environment failed or the steady state never held."""


class RunSkipped(RunAborted):
    """The run cannot be done here (e.g. process faults on a backend whose servers are
    not the harness's): status ``skipped``, the message says why; nothing was checked."""


@dataclass
class RunResult:
    """What one run produced. ``status``: completed, interrupted, crashed, aborted or
    skipped (the run could not be done in this mode, e.g. a scenario the simulator
    does not model; ``error`` says why; nothing was checked, so it is no pass), or
    target_failed (the service under test stopped during the run: a failure, exit 1)."""

    scenario: Scenario
    history_path: Path
    results: list[GateResult] = field(default_factory=list)
    status: str = "completed"
    error: str | None = None
    wall_s: float = 0.0
    fault_errors: list[str] = field(default_factory=list)
    report_dir: Path | None = None
    history: History | None = field(default=None, repr=False, compare=False)
    """The history of a completed run as evaluated (``None`` otherwise); equal to
    ``read_history(history_path)``."""

    @property
    def passed(self) -> bool:
        return (
            self.status == "completed"
            and not self.fault_errors
            and all(r.passed for r in self.results)
        )

    @property
    def skipped(self) -> bool:
        return self.status == "skipped"

    @property
    def exit_code(self) -> int:
        """0 every gate holds, 1 a gate failed (or the target died), 2 the run itself
        could not be done (skipped included: nothing was checked)."""
        if self.status == "target_failed":
            return 1
        if self.status != "completed" or self.fault_errors:
            return 2
        return 0 if self.passed else 1

    @property
    def verdict(self) -> str:
        if self.skipped:
            return "SKIPPED"
        return {0: "PASS", 1: "FAIL"}.get(self.exit_code, "ERROR")
