"""Harness capacity: the open-model rate the workload generator sustains.

Runs the scenario runner against the real ``LookupService`` with an in-memory
repository and no Redis, on a catalogue that fits the cache, so every
measured lookup is an in-process cache hit. For each offered rate it reports
the achieved throughput and the share of late starts (a start more than the
tolerance after its scheduled time). Capacity is the highest rate with < 1 %
late starts (target: >= 5,000 lookups/s on two cores).

    python benchmarks/harness_bench.py                  # capacity sweep
    python benchmarks/harness_bench.py --suite          # also time the default suite
    python benchmarks/harness_bench.py --rates 4000 8000 --seconds 5

Profile (cProfile, 8 000/s): about 20 µs of harness work per operation
(schedule, task, record) and 30 µs in the service's cache path. Lateness on a
machine shared with other processes comes from the OS scheduler, not from the
loop: compare the load average printed first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from resilience.clock import SYSTEM_CLOCK
from resilience.scenario.faults import RecordingFaultController
from resilience.scenario.history import read_history
from resilience.scenario.loader import parse_scenario
from resilience.scenario.metrics import metrics_for
from resilience.scenario.runner import run_scenario
from resilience.scenario.stack import StaticStack
from resilience.service import LookupService, ServiceConfig
from resilience.service.runtime import build_breaker, build_cache, build_metrics, build_retries

SLUGS = [f"service-{i}" for i in range(80)]
TOLERANCE_S = [0.005]


class MemoryRepository:
    """Slug → UUID from a dict (the database is not what is measured here)."""

    def __init__(self, slugs: Iterable[str]) -> None:
        self._ids = {s: uuid.uuid5(uuid.NAMESPACE_URL, s) for s in slugs}

    async def fetch_uuid(self, slug: str) -> uuid.UUID | None:
        return self._ids.get(slug)

    async def fetch_many(self, slugs: Iterable[str]) -> dict[str, uuid.UUID]:
        return {s: self._ids[s] for s in slugs if s in self._ids}


def cache_path_stack() -> StaticStack:
    config = ServiceConfig()
    lookup_retry, job_retry = build_retries(config, SYSTEM_CLOCK)
    service = LookupService(
        repository=MemoryRepository(SLUGS),
        cache=build_cache(config, SYSTEM_CLOCK),
        redis_tier=None,
        breaker=build_breaker(config, SYSTEM_CLOCK),
        retry=lookup_retry,
        metrics=build_metrics(SYSTEM_CLOCK),
        clock=SYSTEM_CLOCK,
        job_retry=job_retry,
    )
    return StaticStack(
        target=service, faults=RecordingFaultController(), clock=SYSTEM_CLOCK, slugs=SLUGS
    )


def scenario_text(rate: int, seconds: float) -> str:
    return f"""
name: capacity-{rate}
workload:
  duration: {seconds + 1}s
  warmup: 1s
  rate: {rate}
  keys: {{catalogue_size: {len(SLUGS)}}}
  late_tolerance: {TOLERANCE_S[0]}s
steady_state: {{probes: 5, timeout: 1s}}
gates: [late_rate < 0.01]
"""


async def measure(rate: int, seconds: float, directory: Path) -> tuple[float, float, float]:
    """(achieved ops/s, late share, p99 lateness in ms) at ``rate`` offered."""
    scenario = parse_scenario(scenario_text(rate, seconds))
    path = directory / f"capacity-{rate}.jsonl"
    await run_scenario(scenario, stack=cache_path_stack(), history_path=path)
    history = read_history(path)
    m = metrics_for(history, [(1.0, seconds + 1)])
    samples = m["late"]
    late = sorted(samples) if isinstance(samples, list) else []
    p99 = late[int(len(late) * 0.99)] * 1e3 if late else 0.0
    return _number(m["throughput"]), _number(m["late_rate"]), p99


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rates", type=int, nargs="*", default=[1000, 2500, 5000, 7500, 10000, 15000, 20000]
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--suite", action="store_true", help="also time `resilience run`")
    parser.add_argument(
        "--tolerance-ms",
        type=float,
        default=5.0,
        help="a start later than this is late (default 5 ms)",
    )
    args = parser.parse_args()
    TOLERANCE_S[0] = args.tolerance_ms / 1e3
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"cpus {os.cpu_count()}, load average {load:.1f} (other processes add lateness)")
    best = 0
    late_label = f"late>{args.tolerance_ms:g}ms"
    print(f"{'offered/s':>10} {'achieved/s':>11} {late_label:>11} {'late p99':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for rate in args.rates:
            achieved, late, p99 = asyncio.run(measure(rate, args.seconds, Path(tmp)))
            print(f"{rate:>10} {achieved:>11.0f} {late * 100:>10.2f}% {p99:>7.2f}ms", flush=True)
            if late < 0.01 and achieved >= 0.97 * rate:
                best = max(best, rate)
    print(f"capacity (< 1 % late starts): {best} lookups/s (target >= 5000)")
    if args.suite:
        started = time.perf_counter()
        code = subprocess.call(
            [
                sys.executable,
                "-c",
                "from resilience.cli import main; main()",
                "run",
                "--no-progress",
            ],
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - started
        print(f"default suite: exit {code}, {wall:.0f} s wall (target <= 300 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
