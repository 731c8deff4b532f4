"""Threshold tuning: simulate a scenario for many service settings, in parallel.

:func:`tune` runs :func:`~resilience.sim.run.run_simulated` once per
combination (a grid, a random or a Latin-hypercube sample of the
:mod:`~resilience.sim.space`), spread over worker processes, and gives one
:class:`TuneRow` per combination: the gate verdicts and the headline metrics.
Rows are sorted by an objective; :func:`pareto_front` picks the combinations
no other one beats on every chosen metric at once.

Metrics of a row (over the measured window, warm-up excluded):

====================  =====  ===============================================
name                  best   meaning
====================  =====  ===============================================
``fallback_rate``     min    fallbacks / valid lookups
``degraded_rate``     min    fallbacks caused by failures / valid lookups
``success_rate``      max    correct answers / valid lookups
``hit_rate``          max    cache + Redis hits / valid lookups
``error_rate``        min    errors / operations
``p50_ms`` … ``p99_ms``  min  latency of valid lookups (nearest rank)
``opens``             min    breaker opens
``opens_per_hour``    min    opens per simulated hour
``opens_per_hour_ub`` min    its 95 % Poisson upper bound
``failed_gates``      min    gates that failed
====================  =====  ===============================================
"""

from __future__ import annotations

import math
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resilience.scenario.gates.confidence import rate_upper_bound
from resilience.sim.space import Value

__all__ = [
    "METRIC_DIRECTIONS",
    "TuneResult",
    "TuneRow",
    "objective_key",
    "pareto_front",
    "row_metrics",
    "tune",
]

METRIC_DIRECTIONS: Mapping[str, str] = {
    "fallback_rate": "min",
    "degraded_rate": "min",
    "success_rate": "max",
    "hit_rate": "max",
    "error_rate": "min",
    "p50_ms": "min",
    "p95_ms": "min",
    "p99_ms": "min",
    "opens": "min",
    "opens_per_hour": "min",
    "opens_per_hour_ub": "min",
    "failed_gates": "min",
}
"""Every row metric and whether smaller (``min``) or larger (``max``) is better."""


@dataclass
class TuneRow:
    """One evaluated combination."""

    params: dict[str, Value]
    metrics: dict[str, float | None] = field(default_factory=dict)
    gates: list[tuple[str, str, float | None]] = field(default_factory=list)
    """(gate, status, observed) for every gate, the implicit steady-state one included;
    status ``inconclusive`` for a rate gate whose estimate holds but whose 95 % bound
    does not yet (the gate's ``nodata``)."""
    status: str = "completed"
    error: str | None = None
    wall_s: float = 0.0
    rate_bounds: list[dict[str, Any]] = field(default_factory=list)
    """95 % Poisson bounds of the upper-limited rate gates, from the gate results
    (:mod:`resilience.scenario.gates.confidence`): the bound's fields plus ``gate``,
    ``passes`` (the estimate meets the limit) and ``confident`` (the bound does too)."""

    @property
    def confident(self) -> bool:
        """Every rate gate also holds on its 95 % upper bound."""
        return all(b["confident"] for b in self.rate_bounds)

    @property
    def passed(self) -> bool:
        """Completed, and no gate failed or lacked data (inconclusive rate gates pass here;
        :attr:`confident` says whether their bounds hold too)."""
        return self.status == "completed" and all(
            s in ("pass", "inconclusive") for _, s, _ in self.gates
        )


@dataclass
class TuneResult:
    """Every row (sorted by the objective), with what is needed to report them."""

    scenario: str
    params: list[str]
    rows: list[TuneRow]
    objective: str
    pareto_metrics: list[str]
    workers: int
    wall_s: float

    @property
    def passing(self) -> list[TuneRow]:
        return [r for r in self.rows if r.passed]

    @property
    def front(self) -> list[TuneRow]:
        return pareto_front(self.rows, self.pareto_metrics)


def _percentile(ordered: Sequence[float], q: float) -> float | None:
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def row_metrics(history: Any) -> dict[str, float | None]:
    """The row metrics of a history (see the module table)."""
    from resilience.scenario.metrics import metrics_for, timeline_of

    timeline = timeline_of(history)
    window = [(timeline.start_s, timeline.end_s)]
    m = metrics_for(history, window)
    lookups = m.get("lookup")
    ordered = sorted(lookups) if isinstance(lookups, list) else []
    window_s = float(m.get("window_s") or 0.0)  # type: ignore[arg-type]
    opens = int(m.get("breaker.opens") or 0)  # type: ignore[arg-type]

    def num(key: str) -> float | None:
        value = m.get(key)
        return float(value) if isinstance(value, int | float) else None

    def ms(q: float) -> float | None:
        value = _percentile(ordered, q)
        return None if value is None else value * 1000.0

    return {
        "fallback_rate": num("fallback_rate"),
        "degraded_rate": num("degraded_rate"),
        "success_rate": num("success_rate"),
        "hit_rate": num("cache.hit_rate"),
        "error_rate": num("error_rate"),
        "p50_ms": ms(50),
        "p95_ms": ms(95),
        "p99_ms": ms(99),
        "opens": float(opens),
        "opens_per_hour": opens * 3600.0 / window_s if window_s else None,
        "opens_per_hour_ub": rate_upper_bound(opens, window_s) if window_s else None,
    }


