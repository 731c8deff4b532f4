"""One simulated run of one configuration: the unit of work tuning hands to a worker.

:func:`run_trial` is a plain function of a picklable :class:`TrialJob`, so the
same job runs in-process, in a local process pool or on a Dask worker. It
simulates the scenario with the configuration's settings (and a seed, for the
noise re-runs), then returns a :class:`TrialRun`: every gate's verdict and
violation, and each objective's value. The history file is deleted after.

Early stopping (:func:`prefix_plan`): a gate scoped ``before`` or ``during`` a
fault is decided once those windows are over. The simulator runs the real
runner on virtual time, so the first part of the timeline is just a shorter
run of the same scenario (same seed, same arrivals, same faults up to there):
:func:`prefix_scenario` cuts the scenario after the last such window, keeps
the gates decided by then, and a configuration failing one of them there fails
it in the full run too, so it is pruned without running the rest.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "PREFIX_MARGIN_S",
    "PrefixPlan",
    "TrialJob",
    "TrialRun",
    "gate_label",
    "gates_verdict",
    "planned_timeline",
    "prefix_plan",
    "prefix_scenario",
    "run_trial",
]

PREFIX_MARGIN_S = 1.0
"""Seconds run past the last decided window, so operations started in it have finished."""
PREFIX_MAX_SHARE = 0.5
"""A prefix is worth running only when it is at most this share of the scenario."""


@dataclass(frozen=True, slots=True)
class TrialJob:
    """Simulate ``scenario`` with ``params``; ``until_s`` set: only its first part;
    ``real``: run it on the real stack instead (a team's own service, which the
    simulator cannot run)."""

    scenario: Any
    params: Mapping[str, Any]
    objectives: tuple[tuple[str, bool], ...]
    seed: int | None = None
    until_s: float | None = None
    models: Any = None
    real: bool = False


@dataclass
class TrialRun:
    """What one simulated run gave; ``values`` in the order of the objectives."""

    scenario: str
    params: dict[str, Any]
    seed: int
    until_s: float | None
    status: str = "completed"
    error: str | None = None
    gates: list[tuple[str, str, float | None, float]] = field(default_factory=list)
    """(gate, status, observed, violation) for each gate judged."""
    values: list[float | None] = field(default_factory=list)
    cpu_s: float = 0.0

    @property
    def passed(self) -> bool:
        """Completed and no gate violated."""
        return self.status == "completed" and all(v <= 0 for *_, v in self.gates)

    @property
    def failed_gates(self) -> list[str]:
        """The gates that fail the run: a miss, or no data where the gate needs some."""
        return [g for g, _, _, v in self.gates if v > 0]


def gate_label(status: str, violation: float) -> str:
    """A gate's verdict as ``resilience run`` prints it (:attr:`GateResult.label`).

    ``nodata`` that fails the run (``violation`` > 0) is ``NO DATA``; one the
    gate allows (``if any``) is ``NO DATA (allowed)``.
    """
    if status == "nodata":
        return "NO DATA" if violation > 0 else "NO DATA (allowed)"
    return {"pass": "PASS", "fail": "FAIL", "inconclusive": "INCONCLUSIVE"}.get(
        status, status.upper()
    )


def gates_verdict(runs: Sequence[TrialRun], *, width: int = 120) -> str:
    """``PASS``, or the gates failing the runs by label: ``FAIL a, b; NO DATA c``."""
    missed: dict[str, set[str]] = {}
    for r in runs:
        for gate, status, _, miss in r.gates:
            if miss > 0:
                missed.setdefault(gate_label(status, miss), set()).add(gate)
    if not missed:
        return "PASS"
    parts = [f"{label} {', '.join(sorted(gates))}" for label, gates in sorted(missed.items())]
    text = "; ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"


def planned_timeline(scenario: Any) -> Any:
    """The scenario's :class:`~resilience.scenario.gates.Timeline` as written (no run needed)."""
    from resilience.scenario.gates import Timeline

    end = float(scenario.workload.duration)
    faults: dict[str, list[tuple[float, float]]] = {}
    for fault in scenario.faults:
        for i in range(fault.times):
            start = float(fault.at) + i * float(fault.every or 0.0)
            stop = start + float(fault.duration) if fault.duration is not None else end
            if fault.action == "enable":
                stop = start
            faults.setdefault(fault.name, []).append((start, stop))
    return Timeline(float(scenario.workload.warmup), end, faults)


@dataclass(frozen=True, slots=True)
class PrefixPlan:
    """Run the first ``until_s`` seconds and judge ``gates`` (their sources) there."""

    until_s: float
    gates: tuple[str, ...]


