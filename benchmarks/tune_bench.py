"""Search against grid: how close optuna gets to the grid's Pareto front, and how fast.

The postgres-down scenario (scenarios/03-postgres-down.yaml) with 10 minutes of
workload; 3 parameters at 5 × 5 × 4 values (breaker.failure_threshold,
breaker.reset_timeout_s, retry.max_attempts); objectives: minimise
fallback_rate and lookup p(95), maximise cache.hit_rate; the scenario's gates
are the constraints.

* The grid (100 trials) is the reference: its feasible front's
  hypervolume (objectives normalised to the grid's range, reference point just
  past the worst feasible value). Early stopping is on for the grid too: it is
  exact (a pruned configuration fails a gate in the full run as well), so the
  feasible front is the one the full grid gives.
* optuna (TPE, ≤ 30 trials, pruning on) for several seeds: the hypervolume of
  its feasible trials as a ratio of the grid's (target ≥ 0.95), and its wall
  time as a ratio of the grid's, measured in the same run.
* ``--confirm 3``: wall time to a confirmed recommendation: the first optuna
  search (one seed per trial) plus 3 real runs of its best configurations on the
  scenario as written (34 s of workload each, local backend; side by side as
  ``tune`` runs them, ``--confirm-jobs``), target ≤ 3 minutes. ``--sequential``
  runs the same confirmations again one after another, for the ratio.

    .venv/bin/python benchmarks/tune_bench.py [--seeds 3] [--trials 30] [--confirm 3]
    .venv/bin/python benchmarks/tune_bench.py --no-grid --seeds 1 --confirm 3 --sequential
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from resilience.scenario.loader import load_scenario
from resilience.sim.cluster import local_pool
from resilience.sim.objectives import parse_objective
from resilience.sim.space import parse_param
from resilience.sim.tune import TuneResult, tune

ROOT = Path(__file__).resolve().parent.parent
FIELDS = {"breaker": ["failure_threshold", "reset_timeout_s"], "retry": ["max_attempts"]}
PARAMS = (
    "breaker.failure_threshold=2,3,5,8,13",
    "breaker.reset_timeout=5s,10s,30s,60s,120s",
    "retry.max_attempts=1..4",
)
OBJECTIVES = (("fallback_rate", False), ("lookup p(95)", False), ("cache.hit_rate", True))


def hypervolume(points: Sequence[Sequence[float]], ref: Sequence[float]) -> float:
    """Exact hypervolume dominated by ``points`` (all minimised) up to ``ref``, by slicing."""
    pts = [tuple(p) for p in points if all(a < r for a, r in zip(p, ref, strict=True))]
    if not pts:
        return 0.0
    if len(ref) == 1:
        return ref[0] - min(p[0] for p in pts)
    pts.sort(key=lambda p: p[0])
    volume = 0.0
    for i, p in enumerate(pts):
        upper = pts[i + 1][0] if i + 1 < len(pts) else ref[0]
        if upper <= p[0]:
            continue
        volume += (upper - p[0]) * hypervolume([q[1:] for q in pts[: i + 1]], ref[1:])
    return volume


def feasible_points(result: TuneResult) -> list[list[float]]:
    out = []
    for c in result.candidates:
        values = c.pessimistic(result.objectives) if c.passed else None
        if values is not None:
            out.append([o.signed(v) for o, v in zip(result.objectives, values, strict=True)])
    return out


def normalise(points: list[list[float]], lo: list[float], hi: list[float]) -> list[list[float]]:
    return [
        [(v - a) / (b - a) if b > a else 0.0 for v, a, b in zip(p, lo, hi, strict=True)]
        for p in points
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="optuna studies (seeds 0..N-1)")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--duration", type=float, default=600.0, help="workload seconds")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--confirm", type=int, default=0, help="real confirmations (0: none)")
    parser.add_argument(
        "--confirm-jobs", type=int, default=0, help="real runs at once (0: tune's default)"
    )
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="also run the confirmations one after another (for the ratio)",
    )
    parser.add_argument(
        "--no-grid",
        action="store_true",
        help="skip the grid and the hypervolumes (timing the confirmed recommendation alone)",
    )
    parser.add_argument(
        "--grid-json",
        type=Path,
        help="reuse the grid's feasible points, wall and CPU from this file (written when "
        "missing): for trying search settings without the grid's minutes each time",
    )
    args = parser.parse_args(argv)

    base = load_scenario(ROOT / "scenarios" / "03-postgres-down.yaml")
    scenario = base.model_copy(
        update={"workload": base.workload.model_copy(update={"duration": args.duration})}
    )
    params = [parse_param(p, FIELDS) for p in PARAMS]
    objectives = [parse_objective(t, maximize=up) for t, up in OBJECTIVES]
    print(
        f"tune bench: {scenario.name}, {args.duration:.0f} s of workload, "
        f"5x5x4 grid, {args.workers} workers, load average {os.getloadavg()[0]:.1f} at start"
    )

    def run(**kw: Any) -> tuple[TuneResult, float]:
        with local_pool(args.workers) as (pool, width):
            t0 = time.perf_counter()
            result = tune([scenario], params, objectives, executor=pool, width=width, **kw)
            return result, time.perf_counter() - t0

    grid: tuple[list[list[float]], float, float] | None = None  # points, wall, CPU
    if args.no_grid:
        print("grid skipped (--no-grid): no hypervolume")
    elif args.grid_json is not None and args.grid_json.exists():
        saved = json.loads(args.grid_json.read_text())
        grid = saved["points"], saved["wall_s"], saved["cpu_s"]
        grid_text = f"grid (from {args.grid_json}, measured {saved['when']})"
    else:
        found, wall = run(search="grid", prune=True)
        grid = feasible_points(found), wall, found.cpu_s
        grid_text = (
            f"grid: {len(found.candidates)} trials ({len(found.pruned)} pruned), "
            f"{len(grid[0])} feasible, front {len(found.front)}"
        )
        if args.grid_json is not None:
            args.grid_json.write_text(
                json.dumps(
                    {
                        "points": grid[0],
                        "wall_s": grid[1],
                        "cpu_s": grid[2],
                        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    }
                )
            )
    if grid is not None:
        grid_points, grid_wall, grid_cpu = grid
        if not grid_points:
            print("no grid point holds every gate: nothing to compare")
            return 1
        lo = [min(p[i] for p in grid_points) for i in range(len(objectives))]
        hi = [max(p[i] for p in grid_points) for i in range(len(objectives))]
        ref = [1.1] * len(objectives)
        grid_hv = hypervolume(normalise(grid_points, lo, hi), ref)
        print(
            f"{grid_text}; wall {grid_wall:.1f} s, CPU in workers {grid_cpu:.1f} s; "
            f"hypervolume {grid_hv:.4f} (normalised)"
        )
    best: tuple[TuneResult, float] | None = None
    for seed in range(args.seeds):
        found, wall = run(search="optuna", trials=args.trials, seed=seed, prune=True)
        points = feasible_points(found)
        versus = ""
        if grid is not None:
            hv = hypervolume(normalise(points, lo, hi), ref)
            versus = (
                f"; hypervolume ratio {hv / grid_hv:.3f} (target >= 0.95); "
                f"wall = {wall / grid_wall:.2f} x the grid's, "
                f"CPU = {found.cpu_s / max(grid_cpu, 1e-9):.2f} x"
            )
        print(
            f"optuna seed {seed}: {len(found.candidates) + found.reused} trials "
            f"({len(found.candidates)} simulated, {found.reused} proposed again, "
            f"{len(found.pruned)} pruned), {len(points)} feasible; "
            f"wall {wall:.1f} s, CPU {found.cpu_s:.1f} s{versus}"
        )
        if best is None:
            best = (found, wall)
    if args.confirm and best is not None and not best[0].best(args.confirm):
        print("no configuration holds every gate in simulation: nothing to confirm")
    elif args.confirm and best is not None:
        from rich.console import Console

        from resilience.sim.confirm import confirm, default_jobs, recommendation

        searched, search_wall = best
        chosen = searched.best(args.confirm)  # the front, then the fronts behind it
        jobs = args.confirm_jobs or default_jobs(len(chosen))

        def confirmed(jobs: int, folder: str) -> tuple[list[Any], float]:
            t0 = time.perf_counter()
            done = confirm([base], chosen, objectives, Path(folder), jobs=jobs, say=Console().print)
            wall = time.perf_counter() - t0
            for c in done:
                for side in c.real:
                    missed = [g for g, label, _ in side.gates if label != "PASS"]
                    values = ", ".join(
                        f"{o.text} {o.format(v)}"
                        for o, v in zip(objectives, side.values, strict=False)
                    )
                    verdict = (
                        "every gate holds"
                        if side.passed
                        else f"missed {missed}"
                        if side.status == "completed"
                        else side.error
                    )
                    print(f"  #{c.candidate.number} {side.status}: {verdict}; {values}")
            return done, wall

        confirmations, confirm_wall = confirmed(jobs, "reports/tune-bench")
        total = search_wall + confirm_wall
        picked, _ = recommendation(confirmations)
        print(
            f"to a confirmed recommendation: {total:.1f} s wall (search {search_wall:.1f} s + "
            f"{len(chosen)} real runs of {base.workload.duration:.0f} s, {jobs} at once, "
            f"{confirm_wall:.1f} s); target <= 180 s: ratio {total / 180:.2f}; "
            f"recommended: {'none' if picked is None else picked.candidate.params}"
        )
        if args.sequential:
            _, one_by_one = confirmed(1, "reports/tune-bench-sequential")
            print(
                f"the same runs one after another: {one_by_one:.1f} s (total "
                f"{search_wall + one_by_one:.1f} s, ratio {(search_wall + one_by_one) / 180:.2f}); "
                f"side by side {confirm_wall / one_by_one:.2f} x that, "
                f"total {total / (search_wall + one_by_one):.2f} x"
            )
    print(f"load average at the end {os.getloadavg()[0]:.1f} (the machine is shared)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