def _evaluate(job: tuple[Any, dict[str, Value], str, Any]) -> TuneRow:
    """Worker: simulate one combination and summarise it (history deleted after)."""
    from resilience.sim.run import run_simulated

    scenario, params, workdir, models = job
    row = TuneRow(params=dict(params))
    fd, name = tempfile.mkstemp(suffix=".jsonl", dir=workdir)
    os.close(fd)
    path = Path(name)
    try:
        try:
            result = run_simulated(scenario, history_path=path, overrides=params, models=models)
        except (ValueError, TypeError) as exc:  # a setting the configuration refuses
            row.status, row.error = "invalid", str(exc).splitlines()[0][:300]
            return row
        row.status, row.error, row.wall_s = result.status, result.error, result.wall_s
        row.gates = [
            (
                str(r.gate),
                "inconclusive" if r.inconclusive else str(r.status),
                None if r.observed is None else float(r.observed),
            )
            for r in result.results
        ]
        row.rate_bounds = [
            {
                "gate": str(r.gate),
                **r.bound.to_dict(),
                "passes": r.gate.gate.holds(r.bound.estimate),
                "confident": r.gate.gate.holds(r.bound.upper),
            }
            for r in result.results
            if r.bound is not None
        ]
        if result.status == "completed":
            row.metrics = row_metrics(result.history)  # the run's own, not read back
        row.metrics["failed_gates"] = float(
            sum(1 for _, s, _ in row.gates if s not in ("pass", "inconclusive"))
        )
        return row
    finally:
        path.unlink(missing_ok=True)


def objective_key(objective: str) -> tuple[str, Callable[[TuneRow], tuple[int, float]]]:
    """``(metric, sort key)`` for ``metric``, ``min:metric`` or ``max:metric``.

    Rows without the metric sort last; ties keep the combination order.
    """
    direction, _, name = objective.rpartition(":")
    if name not in METRIC_DIRECTIONS:
        import difflib

        hint = difflib.get_close_matches(name, list(METRIC_DIRECTIONS), n=1)
        did = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(
            f"unknown objective {name!r}{did} (choose from {', '.join(METRIC_DIRECTIONS)})"
        )
    direction = direction or METRIC_DIRECTIONS[name]
    if direction not in ("min", "max"):
        raise ValueError(f"objective direction must be min or max (got {direction!r})")
    sign = 1.0 if direction == "min" else -1.0

    def key(row: TuneRow) -> tuple[int, float]:
        value = row.metrics.get(name)
        return (1, 0.0) if value is None else (0, sign * value)

    return name, key


def pareto_front(rows: Sequence[TuneRow], metrics: Sequence[str]) -> list[TuneRow]:
    """Rows not dominated on ``metrics`` (each in its best direction), in input order."""
    signs = [1.0 if METRIC_DIRECTIONS[m] == "min" else -1.0 for m in metrics]

    def vector(row: TuneRow) -> tuple[float, ...] | None:
        values = [row.metrics.get(m) for m in metrics]
        if any(v is None for v in values):
            return None
        return tuple(s * float(v) for s, v in zip(signs, values, strict=True))  # type: ignore[arg-type]

    points = [(row, vector(row)) for row in rows]
    candidates = [(r, v) for r, v in points if v is not None]
    front = []
    for row, v in candidates:
        dominated = any(
            all(a <= b for a, b in zip(w, v, strict=True)) and w != v for _, w in candidates
        )
        if not dominated:
            front.append(row)
    return front


def tune(
    scenario: Any,
    combos: Sequence[Mapping[str, Value]],
    *,
    workers: int | None = None,
    objective: str = "fallback_rate",
    pareto: Sequence[str] = ("fallback_rate", "p99_ms", "opens_per_hour"),
    models: Any = None,
    progress: Callable[[int, int, TuneRow], None] | None = None,
) -> TuneResult:
    """Simulate ``scenario`` once per combination; rows sorted by ``objective``."""
    import time

    name, key = objective_key(objective)
    for metric in pareto:
        objective_key(metric)  # validates the name
    workers = max(1, workers or os.cpu_count() or 1)
    started = time.perf_counter()
    jobs_dir = tempfile.mkdtemp(prefix="resilience-tune-")
    jobs = [(scenario, dict(c), jobs_dir, models) for c in combos]
    rows: list[TuneRow] = []
    try:
        if workers == 1 or len(jobs) == 1:
            for job in jobs:
                rows.append(_evaluate(job))
                if progress is not None:
                    progress(len(rows), len(jobs), rows[-1])
        else:
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            context = multiprocessing.get_context(method)
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                for row in pool.map(_evaluate, jobs, chunksize=1):
                    rows.append(row)
                    if progress is not None:
                        progress(len(rows), len(jobs), row)
    finally:
        import shutil

        shutil.rmtree(jobs_dir, ignore_errors=True)
    ordered = sorted(rows, key=key)
    params = list(combos[0]) if combos else []
    return TuneResult(
        scenario=scenario.name,
        params=params,
        rows=ordered,
        objective=name,
        pareto_metrics=list(pareto),
        workers=workers,
        wall_s=time.perf_counter() - started,
    )
