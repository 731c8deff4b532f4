"""The HTTP target's client against aiohttp and httpx, measured in the same run.

Each client sends the same number of GETs, ``concurrency`` at a time, on
keep-alive connections, to one trivial server answering ``ok`` at once (the
uvloop + httptools server of ``http_workload_bench.py``, in its own process
on core 1); the clients take turns in this process, on uvloop, pinned to
core 0, three rounds in rotating order. Printed: requests per second of each
(best of 3) and each one's ratio to ours. Run: ``python
benchmarks/http_client_choice.py [requests] [concurrency]``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
import uvloop
from http_workload_bench import CLIENT_CORE, SERVER, SERVER_CORE

from resilience.backends.readiness import free_port
from resilience.targets.http.client import HttpClient


async def _drive(send: Callable[[], Awaitable[None]], n: int, concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            await send()

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return n / (time.perf_counter() - t0)


async def _ours(url: str, n: int, concurrency: int) -> float:
    client = HttpClient(url, limit=concurrency)

    async def send() -> None:
        await client.request("GET", "/x", timeout_s=10)

    try:
        return await _drive(send, n, concurrency)
    finally:
        await client.aclose()


async def _aiohttp(url: str, n: int, concurrency: int) -> float:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send() -> None:
            async with session.get(url + "/x") as response:
                await response.read()

        return await _drive(send, n, concurrency)


async def _httpx(url: str, n: int, concurrency: int) -> float:
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:

        async def send() -> None:
            (await client.get(url + "/x")).read()

        return await _drive(send, n, concurrency)


CLIENTS = {"ours": _ours, "aiohttp": _aiohttp, "httpx": _httpx}


async def main(url: str, n: int, concurrency: int) -> None:
    results: dict[str, list[float]] = {name: [] for name in CLIENTS}
    names = list(CLIENTS)
    for round_ in range(3):
        for name in names[round_:] + names[:round_]:
            count = n if name != "httpx" else max(n // 10, 100)  # ~30x slower
            results[name].append(await CLIENTS[name](url, count, concurrency))
    best = {name: max(rates) for name, rates in results.items()}
    for name, rate in best.items():
        print(f"{name:8s} {rate:8.0f} req/s (best of 3)  {rate / best['ours']:.2f}x ours")


if __name__ == "__main__":
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    os.sched_setaffinity(0, {CLIENT_CORE})
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)],
        preexec_fn=lambda: os.sched_setaffinity(0, {SERVER_CORE}),
    )
    try:
        time.sleep(1.0)
        uvloop.run(main(f"http://127.0.0.1:{port}", requests, concurrency))
    finally:
        server.terminate()
        server.wait(10)
