"""The HTTP workload generator against Locust's FastHttpUser, same server, same run.

A trivial server answering ``ok`` at once (an asyncio protocol on uvloop,
requests framed by httptools, keep-alive: a few µs a request, so that the
server is never what limits a client) runs in its own process pinned to
core 1; each client is pinned to core 0 (one core, one process).
The offered rate steps up a ladder; at each rate each client runs
``--seconds``:

* ours: the ``resilience run`` machinery (``run_scenario`` on the loop
  ``resilience run`` uses, uvloop when installed) with an HTTP target given
  by ``url``, no dependencies, uniform arrivals. It holds a rate when fewer
  than 1 % of the requests start late (later than ``--late``, default the
  scenarios' own ``late_tolerance`` of 5 ms) and all were sent;
* Locust: ``locust --headless`` with 200 ``FastHttpUser`` users at
  ``constant_throughput`` summing to the rate (one process). It holds a rate
  when it achieves >= 99 % of it (Locust has no notion of a late start).

"Sustained" is the highest rate of the ladder a client held. Printed per
rate: late share and lateness p99 (ours), achieved share (Locust), the
latency p50/p99 of each — against a server that answers at once this is the
client-side overhead (plus loopback, the server's own few tens of µs and the
machine's scheduling: a bare blocking socket client at the first rate, just
before ours, measures that floor, and ours minus it is printed) —
and the CPU time each client spent per request (user + system; Locust's is
sampled after its start-up; ours runs once unmeasured first, so one-time
imports do not land in the first rate). A client stops stepping after two rates in a
row it did not hold. The machine's load average is printed before and after
(a shared machine makes every figure noisier; the ratio in one run is what
to compare).

Run: ``python benchmarks/http_workload_bench.py [--seconds 5] [--late 5ms] [rate ...]``.
Default ladder: 1000 2000 3000 4000 5000 6000 7000 8000 9000 10000 12000 14000 16000
18000 20000.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from resilience import eventloop
from resilience.backends.readiness import free_port
from resilience.scenario.durations import parse_duration_s
from resilience.scenario.loader import parse_scenario
from resilience.scenario.metrics import metrics_for
from resilience.scenario.runner import run_scenario

SERVER = """
import asyncio, sys
import httptools, uvloop
OK = b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nContent-Type: text/plain\\r\\n\\r\\nok"
class Http(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)
    def data_received(self, data):
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()
    def on_message_complete(self):
        self.transport.write(OK)
async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Http, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()
uvloop.run(main())
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
CLIENT_CORE, SERVER_CORE = 0, 1


@dataclass
class Step:
    held: bool
    share: float  # ours: late share; Locust: achieved share of the offered rate
    late_p99_ms: float
    p50_ms: float
    p99_ms: float
    cpu_us: float  # CPU time per request


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def ours(url: str, rate: int, seconds: float, late_s: float, out: Path) -> Step:
    scenario = parse_scenario(
        textwrap.dedent(
            f"""\
            name: bench
            target: {{url: "{url}", ready: /}}
            dependencies: {{}}
            workload:
              duration: {seconds}s
              rate: {rate}
              arrivals: uniform
              late_tolerance: {late_s}s
              concurrency: 512
              keys: {{values: [a]}}
              requests: [{{name: root, path: /}}]
            steady_state: {{required: false}}
            gates: [ops >= 1]
            """
        )
    )
    cpu0 = _cpu_self()
    result = eventloop.run(run_scenario(scenario, history_path=out / f"ours-{rate}.jsonl"))
    cpu = _cpu_self() - cpu0
    assert result.history is not None, result.error
    m = metrics_for(result.history, [(0.0, float(seconds))])
    lat = list(m["http"])  # type: ignore[arg-type]
    ops = len(result.history.ops)
    late = [op.late_us / 1e3 for op in result.history.ops]
    late_share = float(m["late_rate"] or 0.0)  # type: ignore[arg-type]
    errors = sum(1 for op in result.history.ops if op.outcome != "ok")
    held = late_share < 0.01 and ops >= 0.99 * rate * seconds and errors == 0
    return Step(
        held,
        late_share,
        _pct(late, 0.99),
        _pct(lat, 0.5) * 1e3,
        _pct(lat, 0.99) * 1e3,
        cpu / max(ops, 1) * 1e6,
    )


def bare(url: str, rate: int, seconds: float) -> tuple[float, float]:
    """Latency p50 and p99 (ms) of a bare blocking socket client at ``rate``: the floor.

    One keep-alive connection, the request sent whole, the answer read until
    its body; paced like ours. What it measures is loopback, the server and
    the machine's scheduling alone — ours minus this is ours' own overhead.
    """
    host, port = url.removeprefix("http://").split(":")
    request = f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    latencies: list[float] = []
    with socket.create_connection((host, int(port))) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.perf_counter()
        for i in range(int(rate * seconds)):
            wait = t0 + i / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            sent = time.perf_counter()
            sock.sendall(request)
            answer = b""
            while not answer.endswith(b"\r\n\r\nok"):
                answer += sock.recv(4096)
            latencies.append(time.perf_counter() - sent)
    return _pct(latencies, 0.5) * 1e3, _pct(latencies, 0.99) * 1e3


