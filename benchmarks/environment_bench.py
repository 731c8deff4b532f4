"""Time to ready of the local environment: PostgreSQL + Redis + proxy server + two proxies.

Each run is a cold start of every server (new processes, new data dir),
measured from ``Environment.start()`` until both servers answer *through*
their proxies. Run 0 uses an empty state dir, so it also builds the cached
PostgreSQL template (what a fresh machine pays once); runs 1..N reuse it.

    python benchmarks/environment_bench.py [--runs 5] [--no-template] [--json] [--no-docker]

Target: median <= 3 s (testcontainers' usual cold start with cached images
is 5-10 s).

Where a Docker engine answers with the backend's images (``DOCKER_HOST``;
``.ci/docker-engine start`` and ``resilience images build``), the docker
backend is measured in the same run, interleaved with the local one: its
*cold* start is the first in this process (Docker SDK and testcontainers
imported, reaper spawned, images first touched), *warm* the median of the
later ones; printed as a ratio to local's. Goal: docker <= 3 s warm.
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


def docker_start(config: EnvironmentConfig) -> float:
    env = Environment("docker", config=config)
    started = time.perf_counter()
    env.start()
    elapsed = time.perf_counter() - started
    env.stop()
    return elapsed


def docker_available(config: EnvironmentConfig) -> bool:
    from resilience.backends.docker import docker_engine_answers, docker_image_present, images_of

    return docker_engine_answers() and all(
        docker_image_present(image) for image in images_of(config).values()
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs (default 5)")
    parser.add_argument("--no-template", action="store_true", help="initdb on every start")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-docker", action="store_true", help="skip the docker backend")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="resilience-bench-", dir=fast_temp_root()))
    state.chmod(0o711)
    try:
        config = EnvironmentConfig(state_dir=state, pg_template_cache=not args.no_template)
        with_docker = not args.no_docker and docker_available(config)
        first_s, _ = one_start(config)
        docker_cold_s = docker_start(config) if with_docker else None
        runs, docker_runs = [], []
        for _ in range(args.runs):  # interleaved: both see the same machine load
            runs.append(one_start(config))
            if with_docker:
                docker_runs.append(docker_start(config))
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
    if docker_runs:
        docker_warm_s = statistics.median(docker_runs)
        result["docker"] = {
            "cold_s": round(docker_cold_s or 0.0, 3),
            "runs_s": [round(t, 3) for t in docker_runs],
            "warm_median_s": round(docker_warm_s, 3),
            "warm_ratio_to_local": round(docker_warm_s / median_s, 2),
            "meets_target": docker_warm_s <= TARGET_S,
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
        if docker_runs:
            docker = result["docker"]
            assert isinstance(docker, dict)
            print("docker environment (host-network containers, same run, interleaved)")
            print(f"  cold (first in this process): {docker['cold_s']:.3f} s")
            print(f"  runs:   {', '.join(f'{t:.3f}' for t in docker_runs)} s")
            print(f"  warm median: {docker['warm_median_s']:.3f} s = "
                  f"{docker['warm_ratio_to_local']:.2f}x local's  (goal <= {TARGET_S:.1f} s: "
                  f"{'met' if docker['meets_target'] else 'MISSED'})")  # fmt: skip
        elif not args.no_docker:
            print("docker: not measured (no engine with the backend's images answers)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
