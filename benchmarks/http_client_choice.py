"""aiohttp vs httpx as the HTTP target's client, measured in the same run.

Both clients send the same number of GETs, ``concurrency`` at a time, to one
trivial aiohttp server on 127.0.0.1 (same process, same loop); the figure is
requests per second of each and their ratio. Run: ``python
benchmarks/http_client_choice.py [requests] [concurrency]``.
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp
import httpx
from aiohttp import web


async def _server() -> tuple[web.AppRunner, int]:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/x", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


async def _drive(send: object, n: int, concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            await send()  # type: ignore[operator]

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return n / (time.perf_counter() - t0)


async def main(n: int, concurrency: int) -> None:
    runner, port = await _server()
    url = f"http://127.0.0.1:{port}/x"
    try:
        results: dict[str, list[float]] = {"aiohttp": [], "httpx": []}
        for _ in range(3):
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=concurrency)
            ) as session:

                async def a() -> None:
                    async with session.get(url) as r:
                        await r.read()

                results["aiohttp"].append(await _drive(a, n, concurrency))
            limits = httpx.Limits(max_connections=concurrency)
            async with httpx.AsyncClient(limits=limits) as client:

                async def h() -> None:
                    (await client.get(url)).read()

                results["httpx"].append(await _drive(h, n, concurrency))
        best = {k: max(v) for k, v in results.items()}
        for name, rate in best.items():
            print(f"{name:8s} {rate:8.0f} req/s (best of 3)")
        print(f"aiohttp / httpx = {best['aiohttp'] / best['httpx']:.2f}x")
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000,
                     int(sys.argv[2]) if len(sys.argv) > 2 else 32))
