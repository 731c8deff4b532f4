"""Simulator throughput: one simulated hour, and a 100-combination sweep.

    .venv/bin/python benchmarks/sim_bench.py            # both (several minutes)
    .venv/bin/python benchmarks/sim_bench.py --hour     # the hour only
    .venv/bin/python benchmarks/sim_bench.py --sweep    # the sweep only
    .venv/bin/python benchmarks/sim_bench.py --quick    # 1/10 of each (smoke test)

Targets (issue 8): one hour of 200 lookups/s (720 000 lookups) with a fault
timeline in ≤ 10 s on one core; a 100-combination sweep of a 10-minute
scenario in ≤ 2 min on 2 cores. Prints wall and CPU time, the simulated
lookups per second of wall time, the per-lookup cost, and the ratio to target.
The machine's load average is printed too: other processes on a shared
machine slow the wall-clock figures, CPU time less so.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from resilience.scenario.model import Scenario
from resilience.sim.cluster import local_pool
from resilience.sim.objectives import DEFAULT_OBJECTIVES, parse_objective
from resilience.sim.run import run_simulated
from resilience.sim.space import combinations, parse_param
from resilience.sim.tune import tune


def _faults(duration_s: float) -> list[dict[str, Any]]:
    """The default suite's faults, repeated through the run (every 10 minutes)."""
    period = min(600.0, duration_s / 2)
    times = max(1, int(duration_s // period) - 0)
    base: list[dict[str, Any]] = [
        {"name": "pg-down", "at": 60, "duration": 20, "target": "postgres", "action": "disable"},
        {
            "name": "pg-latency",
            "at": 120,
            "duration": 30,
            "target": "postgres",
            "toxic": "latency",
            "attributes": {"latency": 300, "jitter": 100},
        },
        {
            "name": "resets",
            "at": 200,
            "duration": 10,
            "target": "postgres",
            "toxic": "reset_peer",
            "toxicity": 0.3,
            "attributes": {"timeout": 0},
        },
        {
            "name": "hang",
            "at": 260,
            "duration": 12,
            "target": "postgres",
            "toxic": "timeout",
            "attributes": {"timeout": 0},
        },
        {"name": "redis-down", "at": 320, "duration": 30, "target": "redis", "action": "disable"},
        {
            "name": "slow-net",
            "at": 400,
            "duration": 20,
            "target": "postgres",
            "toxic": "bandwidth",
            "attributes": {"rate": 2},
        },
    ]
    scale = period / 600.0
    out = []
    for fault in base:
        f = dict(fault)
        f["at"] = fault["at"] * scale
        f["duration"] = fault["duration"] * scale
        if times > 1:
            f["every"] = period
            f["times"] = times
        out.append(f)
    return out


def scenario(duration_s: float, rate: float, name: str) -> Scenario:
    return Scenario.model_validate(
        {
            "name": name,
            "seed": 42,
            "workload": {
                "duration": duration_s,
                "rate": rate,
                "warmup": min(30.0, duration_s / 10),
                "keys": {"catalogue_size": 300, "unknown_share": 0.02, "invalid_share": 0.01},
            },
            "faults": _faults(duration_s),
            "service": {"breaker.reset_timeout_s": "10s"},
            "steady_state": {"probes": 20, "timeout": "60s"},
        }
    )


def bench_hour(scale: float) -> None:
    duration = 3600.0 * scale
    sc = scenario(duration, 200.0, "sim-bench-hour")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.jsonl"
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = run_simulated(sc, history_path=path)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        ops = sum(1 for line in path.open("rb") if line.startswith(b'{"type":"op"'))
    target = 10.0 * scale
    print(
        f"simulated hour x{scale:g}: {duration:.0f} s simulated, {ops} operations, {result.verdict}"
    )
    print(
        f"  wall {wall:.2f} s, CPU {cpu:.2f} s (target ≤ {target:.1f} s: ratio {wall / target:.2f})"
    )
    print(
        f"  {ops / wall:,.0f} simulated lookups per wall second, {cpu / ops * 1e6:.1f} µs CPU each"
    )
    print(f"  virtual/real speed-up {duration / wall:,.0f}x")


def bench_sweep(scale: float, workers: int) -> None:
    duration = 600.0 * scale
    sc = scenario(duration, 200.0, "sim-bench-sweep")
    fields = {
        "breaker": ["failure_threshold", "reset_timeout_s"],
        "retry": ["max_attempts"],
    }
    params = [
        parse_param("breaker.failure_threshold=2,3,5,8,13", fields),
        parse_param("breaker.reset_timeout=5s,10s,30s,60s,120s", fields),
        parse_param("retry.max_attempts=1..4", fields),
    ]
    combos = combinations(params)
    objectives = [parse_objective(t, maximize=up) for t, up in DEFAULT_OBJECTIVES]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with local_pool(workers) as (pool, width):
        result = tune(
            [sc], params, objectives, search="grid", executor=pool, width=width, prune=False
        )
    wall = time.perf_counter() - wall0
    try:
        children = os.times().children_user + os.times().children_system
    except AttributeError:  # pragma: no cover - not on this platform
        children = 0.0
    target = 120.0 * scale
    print(
        f"sweep x{scale:g}: {len(combos)} combinations of a {duration:.0f} s scenario "
        f"on {workers} workers, {len(result.feasible)} pass, {len(result.front)} on the front"
    )
    print(
        f"  wall {wall:.1f} s, CPU parent {time.process_time() - cpu0:.1f} s + workers "
        f"{children:.1f} s (target ≤ {target:.0f} s: ratio {wall / target:.2f})"
    )
    print(f"  {wall / len(combos):.2f} s wall per combination")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hour", action="store_true", help="only the simulated hour")
    parser.add_argument("--sweep", action="store_true", help="only the sweep")
    parser.add_argument("--quick", action="store_true", help="a tenth of each (smoke test)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    scale = 0.1 if args.quick else 1.0
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} cores")
    both = not args.hour and not args.sweep
    if args.hour or both:
        bench_hour(scale)
    if args.sweep or both:
        bench_sweep(scale, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
