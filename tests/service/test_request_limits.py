"""Hostile requests (issue 15, defects 2, 3, 7): a huge body, deep nesting, invalid slugs.

Each is answered with a clear 4xx before anything is stored, and counted where
the service counts things. In process (httpx ASGI transport) on real backends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
from service_support import FAST

from resilience.service import create_app
from resilience.service.limits import answers_problem
from resilience.service.runtime import open_service

MB = 1024 * 1024


def _client(service: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(service))
    return httpx.AsyncClient(transport=transport, base_url="http://service.test")


async def _jobs_stored(urls: Any) -> int:
    conn = await asyncpg.connect(urls.postgres_direct)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM jobs"))
    finally:
        await conn.close()


async def test_a_50mb_job_is_refused_413_before_anything_is_stored(urls: Any) -> None:
    """Content-Length over http.max_body_bytes (1 MiB): 413 at once, nothing queued or stored."""
    filler = "x" * (50 * MB)
    body = b'{"micro_id":"roof-repair","idempotency_key":"huge","answers":{"a":"%s"}}' % (
        filler.encode()
    )
    async with (
        open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as service,
        _client(service) as client,
    ):
        refused = await client.post(
            "/jobs", content=body, headers={"content-type": "application/json"}
        )
        assert service.outbox is not None
        pending = await service.outbox.pending()
        small = await client.post(
            "/jobs",
            json={"micro_id": "roof-repair", "answers": {"a": 1}, "idempotency_key": "ok"},
        )
    assert refused.status_code == 413
    assert refused.json()["error"] == "payload_too_large"
    assert "http.max_body_bytes" in refused.json()["message"]
    assert pending == 0
    assert small.status_code == 201
    assert await _jobs_stored(urls) == 1  # only the small one


async def test_a_chunked_body_over_the_limit_is_cut_off_at_the_limit(urls: Any) -> None:
    """No Content-Length: the body is read only up to the limit, then 413."""
    config = FAST.with_overrides({"http.max_body_bytes": 64 * 1024})
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"micro_id":"roof-repair","idempotency_key":"chunked","answers":{"a":"'
        for _ in range(50 * 16):  # up to 50 MiB in 64 KiB pieces
            sent += 1
            yield b"x" * (64 * 1024)
        yield b'"}}'

    async with (
        open_service(config, postgres_url=urls.postgres, redis_url=urls.redis) as service,
        _client(service) as client,
    ):
        refused = await client.post(
            "/jobs", content=chunks(), headers={"content-type": "application/json"}
        )
    assert refused.status_code == 413
    assert "65536 bytes" in refused.json()["message"]
    assert sent < 50 * 16  # it stopped reading long before the end
    assert await _jobs_stored(urls) == 0


async def test_answers_nested_900_deep_are_a_clear_422_not_a_500(urls: Any) -> None:
    deep = '{"a":' * 900 + "1" + "}" * 900
    body = '{"micro_id":"roof-repair","idempotency_key":"deep","answers":' + deep + "}"
    wide = {"micro_id": "roof-repair", "idempotency_key": "wide", "answers": {"a": "y" * 70_000}}
    async with (
        open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as service,
        _client(service) as client,
    ):
        nested = await client.post(
            "/jobs", content=body.encode(), headers={"content-type": "application/json"}
        )
        large = await client.post("/jobs", json=wide)
        fine = await client.post(
            "/jobs",
            json={
                "micro_id": "roof-repair",
                "idempotency_key": "fine",
                "answers": {"rooms": [{"size": {"m2": 12}}]},
            },
        )
    assert nested.status_code == 422, nested.text
    [problem] = nested.json()["detail"]
    assert problem["loc"] == ["body", "answers"]
    assert "nested deeper than 32 levels" in problem["msg"]
    assert large.status_code == 422
    assert "the limit is 65536 bytes" in large.json()["detail"][0]["msg"]
    assert fine.status_code == 201
    assert await _jobs_stored(urls) == 1


def test_answers_problem_is_iterative_and_names_the_limit() -> None:
    deep: Any = 1
    for _ in range(100_000):  # far past the interpreter's recursion limit
        deep = [deep]
    assert answers_problem({"a": deep}) == "answers are nested deeper than 32 levels"
    assert answers_problem({"a": [[1]]}, max_depth=3) is None
    assert answers_problem({"a": [[[1]]]}, max_depth=3) is not None
    assert answers_problem({"a": "é" * 40}, max_bytes=80) is not None  # bytes, not characters


async def test_invalid_slugs_answered_400_are_counted_as_invalid(urls: Any) -> None:
    async with (
        open_service(FAST, postgres_url=urls.postgres, redis_url=urls.redis) as service,
        _client(service) as client,
    ):
        answers = [await client.get("/services/Bad_Slug!") for _ in range(3)]
        stats = (await client.get("/stats")).json()
        metrics = (await client.get("/metrics")).text
    assert {a.status_code for a in answers} == {400}
    assert stats["invalid"] == 3
    invalid = [
        line
        for line in metrics.splitlines()
        if not line.startswith("#") and 'outcome="invalid"' in line and "_total" in line
    ]
    assert invalid, metrics
    assert any(line.endswith((" 3.0", " 3")) for line in invalid), invalid
