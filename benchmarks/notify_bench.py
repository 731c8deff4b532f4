"""Notification latency under load, and the lookup p99 with 100 idle subscribers vs none.

Starts a local Environment (PostgreSQL, Redis), the reference service as
``resilience serve`` (its own process, uvicorn with wsproto, the harness's
control endpoint on) and, in this process, a closed-loop lookup load
(``--concurrency`` clients, the default load of this benchmark). Every figure
is compared with its peer in the same run; the two arms of each comparison
alternate within every round (A B, then B A, …) so drift and the other
tenants of the machine hit both alike.

1. lookup p99 over HTTP with 100 connected ``/ws/events`` subscribers
   (reading, idle: nothing is published while lookups succeed) vs none. Each
   round gives one ratio p99(100) / p99(none) from ``--round-s`` of load per
   arm; reported: the median ratio over the rounds and its spread (min, max,
   interquartile range), and the ratio of the p99s over every round's samples
   pooled per arm (steadier: ~1 % of several thousand samples), and how many
   events the service published meanwhile (0 while lookups succeed: then the
   subscribers cost nothing but open sockets). Goal: within 5 %.
2. notification latency: background components are crashed in turn every
   0.2 s (each recovers after 1 s); the delay from the error event's
   ``occurred_at`` (stamped when tracked, the row commits right after, then it
   is announced) to its arrival at a WebSocket subscriber, with the lookup
   load running vs idle. p50/p99 over all rounds; the p99 needs about 100
   samples per arm (printed as n).

    python benchmarks/notify_bench.py [--rounds 6] [--round-s 4] [--concurrency 16] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import time
from typing import Any

import httpx
import websockets

from resilience.backends import Environment
from resilience.backends.readiness import free_port
from resilience.loadrun import running, serve_command, wait_until_up

CRASHABLE = ("monitor", "breaker_events", "failure_metrics", "alert_events", "analytics", "outbox")
"""Crashed in turn (not the error tracker: its own crash is reported only after its restart)."""


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


@contextlib.asynccontextmanager
async def subscribers(address: str, n: int) -> Any:
    """``n`` connected subscribers, each reading its socket, for the block."""
    sockets = [await websockets.connect(f"ws://{address}/ws/events") for _ in range(n)]

    async def drain(ws: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _ in ws:
                pass

    tasks = [asyncio.create_task(drain(ws)) for ws in sockets]
    await asyncio.sleep(0.5)  # every handshake settled before measuring
    try:
        yield sockets
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)


async def crash_latencies(address: str, seconds: float) -> list[float]:
    """Crash a component every 0.2 s (in turn); error event time → arrival (s)."""
    latencies: list[float] = []
    async with (
        websockets.connect(f"ws://{address}/ws/events", max_size=None) as ws,
        httpx.AsyncClient(base_url=f"http://{address}") as client,
    ):

        async def listen() -> None:
            async for raw in ws:
                event = json.loads(raw)
                if event.get("type") == "error" and event.get("category") == "ComponentCrash":
                    latencies.append(time.time() - float(event["occurred_at"]))

        listener = asyncio.create_task(listen())
        deadline = time.perf_counter() + seconds
        turn = 0
        while time.perf_counter() < deadline:
            # 404 while that component is still recovering from its last crash: skipped
            await client.post(f"/harness/crash/{CRASHABLE[turn % len(CRASHABLE)]}")
            turn += 1
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)  # the last ones arrive
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    return latencies


async def measure(args: argparse.Namespace, address: str, slugs: list[str]) -> dict[str, Any]:
    await load(address, slugs, args.concurrency, 2.0)  # warm caches and pools
    ratios: list[float] = []
    p99: dict[str, list[float]] = {"none": [], "100 idle": []}
    pooled: dict[str, list[float]] = {"none": [], "100 idle": []}
    notify: dict[str, list[float]] = {"idle": [], "under load": []}

    published = {"none": 0, "100 idle": 0}

    async def events_published() -> int:
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as client:
            body = (await client.get("/health")).json()
        return int(body["components"]["notifications"]["published"])

    async def lookup_arm(arm: str) -> float:
        before = await events_published()
        if arm == "none":
            latencies = await load(address, slugs, args.concurrency, args.round_s)
        else:
            async with subscribers(address, 100):
                latencies = await load(address, slugs, args.concurrency, args.round_s)
        pooled[arm] += latencies
        published[arm] += await events_published() - before
        value = quantile(latencies, 0.99)
        p99[arm].append(value)
        return value

    async def notify_arm(arm: str) -> None:
        if arm == "idle":
            notify[arm] += await crash_latencies(address, args.round_s)
            return
        loaded = asyncio.create_task(load(address, slugs, args.concurrency, args.round_s + 2))
        notify[arm] += await crash_latencies(address, args.round_s)
        await loaded

    for r in range(args.rounds):
        order = ("none", "100 idle") if r % 2 == 0 else ("100 idle", "none")
        got = {arm: await lookup_arm(arm) for arm in order}
        ratios.append(got["100 idle"] / got["none"])
        for arm in ("idle", "under load") if r % 2 == 0 else ("under load", "idle"):
            await notify_arm(arm)
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else [ratios[0]] * 3
    out: dict[str, Any] = {
        "lookup_p99_ms": {k: [round(v * 1e3, 2) for v in vs] for k, vs in p99.items()},
        "lookups_per_arm": {k: len(vs) for k, vs in pooled.items()},
        "events_published_per_arm": published,
        "pooled_p99_ratio": round(
            quantile(pooled["100 idle"], 0.99) / quantile(pooled["none"], 0.99), 3
        ),
        "ratio_100_subscribers_vs_none": {
            "median": round(statistics.median(ratios), 3),
            "min": round(min(ratios), 3),
            "max": round(max(ratios), 3),
            "iqr": [round(quartiles[0], 3), round(quartiles[2], 3)],
            "per_round": [round(x, 3) for x in ratios],
        },
        "notify_latency_ms": {
            k: {
                "n": len(vs),
                "p50": round(quantile(vs, 0.5) * 1e3, 2) if vs else None,
                "p99": round(quantile(vs, 0.99) * 1e3, 2) if vs else None,
            }
            for k, vs in notify.items()
        },
    }
    idle, loaded = (out["notify_latency_ms"][k]["p50"] for k in ("idle", "under load"))
    out["notify_p50_ratio_load_vs_idle"] = round(loaded / idle, 3) if idle and loaded else None
    return out


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from resilience.db.catalogue import seed_catalogue
    from resilience.db.schema import apply_schema

    load_before = os.getloadavg()
    with Environment("local") as env:
        urls = env.urls
        apply_schema(urls.postgres_direct)
        slugs = [e.slug for e in seed_catalogue(urls.postgres_direct, size=300)]
        port = free_port()
        command = serve_command(
            host="127.0.0.1", port=port, workers=1,
            postgres_url=urls.postgres, redis_url=urls.redis,
            overrides={"stats.shared": "false"},
        )  # fmt: skip
        with running(command, env={"RESILIENCE_HARNESS_CONTROL": "1"}) as process:
            await asyncio.to_thread(
                wait_until_up, f"http://127.0.0.1:{port}/health", timeout_s=30, process=process
            )
            out = await measure(args, f"127.0.0.1:{port}", slugs)
    out["load_average"] = {
        "before": [round(x, 2) for x in load_before],
        "after": [round(x, 2) for x in os.getloadavg()],
    }
    return out


def _print(result: dict[str, Any]) -> None:
    ratio = result["ratio_100_subscribers_vs_none"]
    print(f"lookup p99 (ms) per round: {result['lookup_p99_ms']}")
    print(f"lookups per arm: {result['lookups_per_arm']}")
    print(f"events published during the lookup arms: {result['events_published_per_arm']}")
    print(f"lookup p99 over all rounds' samples, 100 / none: {result['pooled_p99_ratio']}x")
    print(
        f"lookup p99, 100 idle subscribers / none: median {ratio['median']}x over "
        f"{len(ratio['per_round'])} rounds (min {ratio['min']}, max {ratio['max']}, "
        f"IQR {ratio['iqr'][0]}-{ratio['iqr'][1]}; goal: median <= 1.05)"
    )
    for k, v in result["notify_latency_ms"].items():
        print(f"notification latency {k}: p50 {v['p50']} ms, p99 {v['p99']} ms (n={v['n']})")
    print(f"notification p50 under load / idle: {result['notify_p50_ratio_load_vs_idle']}x")
    print(f"load average (1/5/15 min) before {result['load_average']['before']}, "
          f"after {result['load_average']['after']}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--round-s", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    result = asyncio.run(main(arguments))
    if arguments.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result)
