"""The Redis breaker store and Redis cache tier on real Redis, through the proxy."""

from __future__ import annotations

import time
import uuid
from typing import Any

import redis.asyncio as aioredis

from resilience.breaker import BreakerRecord, BreakerState, CircuitBreaker
from resilience.breaker.redis_store import RedisBreakerStore
from resilience.cache.redis_tier import NOT_FOUND, RedisTier


def _record(version: int, writer: str, state: BreakerState = BreakerState.OPEN) -> BreakerRecord:
    return BreakerRecord(
        state=state, version=version, writer=writer, opened_at_wall=time.time(), opens=1, reason="t"
    )


def test_store_keeps_one_winner_per_version(resilience_env: Any, resilience_clean: None) -> None:
    """Two writers racing to the same version: the first stored wins, the loser gets it back."""
    url = resilience_env.urls.redis
    with RedisBreakerStore.from_url(url) as a, RedisBreakerStore.from_url(url) as b:
        first = a.apply("db", _record(1, "a"))
        second = b.apply("db", _record(1, "b", BreakerState.HALF_OPEN))
        newer = b.apply("db", _record(2, "b", BreakerState.CLOSED))
        loaded = a.load("db")
    assert first.writer == "a"
    assert second == first
    assert newer.writer == "b"
    assert loaded == newer


def test_store_degrades_to_local_state_and_recovers(resilience_env: Any, redis_proxy: Any) -> None:
    """Redis away: apply keeps the breaker's own record, load knows nothing; then it is back."""
    store = RedisBreakerStore.from_url(resilience_env.urls.redis, retry_interval_s=0.05)
    with store:
        redis_proxy.disable()
        own = _record(1, "a")
        during = store.apply("db", own)
        loaded = store.load("db")
        available = store.available
        redis_proxy.enable()
        time.sleep(0.06)
        after = store.apply("db", _record(2, "a"))
    assert during is own
    assert loaded is None
    assert not available
    assert after.version == 2
    assert store.available


def test_breakers_follow_each_other_through_the_store(
    resilience_env: Any, resilience_clean: None
) -> None:
    """A transition in one breaker reaches another breaker of the same name via pub/sub."""
    url = resilience_env.urls.redis
    with (
        RedisBreakerStore.from_url(url, sync_interval_s=0.05) as a_store,
        RedisBreakerStore.from_url(url, sync_interval_s=0.05) as b_store,
    ):
        a = CircuitBreaker("shared", failure_threshold=1, store=a_store)
        b = CircuitBreaker("shared", failure_threshold=1, store=b_store)
        a.force_open("test")
        for _ in range(250):
            if b.state == BreakerState.OPEN:
                break
            time.sleep(0.02)
        assert b.state == BreakerState.OPEN
        b.reset()
        for _ in range(250):
            if a.state == BreakerState.CLOSED:
                break
            time.sleep(0.02)
        assert a.state == BreakerState.CLOSED


async def test_tier_round_trips_values_and_negative_entries_in_batches(
    resilience_env: Any, resilience_clean: None
) -> None:
    client = aioredis.Redis.from_url(resilience_env.urls.redis)
    try:
        tier = RedisTier(client, prefix="test")
        value = uuid.uuid4()
        assert await tier.set_many({"known": value}, ["unknown"])
        found = await tier.get_many(["known", "unknown", "absent"])
        single = await tier.get("unknown")
        raw = await client.get("test:slug:known")
    finally:
        await client.aclose()
    assert found == {"known": value, "unknown": NOT_FOUND}
    assert single is NOT_FOUND
    assert raw == str(value).encode()


async def test_tier_is_a_miss_while_redis_is_down(resilience_env: Any, redis_proxy: Any) -> None:
    client = aioredis.Redis.from_url(resilience_env.urls.redis, socket_timeout=0.2)
    try:
        tier = RedisTier(client, retry_interval_s=60)
        redis_proxy.disable()
        missed = await tier.get("roof-repair")
        stored = await tier.set("roof-repair", uuid.uuid4())
        skipped = tier.skipped
        redis_proxy.enable()
    finally:
        await client.aclose()
    assert missed is None
    assert not stored
    assert not tier.available
    assert skipped == 1  # the second command did not even try
