"""A modelled ``jobs`` table: a :class:`JobRepository` through the Postgres proxy.

Exactly once per idempotency key, like the real ``INSERT … ON CONFLICT DO
NOTHING`` + read-back: the row is stored when the server has processed the
insert, so a reply lost afterwards (a reset, a closed connection) leaves the
job stored and the retry finds it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import random
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from resilience.sim.distributions import Distribution, LogNormal
from resilience.sim.pool import ModelPool
from resilience.sim.proxy import ModelProxy

if TYPE_CHECKING:
    from resilience.service.model import Job

__all__ = ["DEFAULT_INSERT_TIME", "ModelJobRepository"]

DEFAULT_INSERT_TIME: Distribution = LogNormal(median_s=0.0012, p99_s=0.006)
"""``INSERT … RETURNING`` with a commit, over loopback."""

_EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class ModelJobRepository:
    """Jobs stored in a dict, written through the modelled Postgres pool."""

    def __init__(
        self,
        proxy: ModelProxy,
        pool: ModelPool,
        *,
        rng: random.Random,
        insert_time: Distribution = DEFAULT_INSERT_TIME,
    ) -> None:
        self.proxy = proxy
        self.pool = pool
        self.rng = rng
        self.insert_time = insert_time
        self.by_id: dict[int, Job] = {}
        self.by_key: dict[str, int] = {}
        self._ids = itertools.count(1)

    async def insert_job(
        self,
        *,
        micro_id: str,
        micro_uuid: uuid.UUID | None,
        answers: Mapping[str, Any],
        idempotency_key: str,
    ) -> Job:
        from resilience.service.model import Job

        conn = self.pool.try_acquire() or await self.pool.acquire()
        ok = False
        service_s = self.insert_time.sample(self.rng)
        request = 120 + len(micro_id) + len(idempotency_key) + 16 * len(answers)
        try:
            # The server commits before its reply crosses the downstream toxics.
            await self.proxy.exchange(conn, request, 0, service_s)
            existing = self.by_key.get(idempotency_key)
            created = existing is None
            if created:
                job_id = next(self._ids)
                self.by_key[idempotency_key] = job_id
                self.by_id[job_id] = Job(
                    id=job_id,
                    micro_id=micro_id,
                    micro_uuid=micro_uuid,
                    answers=dict(answers),
                    idempotency_key=idempotency_key,
                    status="pending",
                    created_at=_EPOCH,
                )
            await self.proxy.exchange(conn, 0, 160, 0.0)
            ok = True
        finally:
            self.pool.release(conn, broken=not ok)
        return dataclasses.replace(self.by_id[self.by_key[idempotency_key]], created=created)

    async def stored_with_key_prefix(self, prefix: str) -> list[tuple[str, dict[str, Any]]]:
        """(idempotency key, answers) of the stored jobs whose key starts with ``prefix``
        (the end-of-run audit: read directly, outside the modelled link)."""
        from resilience.service.repository import stored_with_key_prefix

        return stored_with_key_prefix(self.by_id.values(), prefix)

    async def get_job(self, job_id: uuid.UUID | int) -> Job | None:
        conn = self.pool.try_acquire() or await self.pool.acquire()
        ok = False
        try:
            await self.proxy.exchange(conn, 80, 200, self.insert_time.sample(self.rng) / 4)
            ok = True
        finally:
            self.pool.release(conn, broken=not ok)
        return self.by_id.get(job_id) if isinstance(job_id, int) else None