def prefix_plan(scenario: Any, *, max_share: float = PREFIX_MAX_SHARE) -> PrefixPlan | None:
    """Where to cut ``scenario`` for early stopping, or ``None`` when no cut pays.

    Candidates are the ends of the ``before``/``during`` gates' windows; the
    latest one within ``max_share`` of the run wins (most gates decided), unless
    a repeated fault is active across it.
    """
    from resilience.scenario.gates import windows_for

    timeline = planned_timeline(scenario)
    duration = float(scenario.workload.duration)
    decided: list[tuple[float, str]] = []
    for gate in scenario.scoped_gates():
        if gate.phase.kind not in ("before", "during"):
            continue
        try:
            windows = windows_for(gate.phase, timeline)
        except KeyError:
            continue
        if windows:
            decided.append((max(b for _, b in windows), gate.source))
    spans = [w for ws in timeline.faults.values() for w in ws]
    repeated = {f.name for f in scenario.faults if f.times > 1}
    for t in sorted({t for t, _ in decided}, reverse=True):
        later = [a for a, _ in spans if a >= t]
        until = min([t + PREFIX_MARGIN_S, *later])
        if until > max_share * duration or until <= float(scenario.workload.warmup):
            continue
        straddled = [name for name, ws in timeline.faults.items() for a, b in ws if a < until < b]
        if any(name in repeated for name in straddled):
            continue
        return PrefixPlan(until, tuple(src for when, src in decided if when <= t))
    return None


def prefix_scenario(scenario: Any, plan: PrefixPlan) -> Any:
    """``scenario`` cut at ``plan.until_s``: later faults dropped, the plan's gates only."""
    from resilience.scenario.model import Scenario

    until = plan.until_s
    data = scenario.model_dump(mode="python", exclude={"source"})
    faults = []
    for fault, spec in zip(scenario.faults, data["faults"], strict=True):
        if fault.at >= until:
            continue
        repeats = [i for i in range(fault.times) if fault.at + i * (fault.every or 0.0) < until]
        spec["times"] = len(repeats)
        if spec["times"] == 1:
            spec["every"] = None
        end = fault.at + (len(repeats) - 1) * (fault.every or 0.0)
        if fault.duration is not None and end + fault.duration > until:
            spec["duration"] = until - end  # still on when the cut run ends
        faults.append(spec)
    data["faults"] = faults
    data["workload"]["duration"] = until
    wanted = set(plan.gates)
    data["gates"] = [  # the whole gate: phase, reference and ``if any`` as written
        {"expr": g.source} for g in scenario.scoped_gates() if g.source in wanted
    ]
    migration = data.get("migration")
    if migration is not None and migration.get("at", 0.0) >= until:
        data["migration"] = None
    return Scenario.model_validate(data)


def run_trial(job: TrialJob) -> TrialRun:
    """Simulate one job (in whatever process runs it) and summarise it."""
    from resilience.sim.objectives import measure, parse_objective, target_of, violation
    from resilience.sim.real_run import run_real, with_params
    from resilience.sim.run import run_simulated

    scenario = job.scenario
    seed = int(scenario.seed if job.seed is None else job.seed)
    run = TrialRun(scenario=scenario.name, params=dict(job.params), seed=seed, until_s=job.until_s)
    if job.until_s is not None:
        plan = prefix_plan(scenario)
        if plan is None or abs(plan.until_s - job.until_s) > 1e-9:
            raise ValueError(f"{scenario.name}: no prefix at {job.until_s} s")
        scenario = prefix_scenario(scenario, plan)
    kind, operations = target_of(scenario)
    objectives = [
        parse_objective(text, maximize=up, kind=kind, operations=operations)
        for text, up in job.objectives
    ]
    fd, name = tempfile.mkstemp(prefix="resilience-trial-", suffix=".jsonl")
    os.close(fd)
    path = Path(name)
    started = time.process_time()
    try:
        try:
            if job.real:
                result = run_real(with_params(scenario, job.params, seed=seed), path)
            else:
                result = run_simulated(
                    scenario, history_path=path, overrides=job.params, models=job.models, seed=seed
                )
        except (ValueError, TypeError) as exc:  # a setting the configuration refuses
            run.status, run.error = "invalid", str(exc).splitlines()[0][:300]
            return run
        except Exception as exc:  # the simulation itself failed: this trial, not the study
            run.status, run.error = "crashed", f"{type(exc).__name__}: {exc}"[:300]
            return run
        run.status, run.error = result.status, result.error
        run.gates = [
            (
                str(r.gate),
                "inconclusive" if r.inconclusive else str(r.status),
                None if r.observed is None else float(r.observed),
                violation(r),
            )
            for r in result.results
        ]
        if result.status == "completed" and job.until_s is None:
            run.values = measure(objectives, result.history)
        return run
    finally:
        run.cpu_s = time.process_time() - started
        path.unlink(missing_ok=True)


def jobs_for(
    scenarios: Sequence[Any],
    params: Mapping[str, Any],
    objectives: tuple[tuple[str, bool], ...],
    *,
    seed_offset: int = 0,
    models: Any = None,
    real: bool = False,
) -> list[TrialJob]:
    """One full-length job per scenario (``seed_offset`` > 0: a noise re-run's other seed)."""
    return [
        TrialJob(
            scenario=s,
            params=dict(params),
            objectives=objectives,
            seed=None if seed_offset == 0 else int(s.seed) + 7919 * seed_offset,
            models=models,
            real=real,
        )
        for s in scenarios
    ]
