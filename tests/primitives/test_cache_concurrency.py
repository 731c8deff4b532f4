"""Lookup cache under threads and asyncio tasks: single-flight holds, counts are exact."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from resilience.cache import NEGATIVE, LookupCache
from resilience.clock import ManualClock
from resilience.errors import ConnectionFailure, NotFound

THREADS = 16


def test_concurrent_sync_misses_cause_one_load() -> None:
    cache: LookupCache[str, int] = LookupCache(clock=ManualClock())
    loads = 0
    started = threading.Event()
    release = threading.Event()
    barrier = threading.Barrier(THREADS)

    def loader() -> int:
        nonlocal loads
        loads += 1
        started.set()
        assert release.wait(10)
        return 42

    def lookup() -> int | object:
        barrier.wait()
        return cache.get_or_load("k", loader)

    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(lookup) for _ in range(THREADS)]
        assert started.wait(10)
        time.sleep(0.05)  # let the other threads reach the flight and wait on it
        release.set()
        results = [f.result(10) for f in futures]
    assert results == [42] * THREADS
    assert loads == 1
    assert cache.stats().loads == 1


def test_a_failed_sync_load_reaches_every_waiter_and_is_not_cached() -> None:
    cache: LookupCache[str, int] = LookupCache(clock=ManualClock())
    loads = 0
    barrier = threading.Barrier(THREADS)
    gate = threading.Event()

    def loader() -> int:
        nonlocal loads
        loads += 1
        assert gate.wait(10)
        raise ConnectionFailure("db down")

    def lookup() -> str:
        barrier.wait()
        try:
            cache.get_or_load("k", loader)
        except ConnectionFailure:
            return "failed"
        return "ok"

    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(lookup) for _ in range(THREADS)]
        time.sleep(0.05)
        gate.set()
        outcomes = [f.result(10) for f in futures]
    assert outcomes == ["failed"] * THREADS
    assert 1 <= loads <= THREADS  # late arrivals may retry after the flight ended
    assert cache.get_or_load("k", lambda: 1) == 1


async def test_concurrent_async_misses_cause_one_load() -> None:
    cache: LookupCache[str, int] = LookupCache(clock=ManualClock())
    loads = 0

    async def loader() -> int:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.01)
        return 7

    results = await asyncio.gather(*(cache.aget_or_load("k", loader) for _ in range(200)))
    assert results == [7] * 200
    assert loads == 1
    stats = cache.stats()
    assert (stats.misses, stats.loads) == (200, 1)


async def test_async_not_found_is_shared_and_cached() -> None:
    cache: LookupCache[str, int] = LookupCache(clock=ManualClock())
    loads = 0

    async def loader() -> int:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0)
        raise NotFound("no")

    results = await asyncio.gather(*(cache.aget_or_load("k", loader) for _ in range(50)))
    assert results == [NEGATIVE] * 50
    assert await cache.aget_or_load("k", loader) is NEGATIVE
    assert loads == 1


async def test_a_cancelled_async_leader_hands_over_to_a_waiter() -> None:
    cache: LookupCache[str, int] = LookupCache(clock=ManualClock())
    first_started = asyncio.Event()
    calls = 0

    async def loader() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            first_started.set()
            await asyncio.sleep(10)
        return 3

    leader = asyncio.create_task(cache.aget_or_load("k", loader))
    await first_started.wait()
    waiter = asyncio.create_task(cache.aget_or_load("k", loader))
    await asyncio.sleep(0)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert await asyncio.wait_for(waiter, 5) == 3
    assert calls == 2


def test_threads_hammering_gets_and_sets_keep_exact_counts() -> None:
    """Lock-free hit path: every lookup is counted once, size stays bounded."""
    cache: LookupCache[int, int] = LookupCache(max_size=64, clock=ManualClock())
    per_thread = 5_000
    barrier = threading.Barrier(8)

    def work(worker: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            key = (worker * 31 + i) % 128
            if i % 3 == 0:
                cache.set(key, i)
            else:
                cache.get(key)
            if i % 500 == 0:
                cache.delete(key)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    stats = cache.stats()
    gets = sum(1 for i in range(per_thread) if i % 3) * 8
    assert stats.hits + stats.negative_hits + stats.misses == gets
    assert stats.size <= 64 + 8  # racing inserts may overshoot by one per thread


def test_concurrent_sets_deletes_and_sweeps_never_raise() -> None:
    """Lock-free writers racing with sweeps and expiry: no KeyError, no RuntimeError."""
    clock = ManualClock()
    cache: LookupCache[int, int] = LookupCache(
        max_size=32, ttl_s=1.0, negative_ttl_s=0.5, sweep_interval_s=0.1, clock=clock
    )
    barrier = threading.Barrier(6)

    def writer(worker: int) -> None:
        barrier.wait()
        for i in range(4_000):
            key = (worker + i) % 48
            action = i % 5
            if action == 0:
                cache.set(key, i)
            elif action == 1:
                cache.set_negative(key)
            elif action == 2:
                cache.delete(key)
            elif action == 3:
                cache.sweep()
            else:
                cache.get(key)
            if worker == 0 and i % 50 == 0:
                clock.advance(0.05)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(writer, range(6)))  # re-raises any exception from a worker
    assert len(cache) <= 32 + 6
