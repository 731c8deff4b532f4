"""Sustainable throughput of the reference service under Locust, and a PostgreSQL outage.

Three measurements on one local environment (loopback; Locust and the service
share the machine, so the figures are for *this* machine):

* cache path: 100 known slugs (all fit the in-memory cache), lookups only, no
  think time; user counts step up until p95 of ``/services/[slug]`` reaches
  50 ms. Sustainable throughput = the best lookups/s seen with p95 < 50 ms.
* DB path: the same with the in-memory cache cut to one entry and Redis off,
  over 1000 slugs drawn uniformly, so nearly every lookup queries PostgreSQL.
* outage: the realistic wizard mix (Zipf over 1000 slugs, 3 % unknown, jobs)
  at a steady user count, with PostgreSQL disabled for the middle third;
  reports the lookup failure ratio seen by clients and the service's own
  success/fallback rates, against the same run without the outage.

Each step runs ``--repeat`` times (default 2) on a fresh service and the try
with the most lookups/s counts: on a shared machine a slower try measures the
neighbours. The 1-minute load average before each measured run is recorded.

    .venv/bin/python benchmarks/load_bench.py [--quick] [--service-workers 1,2] [--out DIR]

Prints Markdown tables (copied into docs/load.md) and writes ``load_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from resilience.backends.readiness import free_port  # noqa: E402
from resilience.loadrun import (  # noqa: E402  (after the path fix)
    find_locustfile,
    locust_command,
    running,
    serve_command,
    wait_until_up,
)

P95_LIMIT_MS = 50.0


def locust_run(
    url: str,
    report_dir: Path,
    *,
    users: int,
    duration_s: float,
    catalogue_size: int,
    options: Sequence[str] = (),
    profile: Path | None = None,
    toxiproxy_url: str | None = None,
    processes: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """One headless run; returns the gates.json summary."""
    report_dir.mkdir(parents=True, exist_ok=True)
    command = locust_command(
        locustfile=find_locustfile(ROOT / "loadtests" / "locustfile.py"),
        host_url=url,
        profile=profile,
        report_dir=report_dir,
        toxiproxy_url=toxiproxy_url,
        processes=processes,
        extra=[
            "--only-summary",
            "--catalogue-size", str(catalogue_size),
            "--shape", "steady",
            "--shape-params", f"users={users},spawn_rate={max(users, 1)},duration={duration_s}s",
            "--gate", "http.all.requests > 0",
            "--seed", str(seed),
            *options,
        ],
    )  # fmt: skip
    subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 120, check=False)
    summary: dict[str, Any] = json.loads((report_dir / "gates.json").read_text())
    return summary


def figures(summary: dict[str, Any]) -> dict[str, Any]:
    lookup = summary["endpoints"].get("lookup", {})
    window = summary["window_s"] or 1.0
    stats = summary.get("service_stats") or {}
    jobs = summary["endpoints"].get("job_post", {})
    return {
        "rps": round(summary["requests"] / window, 1),
        "job_failures": jobs.get("failures"),
        "job_p95_ms": jobs.get("p95_ms"),
        "lookup_rps": round((lookup.get("requests") or 0) / window, 1),
        "p50_ms": lookup.get("p50_ms"),
        "p95_ms": lookup.get("p95_ms"),
        "p99_ms": lookup.get("p99_ms"),
        "failures": summary["failures"],
        "lookup_failure_ratio": (
            round((lookup.get("failures") or 0) / lookup["requests"], 4)
            if lookup.get("requests")
            else None
        ),
        "hit_rate": stats.get("hit_rate"),
        "success_rate": stats.get("success_rate"),
        "fallback_rate": stats.get("fallback_rate"),
        "db_mean_ms": (stats.get("latency_us", {}).get("db", {}).get("mean", 0) or 0) / 1000,
        "breaker_opens": (stats.get("breaker") or {}).get("opens"),
    }


class Stack:
    """One environment; services started per measurement."""

    def __init__(self, env: Any, out: Path) -> None:
        self.env = env
        self.out = out
        self.runs = 0

    def service(self, *, workers: int, overrides: dict[str, Any]) -> Any:
        """A fresh service on a flushed Redis, so no run inherits another's cache."""
        import redis

        client = redis.Redis.from_url(self.env.urls.redis_direct)
        client.flushall()
        client.close()
        self.runs += 1
        port = free_port()
        command = serve_command(
            host="127.0.0.1",
            port=port,
            workers=workers,
            postgres_url=self.env.urls.postgres,
            redis_url=self.env.urls.redis,
            overrides=overrides,
        )
        return port, running(command)


