"""Lookup cache: defaults, TTLs, negative entries, loading, stale-while-revalidate, tiers."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Mapping

import pytest
from freezegun import freeze_time

from resilience.cache import (
    MISSING,
    NEGATIVE,
    CacheSentinel,
    CacheStats,
    LookupCache,
    Negative,
    TieredCache,
)
from resilience.clock import SYSTEM_CLOCK, ManualClock
from resilience.errors import ConnectionFailure, NotFound


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def test_defaults_follow_the_documented_targets() -> None:
    cache: LookupCache[str, str] = LookupCache()
    assert cache.max_size == 100
    assert cache.ttl_s == 30 * 60
    assert cache.negative_ttl_s == 60.0
    assert cache._sweep_interval_s == 5 * 60
    assert cache._clock is SYSTEM_CLOCK


def test_entries_expire_after_their_ttl(clock: ManualClock) -> None:
    cache: LookupCache[str, int] = LookupCache(ttl_s=10.0, clock=clock)
    cache.set("a", 1)
    cache.set("b", 2, ttl_s=30.0)
    clock.advance(9.99)
    assert cache.get("a") == 1
    clock.advance(0.01)
    assert cache.get("a") is MISSING
    assert cache.get("b") == 2
    clock.advance(20.0)
    assert cache.get("b") is MISSING
    assert cache.stats().expirations == 2


def test_lru_eviction_keeps_recently_used_entries(clock: ManualClock) -> None:
    cache: LookupCache[str, int] = LookupCache(max_size=3, clock=clock)
    for i, key in enumerate("abc"):
        cache.set(key, i)
    assert cache.get("a") == 0  # a becomes the most recent
    cache.set("d", 3)  # evicts b, the least recently used
    assert cache.keys() == ["c", "a", "d"]
    cache.set("c", 9)  # updating makes c the most recent without evicting
    assert cache.keys() == ["a", "d", "c"]
    assert cache.stats().evictions == 1


def test_negative_entries_are_distinct_and_have_their_own_ttl(clock: ManualClock) -> None:
    cache: LookupCache[str, int] = LookupCache(ttl_s=100.0, negative_ttl_s=5.0, clock=clock)
    cache.set_negative("ghost")
    assert cache.get("ghost") is NEGATIVE
    assert cache.get("other") is MISSING
    assert NEGATIVE is not MISSING
    clock.advance(5.0)
    assert cache.get("ghost") is MISSING
    stats = cache.stats()
    assert (stats.negative_hits, stats.misses) == (1, 2)


def test_stats_and_hit_rate(clock: ManualClock) -> None:
    cache: LookupCache[str, int] = LookupCache(clock=clock)
    assert cache.stats().hit_rate == 0.0
    cache.warm([("a", 1), ("b", 2)])
    cache.set_negative("x")
    for key in ("a", "b", "x", "zz"):
        cache.get(key)
    stats = cache.stats()
    assert stats == CacheStats(
        hits=2,
        negative_hits=1,
        stale_hits=0,
        misses=1,
        loads=0,
        load_errors=0,
        evictions=0,
        expirations=0,
        size=3,
        max_size=100,
    )
    assert stats.hit_rate == 0.75
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.hits = 0  # type: ignore[misc]
    cache.reset_stats()
    assert cache.stats().lookups == 0


def test_warm_returns_how_many_pairs_were_stored(clock: ManualClock) -> None:
    cache: LookupCache[str, int] = LookupCache(max_size=10, clock=clock)
    assert cache.warm((f"k{i}", i) for i in range(4)) == 4
    assert [cache.get(f"k{i}") for i in range(4)] == [0, 1, 2, 3]


def test_periodic_sweep_removes_expired_entries_on_a_later_access(clock: ManualClock) -> None:
    cache: LookupCache[str, int] = LookupCache(ttl_s=60.0, sweep_interval_s=300.0, clock=clock)
    cache.warm((f"k{i}", i) for i in range(10))
    clock.advance(120.0)
    cache.set("fresh", 1)
    assert len(cache) == 11  # expired entries linger until the sweep is due
    clock.advance(180.0)
    assert cache.get("fresh") is MISSING  # expired too; this access runs the sweep
    assert len(cache) == 0
    assert cache.stats().expirations == 11


def test_get_or_load_caches_values_and_not_found(clock: ManualClock) -> None:
    cache: LookupCache[str, int] = LookupCache(clock=clock)
    calls: list[str] = []

    def load_a() -> int:
        calls.append("a")
        return 42

    def load_missing() -> int:
        calls.append("missing")
        raise NotFound("no such key")

    def load_negative() -> int | Negative:
        calls.append("neg")
        return NEGATIVE

    assert cache.get_or_load("a", load_a) == 42
    assert cache.get_or_load("a", load_a) == 42
    assert cache.get_or_load("m", load_missing) is NEGATIVE
    assert cache.get_or_load("m", load_missing) is NEGATIVE
    assert cache.get_or_load("n", load_negative) is NEGATIVE
    assert cache.get("n") is NEGATIVE
    assert calls == ["a", "missing", "neg"]
    assert cache.stats().loads == 3


def test_loader_errors_are_raised_and_not_cached(clock: ManualClock) -> None:
    cache: LookupCache[str, int] = LookupCache(clock=clock)

    def down() -> int:
        raise ConnectionFailure("db down")

    with pytest.raises(ConnectionFailure):
        cache.get_or_load("a", down)
    assert cache.get("a") is MISSING
    assert cache.get_or_load("a", lambda: 1) == 1
    assert cache.stats().load_errors == 1


def test_sync_stale_while_revalidate_serves_stale_to_others_while_one_refreshes(
    clock: ManualClock,
) -> None:
    cache: LookupCache[str, int] = LookupCache(ttl_s=10.0, stale_s=5.0, clock=clock)
    cache.set("a", 1)
    clock.advance(12.0)
    assert cache.get("a") is MISSING  # plain get never serves stale
    seen: list[int | Negative] = []

    def refresh() -> int:
        # while this caller refreshes, a concurrent caller gets the stale value
        seen.append(cache.get_or_load("a", lambda: 99))
        return 2

    assert cache.get_or_load("a", refresh) == 2
    assert seen == [1]
    assert cache.get("a") == 2
    assert cache.stats().stale_hits == 1
    clock.advance(16.0)  # beyond ttl + stale: gone
    assert cache.get_or_load("a", lambda: 3) == 3


async def test_async_stale_while_revalidate_refreshes_in_the_background(
    clock: ManualClock,
) -> None:
    cache: LookupCache[str, int] = LookupCache(ttl_s=10.0, stale_s=5.0, clock=clock)
    cache.set("a", 1)
    clock.advance(11.0)
    release = asyncio.Event()
    loads = 0

    async def slow_load() -> int:
        nonlocal loads
        loads += 1
        await release.wait()
        return 2

    assert await cache.aget_or_load("a", slow_load) == 1  # immediately, stale
    assert await cache.aget_or_load("a", slow_load) == 1  # refresh already running
    release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert loads == 1
    assert cache.get("a") == 2


async def test_aget_or_load_caches_and_propagates_errors(clock: ManualClock) -> None:
    cache: LookupCache[str, int] = LookupCache(clock=clock)

    async def load() -> int:
        return 5

    async def missing() -> int:
        raise NotFound("nope")

    async def down() -> int:
        raise ConnectionFailure("down")

    assert await cache.aget_or_load("a", load) == 5
    assert cache.get("a") == 5
    assert await cache.aget_or_load("m", missing) is NEGATIVE
    with pytest.raises(ConnectionFailure):
        await cache.aget_or_load("d", down)
    assert cache.get("d") is MISSING


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="max_size"):
        LookupCache(max_size=0)
    with pytest.raises(ValueError, match="ttl_s"):
        LookupCache(ttl_s=0)
    with pytest.raises(ValueError, match="stale_s"):
        LookupCache(stale_s=-1)


def test_a_cache_built_before_freezing_follows_the_frozen_clock() -> None:
    cache: LookupCache[str, str] = LookupCache(ttl_s=10.0)
    with freeze_time("2026-01-01 12:00:00") as frozen:
        cache.set("k", "v")
        frozen.tick(9.0)
        assert cache.get("k") == "v"
        frozen.tick(1.0)
        assert cache.get("k") is MISSING


def test_ttl_expiry_with_the_system_clock_under_freezegun() -> None:
    with freeze_time("2026-01-01 12:00:00") as frozen:
        cache: LookupCache[str, str] = LookupCache(ttl_s=1800.0, negative_ttl_s=60.0)
        cache.set("svc", "uuid-1")
        cache.set_negative("ghost")
        frozen.tick(59.0)
        assert cache.get("ghost") is NEGATIVE
        frozen.tick(1.0)
        assert cache.get("ghost") is MISSING
        frozen.tick(1799.0 - 60.0)
        assert cache.get("svc") == "uuid-1"
        frozen.tick(1.0)
        assert cache.get("svc") is MISSING


class FakeTier:
    """An in-memory stand-in for the Redis tier (same protocol)."""

    NOT_FOUND = object()

    def __init__(self) -> None:
        self.data: dict[str, object] = {}
        self.reads = 0

    async def get(self, key: str) -> object | None:
        self.reads += 1
        return self.data.get(key)

    async def set(self, key: str, value: object) -> bool:
        self.data[key] = value
        return True

    async def set_not_found(self, key: str) -> bool:
        self.data[key] = self.NOT_FOUND
        return True

    async def delete(self, key: str) -> bool:
        return self.data.pop(key, None) is not None

    async def get_many(self, keys: Iterable[str]) -> Mapping[str, object]:
        return {k: self.data[k] for k in keys if k in self.data}


async def test_tiered_cache_reads_through_both_tiers(clock: ManualClock) -> None:
    tier = FakeTier()
    local: LookupCache[str, object] = LookupCache(clock=clock)
    cache: TieredCache[str, object, object] = TieredCache(
        local, tier, remote_not_found=FakeTier.NOT_FOUND
    )
    tier.data["remote"] = "r-value"
    tier.data["gone"] = FakeTier.NOT_FOUND
    assert await cache.get("remote") == "r-value"
    assert local.get("remote") == "r-value"  # filled the memory tier
    assert await cache.get("gone") is NEGATIVE
    assert await cache.get("nowhere") is MISSING
    loads: list[str] = []

    async def load() -> object:
        loads.append("x")
        return "loaded"

    async def load_missing() -> object:
        raise NotFound("no")

    assert await cache.get_or_load("x", load) == "loaded"
    assert tier.data["x"] == "loaded"  # written back to the shared tier
    assert await cache.get_or_load("x", load) == "loaded"
    assert await cache.get_or_load("y", load_missing) is NEGATIVE
    assert tier.data["y"] is FakeTier.NOT_FOUND
    assert loads == ["x"]
    await cache.set("s", 1)
    await cache.set_negative("n")
    assert (tier.data["s"], local.get("n")) == (1, NEGATIVE)
    await cache.delete("s")
    assert "s" not in tier.data
    assert local.get("s") is MISSING
    assert await cache.warm([("w", 1)]) == 1
    assert isinstance(MISSING, CacheSentinel)
