"""The HTTP API on real backends, in process (httpx ASGI transport), faults included."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
from service_support import FAST

from resilience.service import create_app
from resilience.service.runtime import open_service


def _client(service: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(service))
    return httpx.AsyncClient(transport=transport, base_url="http://service.test")


async def test_get_service_answers_uuid_fallback_and_refuses_invalid(
    urls: Any, known: dict[str, uuid.UUID]
) -> None:
    slug = next(iter(known))
    async with (
        open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as service,
        _client(service) as client,
    ):
        hit = await client.get(f"/services/{slug}")
        unknown = await client.get("/services/retired-service")
        invalid = await client.get("/services/Not_A_Slug")
    assert hit.status_code == 200
    assert hit.json()["uuid"] == str(known[slug])
    assert hit.headers["x-lookup-path"] == "db"
    assert "server-timing" in hit.headers
    assert unknown.status_code == 200
    assert (unknown.json()["outcome"], unknown.json()["uuid"]) == ("fallback", None)
    assert unknown.json()["message"]
    assert invalid.status_code == 400
    assert invalid.json()["error"] == "invalid_slug"
    assert "characters" in invalid.json()["message"]


async def test_jobs_are_created_once_replayed_and_validated(
    urls: Any, known: dict[str, uuid.UUID]
) -> None:
    slug = next(iter(known))
    body = {"micro_id": slug, "answers": {"rooms": 3}, "idempotency_key": "job-1"}
    async with (
        open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as service,
        _client(service) as client,
    ):
        created = await client.post("/jobs", json=body)
        replayed = await client.post("/jobs", json=body)
        read = await client.get(f"/jobs/{created.json()['id']}")
        missing = await client.get("/jobs/999999")
        bad = await client.post("/jobs", json={"micro_id": "Bad Slug", "idempotency_key": "k"})
        no_key = await client.post("/jobs", json={"micro_id": slug})
    assert created.status_code == 201
    assert created.json()["micro_uuid"] == str(known[slug])
    assert replayed.status_code == 200
    assert replayed.json()["id"] == created.json()["id"]
    assert read.json()["answers"] == {"rooms": 3}
    assert missing.status_code == 404
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "micro_id"]
    assert no_key.status_code == 422
    assert no_key.json()["detail"][0]["loc"] == ["body", "idempotency_key"]


async def test_health_metrics_and_stats(urls: Any, known: dict[str, uuid.UUID]) -> None:
    slug = next(iter(known))
    async with (
        open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as service,
        _client(service) as client,
    ):
        await client.get(f"/services/{slug}")
        await client.get(f"/services/{slug}")
        health = await client.get("/health")
        metrics = await client.get("/metrics")
        stats = await client.get("/stats")
    assert health.status_code == 200
    assert health.json()["status"] == "healthy"
    assert set(health.json()["components"]) >= {"postgres", "redis", "breaker", "error_tracking"}
    assert 'resilience_operations_total{operation="lookup",outcome="success"} 2' in metrics.text
    assert 'resilience_breaker_state{state="closed"} 1' in metrics.text
    body = stats.json()
    assert (body["hit_rate"], body["success_rate"], body["fallback_rate"]) == (0.5, 1.0, 0.0)
    assert set(body["latency_us"]) == {"cache", "db"}
    assert body["breaker"] == {"state": "closed", "opens": 0}


async def test_jobs_stored_exactly_once_when_replies_are_lost(
    urls: Any, postgres_proxy: Any
) -> None:
    """PostgreSQL replies withheld (commits whose answer never arrives), then reset_peer,
    while clients post and retry with their keys: every 2xx job is stored exactly once."""
    config = FAST.with_overrides({"db.timeout_s": 0.2})
    async with (
        open_service(config, postgres_url=urls.postgres, redis_url=urls.redis) as service,
        _client(service) as client,
    ):
        warm = {"micro_id": "roof-repair", "idempotency_key": "warm-up"}
        assert (await client.post("/jobs", json=warm)).status_code == 201  # statement prepared
        postgres_proxy.add_toxic(
            name="hold", type="timeout", stream="downstream", attributes={"timeout": 0}
        )

        async def post(key: str) -> tuple[str, int, int | None]:
            body = {"micro_id": "roof-repair", "answers": {"k": key}, "idempotency_key": key}
            for _ in range(100):  # a client retrying with the same key, as documented
                response = await client.post("/jobs", json=body)
                if response.status_code < 300:
                    return key, response.status_code, response.json()["id"]
                assert response.status_code == 503
                assert response.json()["retryable"]
                await asyncio.sleep(0.05)
            return key, response.status_code, None

        posts = asyncio.gather(*(post(f"storm-{i}") for i in range(20)))
        await asyncio.sleep(0.5)
        postgres_proxy.remove_toxic("hold")
        postgres_proxy.add_toxic(
            name="storm", type="reset_peer", stream="downstream", attributes={"timeout": 0}
        )
        await asyncio.sleep(0.3)
        postgres_proxy.remove_toxic("storm")
        results = await posts
        outbox = service.outbox
        assert outbox is not None
        for _ in range(250):  # jobs accepted into the outbox (202) are written by now
            if await outbox.pending() == 0:
                break
            await asyncio.sleep(0.02)
        jobs = service.stats()["jobs"]
    conn = await asyncpg.connect(urls.postgres_direct)
    try:
        rows = await conn.fetch(
            "SELECT idempotency_key, count(*) AS n, min(id) AS id FROM jobs GROUP BY 1"
        )
    finally:
        await conn.close()
    stored = {r["idempotency_key"]: (r["n"], r["id"]) for r in rows}
    assert all(status in (200, 201, 202) for _, status, _ in results)
    for key, status, job_id in results:
        assert stored[key][0] == 1
        if status != 202:  # 202: queued, the id is known once written
            assert stored[key][1] == job_id
    assert len(stored) == 21
    # some commit lost its reply and a retry found it, or the job went through the outbox
    assert jobs["replayed"] + jobs["queued"] >= 1


async def test_jobs_posted_during_a_postgres_outage_are_queued_then_stored_once(
    urls: Any, postgres_proxy: Any
) -> None:
    """PostgreSQL down: POST /jobs answers 202 (queued in Redis); once it is back the job is
    written exactly once, and posting the same key again returns the stored job."""
    config = FAST.with_overrides({"jobs.max_attempts": 2, "retry.max_attempts": 1})
    body = {"micro_id": "roof-repair", "answers": {"rooms": 1}, "idempotency_key": "outage-1"}
    async with (
        open_service(config, postgres_url=urls.postgres, redis_url=urls.redis) as service,
        _client(service) as client,
    ):
        postgres_proxy.disable()
        queued = await client.post("/jobs", json=body)
        queued_again = await client.post("/jobs", json=body)
        postgres_proxy.enable()
        outbox = service.outbox
        assert outbox is not None
        for _ in range(250):  # the drainer runs every 0.1 s
            if await outbox.pending() == 0:
                break
            await asyncio.sleep(0.02)
        replay = await client.post("/jobs", json=body)
    conn = await asyncpg.connect(urls.postgres_direct)
    try:
        rows = await conn.fetch("SELECT id FROM jobs WHERE idempotency_key = 'outage-1'")
    finally:
        await conn.close()
    assert queued.status_code == 202
    assert (queued.json()["status"], queued.json()["id"]) == ("queued", None)
    assert queued_again.status_code == 202
    assert len(rows) == 1
    assert replay.status_code == 200
    assert replay.json()["id"] == rows[0]["id"]


async def test_health_is_degraded_without_redis_and_with_an_open_breaker(
    urls: Any, redis_proxy: Any
) -> None:
    async with (
        open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as service,
        _client(service) as client,
    ):
        redis_proxy.disable()
        no_redis = (await client.get("/health")).json()
        redis_proxy.enable()
        service.breaker.force_open("test")
        open_breaker = (await client.get("/health")).json()
    assert no_redis["status"] == "degraded"
    assert no_redis["components"]["redis"]["status"] == "down"
    assert open_breaker["status"] == "degraded"
    assert open_breaker["components"]["breaker"] == {"status": "degraded", "state": "open"}
