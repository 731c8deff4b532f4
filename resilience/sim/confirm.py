"""Confirmation on the real stack: the best tuned configurations, run for real.

:func:`confirm` re-runs each chosen configuration through the same path as
``resilience run`` (:func:`resilience.scenario.runner.run_scenario` on the
scenario's backend, local by default) for every scenario, and puts each
objective side by side: the simulated spread over seeds, the real value and
the real value's own 90 % noise interval — for a percentile the
distribution-free order-statistics interval of
:func:`resilience.sim.calibrate.quantile_interval`, for a rate over lookups
the normal interval of a binomial proportion. A simulated mean inside it (or a
simulated spread overlapping it) *agrees*: a second real run could differ as
much. :func:`recommendation` picks the first configuration that holds every
gate for real and writes the ``service:`` block to paste.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Confirmation", "RealSide", "confirm", "real_interval", "recommendation"]

_Z90 = 1.6448536269514722


def real_interval(objective: Any, history: Any) -> tuple[float, float] | None:
    """The 90 % noise interval of ``objective`` on a real history (``None``: not known)."""
    from resilience.scenario.gates import windows_for
    from resilience.scenario.metrics import metrics_for, timeline_of
    from resilience.sim.calibrate import quantile_interval

    try:
        windows = windows_for(objective.scoped.phase, timeline_of(history))
    except KeyError:
        return None
    if not windows:
        return None
    metrics = metrics_for(history, windows)
    gate = objective.scoped.gate
    value = metrics.get(gate.metric)
    if isinstance(value, list) and gate.aggregation in ("p", "med"):
        q = 50.0 if gate.aggregation == "med" else float(gate.percentile or 50.0)
        return quantile_interval(sorted(value), q)
    if isinstance(value, float) and gate.metric.endswith("_rate") and gate.aggregation is None:
        lookups = metrics.get("lookup")
        n = len(lookups) if isinstance(lookups, list) else 0
        if n == 0:
            return None
        half = _Z90 * math.sqrt(max(value * (1 - value), 0.25 / n) / n)
        return (max(0.0, value - half), min(1.0, value + half))
    return None


@dataclass
class RealSide:
    """One real run of one configuration on one scenario."""

    scenario: str
    status: str
    error: str | None = None
    values: list[float | None] = field(default_factory=list)
    intervals: list[tuple[float, float] | None] = field(default_factory=list)
    gates: list[tuple[str, str, str]] = field(default_factory=list)
    """(gate, verdict as ``resilience run`` prints it — PASS, FAIL, NO DATA, NO DATA
    (allowed), INCONCLUSIVE —, observed as the gate writes it)."""
    passed: bool = False
    history: str = ""


@dataclass
class Confirmation:
    """A tuned configuration, its simulated figures and its real runs."""

    candidate: Any
    objectives: list[Any]
    real: list[RealSide] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.real) and all(r.passed for r in self.real)

    def verdict(self, index: int, side: RealSide) -> str:
        """agrees / differs / – for objective ``index`` on one scenario."""
        sim = self.candidate.spread(index, side.scenario)
        real = side.values[index] if index < len(side.values) else None
        interval = side.intervals[index] if index < len(side.intervals) else None
        if sim is None or real is None or interval is None:
            return "–"
        lo, hi = interval
        if lo <= sim.mean <= hi:
            return "agrees"
        if sim.low <= hi and sim.high >= lo:
            return "agrees (spread)"
        return "differs"

    def lines(self) -> list[list[str]]:
        """Table rows: number, scenario, metric, simulated, real, interval, verdict."""
        from resilience.sim.report import spread_text

        rows = []
        for side in self.real:
            if side.status != "completed":
                rows.append(
                    [
                        str(self.candidate.number),
                        side.scenario,
                        "run",
                        "",
                        side.status,
                        side.error or "",
                        "–",
                    ]
                )
                continue
            for i, o in enumerate(self.objectives):
                interval = side.intervals[i]
                rows.append(
                    [
                        str(self.candidate.number),
                        side.scenario,
                        o.text,
                        spread_text(o, self.candidate.spread(i, side.scenario)),
                        o.format(side.values[i]),
                        "–"
                        if interval is None
                        else f"{o.format(interval[0])}…{o.format(interval[1])}",
                        self.verdict(i, side),
                    ]
                )
            missed: dict[str, list[str]] = {}
            for g, label, _ in side.gates:
                if label in ("FAIL", "NO DATA"):
                    missed.setdefault(label, []).append(g)
            real = "; ".join(f"{label} {', '.join(gs)}" for label, gs in sorted(missed.items()))
            rows.append(
                [
                    str(self.candidate.number),
                    side.scenario,
                    "gates",
                    "PASS",
                    "PASS" if side.passed else real or "FAIL",
                    "",
                    "",
                ]
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.candidate.number,
            "params": self.candidate.params,
            "passed": self.passed,
            "real": [
                {
                    "scenario": r.scenario,
                    "status": r.status,
                    "error": r.error,
                    "passed": r.passed,
                    "values": r.values,
                    "intervals": r.intervals,
                    "gates": [{"gate": g, "label": s, "observed": o} for g, s, o in r.gates],
                    "history": r.history,
                }
                for r in self.real
            ],
        }


def _run_real(scenario: Any, params: dict[str, Any], history: Path) -> Any:
    from resilience.scenario.runner import run_scenario

    candidate = scenario.model_copy(update={"service": {**scenario.service, **params}})
    return asyncio.run(run_scenario(candidate, history_path=history))


def confirm(
    scenarios: Sequence[Any],
    candidates: Sequence[Any],
    objectives: Sequence[Any],
    output: Path,
    *,
    say: Any = None,
) -> list[Confirmation]:
    """Run each candidate on every scenario for real; histories go to ``output``."""
    from resilience.sim.objectives import measure

    output.mkdir(parents=True, exist_ok=True)
    out = []
    for candidate in candidates:
        conf = Confirmation(candidate, list(objectives))
        for scenario in scenarios:
            path = output / f"confirm-{candidate.number}-{scenario.name}.jsonl"
            if say is not None:
                say(f"confirming #{candidate.number} on {scenario.name} (real, local backend) …")
            try:
                result = _run_real(scenario, candidate.params, path)
            except Exception as exc:  # the stack did not start: report it, go on
                conf.real.append(RealSide(scenario.name, "crashed", f"{type(exc).__name__}: {exc}"))
                continue
            side = RealSide(scenario.name, result.status, result.error, history=str(path))
            side.gates = [(str(r.gate), r.label, r.observed_text) for r in result.results]
            side.passed = bool(result.passed)
            if result.status == "completed" and result.history is not None:
                side.values = measure(objectives, result.history)
                side.intervals = [real_interval(o, result.history) for o in objectives]
            conf.real.append(side)
        out.append(conf)
    return out


def recommendation(confirmations: Sequence[Confirmation]) -> tuple[Confirmation | None, str]:
    """The first configuration holding every gate for real, and its ``service:`` block."""
    import yaml

    for conf in confirmations:
        if conf.passed:
            block = yaml.safe_dump({"service": dict(conf.candidate.params)}, sort_keys=False)
            return conf, block
    return None, ""
