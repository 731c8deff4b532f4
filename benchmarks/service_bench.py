"""Reference-service benchmark: lookup latency by path, and HTTP throughput.

Starts a local Environment (PostgreSQL, Redis, fault proxies; no toxics),
seeds the catalogue, then measures:

1. In process, ``await service.lookup(slug)`` wall time (perf_counter_ns around
   the call) per path: memory-cache hit, Redis hit, database hit (through the
   proxy, no Redis), and fallback with the breaker forced open (``fallback``:
   in-memory tier only; ``fallback+redis``: after a Redis miss, which the flow
   asks first); p50/p99/mean µs.
2. Over HTTP, ``GET /services/{slug}`` served by ``resilience serve`` (uvicorn,
   one worker, a separate process) and driven by a minimal keep-alive client
   over ``--concurrency`` connections: requests/s and p50/p99 ms on the cache path
   (one hot slug) and on the database path (cache size 1, Redis off, slugs in
   rotation).

Targets: cache-hit p99 < 100 µs; breaker-open fallback p99 < 100 µs; DB-path
mean < 5 ms. Run: ``python benchmarks/service_bench.py [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

TARGETS_US = {"cache": ("p99", 100.0), "fallback": ("p99", 100.0), "db": ("mean", 5000.0)}


def summarise(samples_ns: list[int]) -> dict[str, float]:
    data = sorted(samples_ns)
    n = len(data)

    def q(p: float) -> float:
        return data[min(n - 1, max(0, round(p * n) - 1))] / 1000

    return {
        "n": n,
        "p50_us": q(0.50),
        "p99_us": q(0.99),
        "mean_us": statistics.fmean(data) / 1000,
    }


async def timed(
    n: int, before: Callable[[int], None], call: Callable[[int], Awaitable[Any]]
) -> list[int]:
    samples = []
    clock = time.perf_counter_ns
    for i in range(n):
        before(i)
        start = clock()
        await call(i)
        samples.append(clock() - start)
    return samples


async def in_process(urls: Any, slugs: list[str], n: int) -> dict[str, dict[str, float]]:
    from resilience.service import ServiceConfig
    from resilience.service.runtime import open_service

    config = ServiceConfig().with_overrides({"analytics.enabled": False})
    results: dict[str, dict[str, float]] = {}
    async with open_service(config, postgres_url=urls.postgres, redis_url=urls.redis) as service:
        hot = slugs[0]
        await service.lookup(hot)
        for _ in range(2000):  # warm-up
            await service.lookup(hot)
        results["cache"] = summarise(await timed(n, lambda i: None, lambda i: service.lookup(hot)))

        def drop(i: int) -> None:
            service.cache.delete(slugs[i % len(slugs)])

        for slug in slugs:
            await service.lookup(slug)  # every slug is in Redis now
        samples = await timed(n // 5, drop, lambda i: service.lookup(slugs[i % len(slugs)]))
        assert service.stats()["paths"].get("redis", 0) >= n // 5
        results["redis"] = summarise(samples)

        service.breaker.force_open("benchmark")
        fallback_slugs = [f"not-cached-{i}" for i in range(n)]
        results["fallback+redis"] = summarise(
            await timed(n // 5, lambda i: None, lambda i: service.lookup(fallback_slugs[i]))
        )
        service.breaker.reset()
    async with open_service(config, postgres_url=urls.postgres, redis_url=None) as service:
        service.breaker.force_open("benchmark")
        results["fallback"] = summarise(
            await timed(n, lambda i: None, lambda i: service.lookup(fallback_slugs[i]))
        )
        assert service.stats()["reasons"].get("circuit_open", 0) >= n
        service.breaker.reset()
        for slug in slugs:
            await service.lookup(slug)  # pool and prepared statements warm
        results["db"] = summarise(
            await timed(
                n // 5,
                lambda i: service.cache.clear(),
                lambda i: service.lookup(slugs[i % len(slugs)]),
            )
        )
        assert service.stats()["paths"]["db"] >= n // 5
    return results


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _one_connection(
    host: str, port: int, paths: list[str], offset: int, step: int, deadline: float,
    latencies: list[int], errors: list[int],
) -> None:  # fmt: skip
    """A minimal keep-alive HTTP/1.1 client: the load generator must cost less than the server."""
    reader, writer = await asyncio.open_connection(host, port)
    requests = [f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for path in paths]
    i = offset
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter_ns()
            writer.write(requests[i % len(requests)])
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter_ns() - start)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(1)
            i += step
    finally:
        writer.close()


async def drive(
    base: str, paths: list[str], duration_s: float, concurrency: int
) -> dict[str, float]:
    host, port = base.removeprefix("http://").split(":")
    latencies: list[int] = []
    errors: list[int] = []
    warm_deadline = time.perf_counter() + 0.5
    await _one_connection(host, int(port), paths, 0, 1, warm_deadline, [], [])
    deadline = time.perf_counter() + duration_s
    started = time.perf_counter()
    await asyncio.gather(
        *(
            _one_connection(host, int(port), paths, k, concurrency, deadline, latencies, errors)
            for k in range(concurrency)
        )
    )
    elapsed = time.perf_counter() - started
    summary = summarise(latencies)
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": summary["p50_us"] / 1000,
        "p99_ms": summary["p99_us"] / 1000,
        "errors": len(errors),
    }


def http_throughput(
    urls: Any, slugs: list[str], duration_s: float, concurrency: int
) -> dict[str, dict[str, float]]:
    import httpx

    out: dict[str, dict[str, float]] = {}
    for label, settings, paths in (
        ("cache", [], [f"/services/{slugs[0]}"]),
        (
            "db",
            ["--set", "cache.max_size=1", "--set", "redis.enabled=false"],
            [f"/services/{s}" for s in slugs],
        ),
    ):
        port = free_port()
        command = [
            sys.executable, "-c", "from resilience.cli import main; main()", "serve",
            "--postgres-url", urls.postgres, "--redis-url", urls.redis,
            "--port", str(port), "--set", "analytics.enabled=false", *settings,
        ]  # fmt: skip
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(200):
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            out[label] = asyncio.run(drive(base, paths, duration_s, concurrency))
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="in-process lookups per path")
    parser.add_argument("--duration-s", type=float, default=5.0, help="HTTP run per path")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()

    try:
        import uvloop
    except ImportError:  # the standard loop is fine, only slower
        uvloop = None

    from resilience.backends import Environment
    from resilience.db.catalogue import seed_catalogue
    from resilience.db.schema import apply_schema

    with Environment("local") as env:
        urls = env.urls
        apply_schema(urls.postgres_direct)
        slugs = [e.slug for e in seed_catalogue(urls.postgres_direct, size=300)]
        runner = uvloop.run if uvloop is not None else asyncio.run
        lookups = runner(in_process(urls, slugs, args.n))
        http = http_throughput(urls, slugs, args.duration_s, args.concurrency)

    verdicts = {}
    for path, (stat, limit_us) in TARGETS_US.items():
        observed = lookups[path][f"{stat}_us"]
        verdicts[path] = {"stat": stat, "target_us": limit_us, "observed_us": observed,
                          "ok": observed < limit_us}  # fmt: skip
    report = {"lookup_us": lookups, "http": http, "targets": verdicts,
              "loop": "uvloop" if uvloop is not None else "asyncio",
              "cpus": os.cpu_count()}  # fmt: skip
    if args.json:
        print(json.dumps(report, indent=2))
        return 0 if all(v["ok"] for v in verdicts.values()) else 1
    print(f"In-process lookup latency ({report['loop']}, µs)")
    print(f"{'path':<10}{'n':>8}{'p50':>10}{'p99':>10}{'mean':>10}")
    for path, s in lookups.items():
        print(f"{path:<10}{s['n']:>8}{s['p50_us']:>10.1f}{s['p99_us']:>10.1f}{s['mean_us']:>10.1f}")
    print(
        f"\nHTTP GET /services/{{slug}} (1 uvicorn worker, {args.concurrency} client connections)"
    )
    print(f"{'path':<10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for path, h in http.items():
        print(
            f"{path:<10}{h['rps']:>10.0f}{h['p50_ms']:>10.2f}{h['p99_ms']:>10.2f}{h['errors']:>8}"
        )
    print("\nTargets")
    for path, v in verdicts.items():
        mark = "ok" if v["ok"] else "MISSED"
        print(
            f"  {path:<9} {v['stat']} {v['observed_us']:.1f} µs < {v['target_us']:.0f} µs  {mark}"
        )
    return 0 if all(v["ok"] for v in verdicts.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
