"""The HTTP workload generator against Locust's FastHttpUser, same server, same run.

A trivial aiohttp server answering ``ok`` runs in its own process pinned to
one core; the clients are pinned to another. For each offered rate of the
ladder, each client runs 5 s:

* ours: ``resilience run`` machinery (``run_scenario``) with an HTTP target
  given by ``url`` and no dependencies, uniform arrivals; the figure is the
  share of late starts (later than 1 ms) and the latency p50/p99 measured
  at the client (the overhead over a server that answers at once);
* Locust: ``locust --headless`` with 200 ``FastHttpUser`` users at
  ``constant_throughput`` summing to the rate (one process); the figure is
  the achieved share of the offered rate and its p50/p99.

"Sustained" is the highest rate with < 1 % late starts (ours) or >= 99 % of
the offered rate achieved (Locust, which has no notion of a late start).
Run: ``python benchmarks/http_workload_bench.py [rate ...]``.
"""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from resilience.scenario.http_stack import free_port
from resilience.scenario.loader import parse_scenario
from resilience.scenario.metrics import metrics_for
from resilience.scenario.runner import run_scenario

SERVER = """
import sys
from aiohttp import web
async def ok(request):
    return web.Response(text="ok")
app = web.Application()
app.router.add_get("/", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""

LOCUSTFILE = """
from locust import FastHttpUser, constant_throughput, task
class User(FastHttpUser):
    wait_time = constant_throughput({per_user})
    @task
    def root(self):
        self.client.get("/")
"""

USERS = 200
SECONDS = 5


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


async def ours(url: str, rate: int, out: Path) -> tuple[float, float, float, float]:
    scenario = parse_scenario(
        textwrap.dedent(
            f"""\
            name: bench
            target: {{url: "{url}", ready: /}}
            dependencies: {{}}
            workload:
              duration: {SECONDS}s
              rate: {rate}
              arrivals: uniform
              late_tolerance: 1ms
              concurrency: 512
              keys: {{values: [a]}}
              requests: [{{name: root, path: /}}]
            steady_state: {{required: false}}
            gates: [ops >= 1]
            """
        )
    )
    result = await run_scenario(scenario, history_path=out / f"ours-{rate}.jsonl")
    assert result.history is not None, result.error
    m = metrics_for(result.history, [(0.0, float(SECONDS))])
    lat = list(m["http"])  # type: ignore[arg-type]
    achieved = float(m["ops"]) / SECONDS  # type: ignore[arg-type]
    return float(m["late_rate"] or 0.0), achieved, _pct(lat, 0.5), _pct(lat, 0.99)  # type: ignore[arg-type]


def locust(url: str, rate: int, out: Path) -> tuple[float, float, float]:
    file = out / "locustfile.py"
    file.write_text(LOCUSTFILE.format(per_user=rate / USERS))
    prefix = out / f"locust-{rate}"
    subprocess.run(
        [
            str(Path(sys.executable).with_name("locust")),
            "-f",
            str(file),
            "--headless",
            "-u",
            str(USERS),
            "-r",
            str(USERS),
            "-t",
            f"{SECONDS + 1}s",
            "--host",
            url,
            "--csv",
            str(prefix),
            "--only-summary",
            "--loglevel",
            "ERROR",
        ],
        capture_output=True,
        timeout=120,
        check=False,
        preexec_fn=lambda: os.sched_setaffinity(0, {0}),
    )
    with open(f"{prefix}_stats.csv") as fh:
        row = next(r for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
    return float(row["Requests/s"]), float(row["50%"]) / 1000, float(row["99%"]) / 1000


def main() -> None:
    rates = [int(r) for r in sys.argv[1:]] or [1000, 2000, 3000, 4000, 6000]
    os.sched_setaffinity(0, {0})
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)],
        preexec_fn=lambda: os.sched_setaffinity(0, {1}),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        time.sleep(1.5)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            best_ours = best_locust = 0
            print(
                f"{'rate':>6} | {'ours late':>9} {'p50':>7} {'p99':>7} | "
                f"{'locust got':>10} {'p50':>7} {'p99':>7}"
            )
            for rate in rates:
                late, _achieved, p50, p99 = asyncio.run(ours(url, rate, out))
                got, lp50, lp99 = locust(url, rate, out)
                if late < 0.01:
                    best_ours = rate
                if got >= 0.99 * rate:
                    best_locust = rate
                print(
                    f"{rate:>6} | {late:>9.2%} {p50 * 1e3:>5.2f}ms {p99 * 1e3:>5.2f}ms | "
                    f"{got / rate:>10.1%} {lp50 * 1e3:>5.1f}ms {lp99 * 1e3:>5.1f}ms"
                )
            ratio = f"{best_ours / best_locust:.2f}x" if best_locust else "n/a (Locust: none)"
            print(f"sustained: ours {best_ours}/s, Locust {best_locust}/s, ratio {ratio}")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
