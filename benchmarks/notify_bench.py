"""Notification latency under load, and the lookup p99 with 100 idle subscribers vs none.

Starts a local Environment (PostgreSQL, Redis), the reference service as
``resilience serve`` (its own process, uvicorn with wsproto, the harness's
control endpoint on) and, in this process, a closed-loop lookup load
(``--concurrency`` clients). Two measurements, each against its peer in the
same run, rounds interleaved (A B A B …) so drift hits both alike:

1. lookup p99 over HTTP with 100 connected, reading ``/ws/events``
   subscribers vs none (goal: within 5 %);
2. notification latency — a background component is crashed every 1.2 s;
   the time from the error event's ``occurred_at`` (stamped when tracked, the
   row commits right after) to its arrival at a WebSocket subscriber — with
   the lookup load running vs idle.

    python benchmarks/notify_bench.py [--rounds 3] [--round-s 5] [--concurrency 16] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx
import websockets

from resilience.backends import Environment


def quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def load(address: str, slugs: list[str], concurrency: int, seconds: float) -> list[float]:
    """Closed-loop lookups for ``seconds``; returns latencies (s)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://{address}", limits=limits) as client:

        async def worker(k: int) -> None:
            i = k
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.get(f"/services/{slugs[i % len(slugs)]}")
                latencies.append(time.perf_counter() - started)
                response.raise_for_status()
                i += concurrency

        await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return latencies


async def subscribers(address: str, n: int) -> tuple[list[Any], list[asyncio.Task[None]]]:
    sockets = [await websockets.connect(f"ws://{address}/ws/events") for _ in range(n)]

    async def drain(ws: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _ in ws:
                pass

    return sockets, [asyncio.create_task(drain(ws)) for ws in sockets]


async def crash_latencies(address: str, seconds: float) -> list[float]:
    """Crash a component every 1.2 s; error event time → arrival at a subscriber (s)."""
    latencies: list[float] = []
    async with (
        websockets.connect(f"ws://{address}/ws/events") as ws,
        httpx.AsyncClient(base_url=f"http://{address}") as client,
    ):

        async def listen() -> None:
            async for raw in ws:
                event = json.loads(raw)
                if event.get("type") == "error" and event.get("component") == "alert_events":
                    latencies.append(time.time() - float(event["occurred_at"]))

        listener = asyncio.create_task(listen())
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            await client.post("/harness/crash/alert_events")
            await asyncio.sleep(1.2)
        await asyncio.sleep(0.5)
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    return latencies


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _ready(address: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{address}") as client:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/health")).status_code < 600:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("the service did not start")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from resilience.db.catalogue import seed_catalogue
    from resilience.db.schema import apply_schema

    with Environment("local") as env:
        urls = env.urls
        apply_schema(urls.postgres_direct)
        slugs = [e.slug for e in seed_catalogue(urls.postgres_direct, size=300)]
        port = _free_port()
        address = f"127.0.0.1:{port}"
        process = subprocess.Popen(  # noqa: ASYNC220 (started once, before any load)
            [
                sys.executable, "-c", "from resilience.cli import main; main()", "serve",
                "--postgres-url", urls.postgres, "--redis-url", urls.redis,
                "--port", str(port), "--set", "stats.shared=false",
            ],
            env={**os.environ, "RESILIENCE_HARNESS_CONTROL": "1"},
            start_new_session=True,  # its own group: uvicorn goes with it
        )  # fmt: skip
        try:
            await _ready(address)
            await load(address, slugs, args.concurrency, 1.0)  # warm caches and pools
            p99: dict[str, list[float]] = {"none": [], "100 idle": []}
            notify: dict[str, list[float]] = {"idle": [], "under load": []}
            for _ in range(args.rounds):
                p99["none"].append(
                    quantile(await load(address, slugs, args.concurrency, args.round_s), 0.99)
                )
                sockets, tasks = await subscribers(address, 100)
                p99["100 idle"].append(
                    quantile(await load(address, slugs, args.concurrency, args.round_s), 0.99)
                )
                for ws in sockets:
                    await ws.close()
                await asyncio.gather(*tasks, return_exceptions=True)
                notify["idle"] += await crash_latencies(address, args.round_s)
                loaded = asyncio.create_task(
                    load(address, slugs, args.concurrency, args.round_s + 1)
                )
                notify["under load"] += await crash_latencies(address, args.round_s)
                await loaded
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
    none = statistics.median(p99["none"])
    idle = statistics.median(p99["100 idle"])
    out: dict[str, Any] = {
        "lookup_p99_ms": {k: [round(v * 1e3, 2) for v in vs] for k, vs in p99.items()},
        "lookup_p99_ratio_100_subscribers_vs_none": round(idle / none, 3),
        "notify_latency_ms": {
            k: {
                "n": len(vs),
                "p50": round(quantile(vs, 0.5) * 1e3, 2),
                "p99": round(quantile(vs, 0.99) * 1e3, 2),
            }
            for k, vs in notify.items()
        },
    }
    out["notify_p50_ratio_load_vs_idle"] = round(
        out["notify_latency_ms"]["under load"]["p50"] / out["notify_latency_ms"]["idle"]["p50"], 3
    )
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--round-s", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    result = asyncio.run(main(arguments))
    if arguments.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"lookup p99 (ms) per round: {result['lookup_p99_ms']}")
        print(
            "lookup p99 with 100 idle subscribers / none: "
            f"{result['lookup_p99_ratio_100_subscribers_vs_none']}x (goal <= 1.05)"
        )
        for k, v in result["notify_latency_ms"].items():
            print(f"notification latency {k}: p50 {v['p50']} ms, p99 {v['p99']} ms (n={v['n']})")
        print(f"notification p50 under load / idle: {result['notify_p50_ratio_load_vs_idle']}x")
