"""Time to ready of the local environment: PostgreSQL + Redis + proxy server + two proxies.

Each run is a cold start of every server (new processes, new data dir),
measured from ``Environment.start()`` until both servers answer *through*
their proxies. Run 0 uses an empty state dir, so it also builds the cached
PostgreSQL template (what a fresh machine pays once); runs 1..N reuse it.

    python benchmarks/environment_bench.py [--runs 5] [--no-template] [--json]

Target: median <= 3 s (testcontainers' usual cold start with cached images
is 5-10 s).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from resilience.backends import Environment, EnvironmentConfig
from resilience.backends.local import LocalBackend
from resilience.backends.state import fast_temp_root

TARGET_S = 3.0


def one_start(config: EnvironmentConfig) -> tuple[float, dict[str, float]]:
    backend = LocalBackend(config)
    env = Environment("local", config=config, backend_impl=backend)
    started = time.perf_counter()
    env.start()
    elapsed = time.perf_counter() - started
    try:
        return elapsed, dict(backend.timings.phases_s)
    finally:
        env.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs (default 5)")
    parser.add_argument("--no-template", action="store_true", help="initdb on every start")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="resilience-bench-", dir=fast_temp_root()))
    state.chmod(0o711)
    try:
        config = EnvironmentConfig(state_dir=state, pg_template_cache=not args.no_template)
        first_s, _ = one_start(config)
        runs = [one_start(config) for _ in range(args.runs)]
    finally:
        shutil.rmtree(state, ignore_errors=True)

    totals = [t for t, _ in runs]
    phases = {k: statistics.median(p[k] for _, p in runs) for k in runs[0][1]}
    median_s = statistics.median(totals)
    result = {
        "benchmark": "environment_time_to_ready",
        "template_cache": not args.no_template,
        "first_start_s": round(first_s, 3),
        "runs_s": [round(t, 3) for t in totals],
        "median_s": round(median_s, 3),
        "phases_median_s": {k: round(v, 3) for k, v in phases.items()},
        "target_s": TARGET_S,
        "meets_target": median_s <= TARGET_S,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print("local environment: time to ready (PostgreSQL + Redis + 2 proxies)")
        print(f"  first start (builds the PostgreSQL template): {first_s:.3f} s")
        print(f"  runs:   {', '.join(f'{t:.3f}' for t in totals)} s")
        print(f"  median: {median_s:.3f} s  (target <= {TARGET_S:.1f} s: "
              f"{'met' if median_s <= TARGET_S else 'MISSED'})")  # fmt: skip
        for key, value in phases.items():
            print(f"    {key:<18} {value:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
