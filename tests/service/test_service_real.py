"""The service on real PostgreSQL and Redis, faults injected through the Toxiproxy API.

One test per documented error scenario (TARGETS.md), plus Redis outages,
slow PostgreSQL, a breaker shared by two instances, and the analytics writer.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest
from service_support import FAST, CountingRepository

from resilience.errors import InvalidSlug
from resilience.service.runtime import open_service


async def _wait_for(predicate: Any, *, limit_s: float = 5.0) -> None:
    """Poll ``predicate`` until true (bounded; not a timing assertion)."""
    for _ in range(int(limit_s / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_lookup_paths_db_then_cache_then_redis(
    urls: Any, known: dict[str, uuid.UUID]
) -> None:
    """A DB hit fills both tiers: the same instance answers from memory, another from Redis."""
    slug = next(iter(known))
    async with open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as a:
        first = await a.lookup(slug)
        second = await a.lookup(slug)
        async with open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as b:
            shared = await b.lookup(slug)
    assert (first.path, first.outcome, first.uuid) == ("db", "success", known[slug])
    assert (second.path, second.uuid) == ("cache", known[slug])
    assert (shared.path, shared.uuid) == ("redis", known[slug])


async def test_scenario_1_not_in_database_falls_back_and_job_is_accepted(urls: Any) -> None:
    """Unknown slug: slug-only fallback, negative-cached; the job is stored with a null UUID."""
    async with open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as service:
        result = await service.lookup("retired-service")
        again = await service.lookup("retired-service")
        job = await service.post_job("retired-service", {"rooms": 2}, "scenario-1")
        stored = await service.get_job(job.id)
    assert (result.outcome, result.reason, result.uuid) == ("fallback", "not_found", None)
    assert (again.path, again.outcome) == ("cache", "fallback")
    assert stored is not None
    assert stored.micro_uuid is None
    assert stored.micro_id == "retired-service"


async def test_scenario_2_connection_failure_is_retried_then_falls_back(
    urls: Any, postgres_proxy: Any
) -> None:
    """PostgreSQL unreachable: every attempt is made (with backoff), then a fallback."""
    async with open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as service:
        postgres_proxy.disable()
        result = await service.lookup("roof-repair")
        health = await service.health()
        postgres_proxy.enable()
    assert (result.outcome, result.path, result.reason) == ("fallback", "fallback", "connection")
    assert result.attempts == FAST.retry.max_attempts
    assert health["components"]["postgres"]["status"] == "down"
    assert health["status"] == "critical"


async def test_scenario_3_open_breaker_skips_the_database(urls: Any, postgres_proxy: Any) -> None:
    """After the threshold of failed lookups the breaker opens: no query, immediate fallback."""
    config = FAST.with_overrides({"retry.max_attempts": 1})
    async with open_service(config, postgres_url=urls.postgres, redis_url=urls.redis) as service:
        counting = CountingRepository(service.repository)
        service.repository = counting
        postgres_proxy.disable()
        for i in range(config.breaker.failure_threshold):
            await service.lookup(f"missing-{i}")
        calls = counting.calls
        result = await service.lookup("roof-repair")
        stats = service.stats()
        postgres_proxy.enable()
    assert (result.outcome, result.reason, result.attempts) == ("fallback", "circuit_open", 0)
    assert counting.calls == calls
    assert stats["breaker"] == {"state": "open", "opens": 1}


async def test_scenario_4_invalid_slug_is_refused_without_a_query(urls: Any) -> None:
    """A malformed slug raises InvalidSlug, makes no query, and refuses the job."""
    async with open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as service:
        counting = CountingRepository(service.repository)
        service.repository = counting
        with pytest.raises(InvalidSlug):
            await service.lookup("roof'; DROP TABLE jobs; --")
        with pytest.raises(InvalidSlug):
            await service.post_job("Roof Repair", {}, "scenario-4")
        stats = service.stats()
    assert counting.calls == 0
    assert stats["invalid"] == 1
    assert stats["breaker"]["state"] == "closed"


def test_scenario_5_migration_backfills_known_slugs(urls: Any) -> None:
    """Jobs without UUID get it where the slug is known, are skipped where not; re-run is safe."""
    from resilience.db.catalogue import catalogue, generate_jobs, insert_jobs
    from resilience.db.migration import run_migration

    entries = catalogue(size=50)
    insert_jobs(urls.postgres_direct, generate_jobs(entries, count=60, unknown_share=0.2))
    stats = run_migration(urls.postgres, batch_size=25)
    again = run_migration(urls.postgres, batch_size=25)
    assert stats.total_jobs == 60
    assert stats.run.succeeded + stats.run.skipped == 60
    assert stats.run.failed == 0
    assert stats.jobs_with_uuid == stats.run.succeeded
    assert stats.unknown_slug_jobs == stats.run.skipped
    assert (again.logged_success, again.logged_skipped) == (stats.run.succeeded, stats.run.skipped)


async def test_redis_down_then_back(
    urls: Any, known: dict[str, uuid.UUID], redis_proxy: Any
) -> None:
    """Redis away never fails a lookup; the tier comes back by itself once Redis does."""
    slugs = list(known)[:3]
    async with open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as service:
        tier = service.redis_tier
        assert tier is not None
        redis_proxy.disable()
        during = [await service.lookup(s) for s in slugs]
        assert not tier.available  # type: ignore[attr-defined]
        redis_proxy.enable()
        await asyncio.sleep(FAST.redis.retry_interval_s)
        service.cache.clear()
        await service.lookup(slugs[0])  # probes Redis again: the tier recovers
        service.cache.clear()
        after = await service.lookup(slugs[0])
        stats = service.stats()
    assert [r.outcome for r in during] == ["success"] * 3
    assert [r.path for r in during] == ["db"] * 3
    assert stats["redis"]["available"]
    assert after.path == "redis"


async def test_postgres_slower_than_the_timeout_falls_back_after_retries(
    urls: Any, postgres_proxy: Any
) -> None:
    """Latency above db.timeout_s: each attempt times out, the lookup falls back (timeout)."""
    config = FAST.with_overrides({"db.timeout_s": 0.05, "retry.max_attempts": 2})
    async with open_service(config, postgres_url=urls.postgres, redis_url=urls.redis) as service:
        postgres_proxy.add_toxic(type="latency", attributes={"latency": 300}, stream="downstream")
        result = await service.lookup("roof-repair")
        postgres_proxy.remove_toxic("latency_downstream")
    assert (result.outcome, result.reason, result.attempts) == ("fallback", "timeout", 2)


async def test_two_instances_share_one_breaker_through_redis(
    urls: Any, postgres_proxy: Any
) -> None:
    """Instance A opens the breaker; instance B learns it from Redis and stops querying."""
    config = FAST.with_overrides({"retry.max_attempts": 1, "breaker.failure_threshold": 2})
    async with (
        open_service(config, postgres_url=urls.postgres, redis_url=urls.redis) as a,
        open_service(config, postgres_url=urls.postgres, redis_url=urls.redis) as b,
    ):
        counting = CountingRepository(b.repository)
        b.repository = counting
        postgres_proxy.disable()
        for i in range(2):
            await a.lookup(f"missing-{i}")
        await _wait_for(lambda: b.breaker.state == "open")
        result = await b.lookup("roof-repair")
        postgres_proxy.enable()
    assert (result.outcome, result.reason) == ("fallback", "circuit_open")
    assert counting.calls == 0
    assert b.breaker.opens == 1


async def test_breaker_transitions_and_analytics_are_written(
    urls: Any, postgres_proxy: Any
) -> None:
    """Transitions land in circuit_breaker_events; lookups in analytics_events, flushed on exit."""
    config = FAST.with_overrides(
        {
            "retry.max_attempts": 1,
            "breaker.failure_threshold": 2,
            "analytics.flush_interval_s": 60,  # writes only full batches, and at exit
        }
    )
    async with open_service(config, postgres_url=urls.postgres, redis_url=None) as service:
        for i in range(12):
            await service.lookup(f"missing-{i}")
        # Nothing in flight when the proxy goes away: a batch whose commit reply is
        # lost would be written again (analytics are at-least-once).
        await service.analytics.flush()
        postgres_proxy.disable()
        for i in range(3):
            await service.lookup(f"other-{i}")
        postgres_proxy.enable()
    conn = await asyncpg.connect(urls.postgres_direct)
    try:
        analytics = await conn.fetchval(
            "SELECT count(*) FROM analytics_events WHERE event_name = 'uuid_lookup' "
            "AND category = 'wizard_flow'"
        )
        transitions = await conn.fetch("SELECT from_state, to_state FROM circuit_breaker_events")
        errors = await conn.fetchval("SELECT count(*) FROM error_events")
        failures = await conn.fetchrow(
            "SELECT sum(total_count) AS total, sum(failure_count) AS failed FROM failure_metrics"
        )
    finally:
        await conn.close()
    assert analytics == 15
    assert ("closed", "open") in [(r["from_state"], r["to_state"]) for r in transitions]
    assert errors >= 2
    assert (failures["total"], failures["failed"]) == (15, 3)


async def test_hung_postgres_costs_the_timeout_not_the_driver_cancellation(
    urls: Any, postgres_proxy: Any
) -> None:
    """A `timeout` toxic (replies never come): attempts give up at db.timeout_s and fall back."""
    config = FAST.with_overrides({"db.timeout_s": 0.05, "retry.max_attempts": 2})
    async with open_service(config, postgres_url=urls.postgres, redis_url=None) as service:
        await service.lookup("roof-repair")  # a pooled connection exists
        service.cache.clear()
        postgres_proxy.add_toxic(
            name="hang", type="timeout", stream="downstream", attributes={"timeout": 0}
        )
        result = await asyncio.wait_for(service.lookup("roof-repair"), 5.0)
        postgres_proxy.remove_toxic("hang")
        recovered = await service.lookup("roof-repair")
    assert (result.outcome, result.reason, result.attempts) == ("fallback", "timeout", 2)
    assert recovered.outcome == "success"


async def test_hung_redis_costs_its_timeout_then_is_skipped(
    urls: Any, known: dict[str, uuid.UUID], redis_proxy: Any
) -> None:
    """Redis stops answering: one lookup pays redis.timeout_s, the next ones skip Redis."""
    slugs = list(known)[:3]
    async with open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as service:
        await service.lookup(slugs[0])  # Redis connection established
        service.cache.clear()
        redis_proxy.add_toxic(
            name="hang", type="timeout", stream="downstream", attributes={"timeout": 0}
        )
        results = [await asyncio.wait_for(service.lookup(s), 5.0) for s in slugs]
        tier = service.redis_tier
        redis_proxy.remove_toxic("hang")
    assert [r.outcome for r in results] == ["success"] * 3
    assert tier is not None
    assert tier.skipped >= 1  # type: ignore[attr-defined]


async def test_service_starts_while_postgres_is_away_and_recovers(
    urls: Any, known: dict[str, uuid.UUID], postgres_proxy: Any
) -> None:
    """Started during an outage: lookups fall back; once PostgreSQL is back they succeed."""
    slug = next(iter(known))
    config = FAST.with_overrides({"retry.max_attempts": 1})
    postgres_proxy.disable()
    async with open_service(config, postgres_url=urls.postgres, redis_url=urls.redis) as service:
        during = await service.lookup(slug)
        postgres_proxy.enable()
        after = await service.lookup(slug)
    assert (during.outcome, during.reason) == ("fallback", "connection")
    assert (after.outcome, after.path) == ("success", "db")