def step_search(
    stack: Stack,
    name: str,
    *,
    workers: int,
    overrides: dict[str, Any],
    steps: Sequence[int],
    duration_s: float,
    catalogue_size: int,
    options: Sequence[str],
    processes: int,
    repeat: int = 1,
) -> list[dict[str, Any]]:
    rows = []
    for users in steps:
        tries = []
        for attempt in range(repeat):
            port, ctx = stack.service(workers=workers, overrides=overrides)
            url = f"http://127.0.0.1:{port}"
            with ctx as process:
                wait_until_up(f"{url}/health", timeout_s=30, process=process)
                # warm-up run (fills caches, pools), then the measured run
                locust_run(url, stack.out / f"{name}-w{workers}-u{users}-{attempt}-warm",
                           users=users, duration_s=3, catalogue_size=catalogue_size,
                           options=options, processes=processes,
                           seed=stack.runs * 2)  # fmt: skip
                load_before = os.getloadavg()[0]
                summary = locust_run(
                    url, stack.out / f"{name}-w{workers}-u{users}-{attempt}", users=users,
                    duration_s=duration_s, catalogue_size=catalogue_size, options=options,
                    processes=processes, seed=stack.runs * 2 + 1,
                )  # fmt: skip
            tries.append({**figures(summary), "load_avg_1m": round(load_before, 2)})
        # best of the tries: the machine is shared, so slower tries measure the neighbours
        chosen = max(tries, key=lambda t: t["lookup_rps"])
        row = {"path": name, "service_workers": workers, "users": users, **chosen}
        print(json.dumps(row), flush=True)
        rows.append(row)
        if (row["p95_ms"] or 0) >= P95_LIMIT_MS * 2:
            break
    return rows


