"""Helpers of the service tests (imported by them; fixtures live in conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from resilience.service import ServiceConfig

FAST = ServiceConfig().with_overrides(
    {
        "retry.initial_delay_s": 0.01,
        "retry.max_delay_s": 0.05,
        "jobs.initial_delay_s": 0.01,
        "jobs.max_delay_s": 0.05,
        "redis.retry_interval_s": 0.1,
        "redis.breaker_sync_interval_s": 0.1,
        "analytics.flush_interval_s": 0.1,
        "jobs.outbox_drain_interval_s": 0.1,
    }
)
"""Defaults with millisecond backoff, so fault tests finish quickly."""


class CountingRepository:
    """Wraps a SlugRepository and counts the queries that reach it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    async def fetch_uuid(self, slug: str) -> uuid.UUID | None:
        self.calls += 1
        result: uuid.UUID | None = await self.inner.fetch_uuid(slug)
        return result

    async def fetch_many(self, slugs: Iterable[str]) -> dict[str, uuid.UUID]:
        self.calls += 1
        result: dict[str, uuid.UUID] = await self.inner.fetch_many(slugs)
        return result