def locust(url: str, rate: int, seconds: float, out: Path) -> Step:
    import psutil  # a Locust dependency

    file = out / "locustfile.py"
    file.write_text(LOCUSTFILE.format(per_user=rate / USERS))
    prefix = out / f"locust-{rate}"
    command = [
        str(Path(sys.executable).with_name("locust")),
        *("-f", str(file), "--headless", "-u", str(USERS), "-r", str(USERS)),
        *("-t", f"{seconds + 1:g}s", "--host", url, "--csv", str(prefix)),
        *("--only-summary", "--loglevel", "ERROR"),
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: os.sched_setaffinity(0, {CLIENT_CORE}),
    )
    try:
        watched = psutil.Process(process.pid)
        time.sleep(2.0)  # start-up and spawning done (imports take about a second)
        t0, c0 = time.monotonic(), sum(watched.cpu_times()[:2])
        time.sleep(max(0.5, seconds - 2.0))
        t1, c1 = time.monotonic(), sum(watched.cpu_times()[:2])
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    with open(f"{prefix}_stats.csv") as fh:
        row = next(r for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
    got = float(row["Requests/s"])
    failures = int(row["Failure Count"])
    cpu_us = (c1 - c0) / max(got * (t1 - t0), 1) * 1e6
    return Step(
        got >= 0.99 * rate and failures == 0,
        got / rate,
        float("nan"),
        float(row["50%"]),
        float(row["99%"]),
        cpu_us,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rates", nargs="*", type=int)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--late", default="5ms", help="late tolerance of ours (default 5ms)")
    args = parser.parse_args()
    rates = args.rates or [
        *(1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000),
        *(12000, 14000, 16000, 18000, 20000),
    ]
    late_s = float(parse_duration_s(args.late))  # type: ignore[arg-type]
    loop_name = "uvloop" if eventloop.loop_factory() is not None else "asyncio"
    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min)")
    print(f"ours: {loop_name}, late = later than {late_s * 1e3:g} ms; {args.seconds:g} s a rate")
    os.sched_setaffinity(0, {CLIENT_CORE})
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)],
        preexec_fn=lambda: os.sched_setaffinity(0, {SERVER_CORE}),
    )
    url = f"http://127.0.0.1:{port}"
    best = {"ours": 0, "locust": 0}
    misses = {"ours": 0, "locust": 0}
    floor: tuple[float, float] | None = None
    locust_most = 0.0  # the most Locust achieved at any rate (requests/s)
    first: dict[str, Step] = {}
    at_best: dict[str, Step] = {}
    try:
        time.sleep(1.5)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            ours(url, 200, 1.0, late_s, out)  # warm-up: one-time imports, not measured
            print(
                f"{'rate':>6} | {'ours late':>9} {'late99':>7} {'p50':>7} {'p99':>7} {'cpu/req':>8}"
                f" | {'locust got':>10} {'p50':>7} {'p99':>7} {'cpu/req':>8}"
            )
            for rate in rates:
                steps: dict[str, Step | None] = {"ours": None, "locust": None}
                if floor is None:  # the floor, in the same minute as ours' first rate
                    floor = bare(url, rate, args.seconds)
                if misses["ours"] < 2:
                    steps["ours"] = ours(url, rate, args.seconds, late_s, out)
                if misses["locust"] < 2:
                    steps["locust"] = locust(url, rate, args.seconds, out)
                for name, step in steps.items():
                    if step is None:
                        continue
                    first.setdefault(name, step)
                    if name == "locust":
                        locust_most = max(locust_most, step.share * rate)
                    if step.held:
                        best[name], at_best[name], misses[name] = rate, step, 0
                    else:
                        misses[name] += 1
                o, lo = steps["ours"], steps["locust"]
                left = (
                    f"{o.share:>9.2%} {o.late_p99_ms:>5.2f}ms {o.p50_ms:>5.2f}ms "
                    f"{o.p99_ms:>5.2f}ms {o.cpu_us:>6.0f}µs"
                    if o
                    else f"{'-':>9} {'':>7} {'':>7} {'':>7} {'':>8}"
                )
                right = (
                    f"{lo.share:>10.1%} {lo.p50_ms:>5.1f}ms {lo.p99_ms:>5.1f}ms {lo.cpu_us:>6.0f}µs"
                    if lo
                    else f"{'-':>10}"
                )
                print(f"{rate:>6} | {left} | {right}", flush=True)
                if misses["ours"] >= 2 and misses["locust"] >= 2:
                    break
    finally:
        server.terminate()
        server.wait(10)
    ratio = f"{best['ours'] / best['locust']:.2f}x" if best["locust"] else "n/a (Locust: none)"
    print(f"sustained: ours {best['ours']}/s, Locust {best['locust']}/s, ratio {ratio}")
    if locust_most:
        print(
            f"Locust's most achieved at any rate: {locust_most:.0f}/s; "
            f"ours' sustained / that = {best['ours'] / locust_most:.2f}x"
        )
    for name, step in (
        ("at the lowest rate", first.get("ours")),
        ("at ours' best", at_best.get("ours")),
    ):
        if step is not None:
            print(f"ours' latency {name}: p50 {step.p50_ms:.2f} ms, p99 {step.p99_ms:.2f} ms")
    if floor is not None and "ours" in first:
        o = first["ours"]
        print(
            f"a bare socket client at {rates[0]}/s (the floor, run just before ours): "
            f"p50 {floor[0]:.2f} ms, p99 {floor[1]:.2f} ms; ours' overhead "
            f"above it: p50 {o.p50_ms - floor[0]:+.2f} ms, p99 {o.p99_ms - floor[1]:+.2f} ms"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min)")


if __name__ == "__main__":
    main()