def outage_runs(
    stack: Stack, *, workers: int, users: int, duration_s: float, processes: int
) -> list[dict[str, Any]]:
    rows = []
    third = duration_s / 3
    for label, faults in (
        ("no outage", []),
        (
            f"PostgreSQL down {third:g} s",
            [{"name": "pg-down", "at": f"{third}s", "duration": f"{third}s",
              "target": "postgres", "action": "disable"}],
        ),
    ):  # fmt: skip
        profile = stack.out / f"outage-{len(faults)}.yaml"
        profile.write_text(
            json.dumps(
                {
                    "name": "bench-outage",
                    "catalogue": {"seed": 42, "size": 1000},
                    "shape": {"kind": "steady", "users": users, "duration": f"{duration_s}s"},
                    "workload": {"wait_s": [0.01, 0.05]},
                    "faults": faults,
                    "gates": ["http.all.requests > 0"],
                }
            )
        )
        port, ctx = stack.service(workers=workers, overrides={})
        url = f"http://127.0.0.1:{port}"
        with ctx as process:
            wait_until_up(f"{url}/health", timeout_s=30, process=process)
            summary = locust_run(
                url, stack.out / f"outage-{len(faults)}", users=users, duration_s=duration_s,
                catalogue_size=1000, profile=profile, processes=processes,
                toxiproxy_url=stack.env.urls.toxiproxy_api,
                options=["--shape", "steady"], seed=stack.runs,
            )  # fmt: skip
        row = {"run": label, "service_workers": workers, "users": users, **figures(summary)}
        row["faults_applied"] = [f["op"] for f in summary.get("faults", []) if f["ok"]]
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def best(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    ok = [r for r in rows if r["p95_ms"] is not None and r["p95_ms"] < P95_LIMIT_MS]
    return max(ok, key=lambda r: r["lookup_rps"]) if ok else None


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Machine: {result['machine']}",
        "",
        "| path | service workers | users | lookups/s | p50 ms | p95 ms | p99 ms | failures "
        "| load avg |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["steps"]:
        lines.append(
            f"| {r['path']} | {r['service_workers']} | {r['users']} | {r['lookup_rps']} | "
            f"{r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['failures']} | "
            f"{r['load_avg_1m']} |"
        )
    lines += ["", "| path | service workers | sustainable lookups/s (p95 < 50 ms) | at users |",
              "|---|---|---|---|"]  # fmt: skip
    for key, r in result["sustainable"].items():
        lines.append(
            f"| {key} | {r['service_workers'] if r else '-'} | {r['lookup_rps'] if r else '-'} | "
            f"{r['users'] if r else '-'} |"
        )
    lines += [
        "",
        "| run | users | requests/s | lookups/s | lookup p95 ms | lookup failure ratio "
        "| success rate | fallback rate | breaker opens | job failures | job p95 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["outage"]:
        lines.append(
            f"| {r['run']} | {r['users']} | {r['rps']} | {r['lookup_rps']} | {r['p95_ms']} | "
            f"{r['lookup_failure_ratio']} | {r['success_rate']} | {r['fallback_rate']} | "
            f"{r['breaker_opens']} | {r['job_failures']} | {r['job_p95_ms']} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs, fewer steps")
    parser.add_argument("--service-workers", default="1", help="comma list, e.g. 1,2")
    parser.add_argument("--processes", type=int, default=0, help="Locust worker processes")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=2, help="tries per step; the best counts")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="load-bench-"))
    duration = 5.0 if args.quick else 10.0
    steps = [5, 20, 50] if args.quick else [5, 10, 20, 30, 40, 60]

    from resilience.backends.environment import Environment
    from resilience.db.catalogue import seed_catalogue
    from resilience.db.schema import apply_schema

    lookups_only = ["--job-ratio", "0", "--unknown-ratio", "0", "--invalid-ratio", "0",
                    "--wait-s", "0,0"]  # fmt: skip
    result: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "steps": [],
        "sustainable": {},
        "outage": [],
    }
    with Environment("local") as env:
        apply_schema(env.urls.postgres_direct)
        seed_catalogue(env.urls.postgres_direct, seed=42, size=1000)
        stack = Stack(env, out)
        for workers in (int(w) for w in args.service_workers.split(",")):
            cache = step_search(
                stack, "cache", workers=workers, overrides={}, steps=steps,
                duration_s=duration, catalogue_size=100, options=lookups_only,
                processes=args.processes, repeat=args.repeat,
            )  # fmt: skip
            db = step_search(
                stack, "db", workers=workers,
                overrides={"cache.max_size": 1, "redis.enabled": "false"}, steps=steps,
                duration_s=duration, catalogue_size=1000,
                options=[*lookups_only, "--zipf-s", "0"], processes=args.processes,
                repeat=args.repeat,
            )  # fmt: skip
            result["steps"] += cache + db
            result["sustainable"][f"cache, {workers} worker(s)"] = best(cache)
            result["sustainable"][f"db, {workers} worker(s)"] = best(db)
        result["outage"] = outage_runs(
            stack, workers=1, users=20, duration_s=15.0 if args.quick else 30.0,
            processes=args.processes,
        )  # fmt: skip
    (out / "load_bench.json").write_text(json.dumps(result, indent=2))
    print()
    print(markdown(result))
    print(f"\nraw results in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
