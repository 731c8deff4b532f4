"""The job outbox never loses an accepted job, never retries one forever (issue 15, defect 2).

A queued job that cannot be stored is moved to the dead letters (error event,
counted in /stats, /health and /metrics); an outage only postpones the drain.
Real PostgreSQL and Redis; the failing repository wraps the real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis
from service_support import FAST

from resilience.errors import ConnectionFailure, TimeoutFailure
from resilience.service import create_app
from resilience.service.outbox import JobOutbox
from resilience.service.repository import PostgresJobRepository
from resilience.service.runtime import open_service


@contextlib.asynccontextmanager
async def _backends(urls: Any) -> AsyncIterator[tuple[Any, Any]]:
    pool = await asyncpg.create_pool(urls.postgres_direct, min_size=1, max_size=2)
    client = aioredis.Redis.from_url(urls.redis)
    try:
        yield pool, client
    finally:
        await client.aclose()
        await pool.close()


class FailingFor:
    """The real job repository, except that writing ``key`` raises ``error``."""

    def __init__(self, inner: Any, key: str, error: Exception) -> None:
        self.inner, self.key, self.error = inner, key, error
        self.tries = 0

    async def insert_job(self, **fields: Any) -> Any:
        if fields["idempotency_key"] == self.key:
            self.tries += 1
            raise self.error
        return await self.inner.insert_job(**fields)


def _outbox(client: Any, repository: Any, **kwargs: Any) -> JobOutbox:
    return JobOutbox(client, repository, prefix=f"test-{uuid.uuid4().hex[:8]}", **kwargs)


async def _stored(pool: Any, key: str) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM jobs WHERE idempotency_key=$1", key))


async def _queue(outbox: JobOutbox, key: str, answers: dict[str, Any]) -> None:
    ok = await outbox.put(
        micro_id="roof-repair", micro_uuid=None, answers=answers, idempotency_key=key
    )
    assert ok


async def test_a_row_the_database_refuses_is_dead_lettered_at_once(urls: Any) -> None:
    letters: list[dict[str, Any]] = []
    async with _backends(urls) as (pool, client):
        outbox = _outbox(client, PostgresJobRepository(pool), on_dead_letter=letters.append)
        await _queue(outbox, "nul", {"text": "a\x00b"})  # jsonb refuses \u0000
        await _queue(outbox, "good", {"rooms": 2})
        await outbox.drain()
        assert await outbox.pending() == 0
        assert await _stored(pool, "good") == 1
        assert await _stored(pool, "nul") == 0
        dead = await outbox.dead_letters()
    assert set(dead) == {"nul"}
    assert dead["nul"]["job"]["answers"] == {"text": "a\x00b"}  # kept, not dropped
    assert outbox.stats()["dead_lettered"] == 1
    assert [letter["idempotency_key"] for letter in letters] == ["nul"]


async def test_a_job_failing_on_its_own_is_dead_lettered_after_max_failures(urls: Any) -> None:
    """Writing one job times out while PostgreSQL answers: it does not block the others and
    is moved aside after ``max_failures`` drains (the 50 MB job once retried forever)."""
    async with _backends(urls) as (pool, client):
        repository = FailingFor(PostgresJobRepository(pool), "huge", TimeoutFailure("hung"))

        async def ping() -> None:
            await pool.fetchval("SELECT 1")

        outbox = _outbox(client, repository, max_failures=3, probe=ping)
        await _queue(outbox, "huge", {"blob": "x" * 1000})
        await _queue(outbox, "after", {"rooms": 1})
        for _ in range(2):
            await outbox.drain()
        assert await _stored(pool, "after") == 1  # not blocked behind the failing job
        assert await outbox.pending() == 1  # two failures: still queued
        await outbox.drain()
        assert repository.tries == 3
        assert await outbox.pending() == 0
        assert set(await outbox.dead_letters()) == {"huge"}
        for _ in range(3):
            await outbox.drain()
        assert repository.tries == 3  # never retried again


async def test_an_outage_only_postpones_the_drain(urls: Any) -> None:
    """PostgreSQL away (the probe fails too): no job is ever dead-lettered for it."""
    async with _backends(urls) as (pool, client):
        repository = FailingFor(PostgresJobRepository(pool), "k", ConnectionFailure("refused"))

        async def ping() -> None:
            raise ConnectionFailure("refused")

        outbox = _outbox(client, repository, max_failures=1, probe=ping)
        await _queue(outbox, "k", {"rooms": 1})
        for _ in range(5):
            await outbox.drain()
        assert await outbox.pending() == 1
        assert outbox.stats()["dead_lettered"] == 0
        repository.key = "none"  # PostgreSQL is back
        await outbox.drain()
        assert await _stored(pool, "k") == 1


async def test_the_service_reports_dead_letters_in_health_metrics_and_error_events(
    urls: Any,
) -> None:
    transport_app: Any = None
    async with open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as service:
        transport_app = create_app(service)
        outbox = service.outbox
        assert outbox is not None
        await _queue(outbox, "nul-service", {"text": "\x00"})
        for _ in range(250):  # the drainer runs every 0.1 s
            if outbox.stats()["dead_lettered"]:
                break
            await asyncio.sleep(0.02)
        transport = httpx.ASGITransport(app=transport_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://s.test") as client:
            health = (await client.get("/health")).json()
            metrics = (await client.get("/metrics")).text
            stats = (await client.get("/stats")).json()
        assert service.error_tracker is not None  # writes its queue at shutdown
    component = health["components"]["outbox"]
    assert (component["status"], component["dead_lettered"]) == ("degraded", 1)
    assert stats["outbox"]["dead_lettered"] == 1
    assert 'resilience_outbox_jobs_total{fate="dead_lettered"} 1.0' in metrics
    conn = await asyncpg.connect(urls.postgres_direct)
    try:
        events = await conn.fetch("SELECT message FROM error_events WHERE component = 'outbox'")
    finally:
        await conn.close()
    assert len(events) == 1
    assert "nul-service" in events[0]["message"]
